/* fuzz_safetensors.c - libFuzzer harness: a Hugging Face directory of config.json and
 * model.safetensors (no vocabulary: loaded with GPT2_LOAD_VOCAB_OPTIONAL). The input is split by
 * fuzz_split: config.json, a NUL byte, model.safetensors. */
#include <stdint.h>
#include <stdlib.h>

#include "core/model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[512];
    size_t n1, n2;
    const uint8_t *second;
    fuzz_split(data, size, &n1, &second, &n2);
    fuzz_write("config.json", data, n1, path, sizeof path);
    fuzz_write("model.safetensors", second, n2, path, sizeof path);
    gpt2_model m;
    if (gpt2_model_load_ex(&m, fuzz_dir(), GPT2_LOAD_VOCAB_OPTIONAL, err, sizeof err) == 0) {
        if (gpt2_model_validate(&m, err, sizeof err) != 0) abort();
        gpt2_model_free(&m);
    }
    return 0;
}
