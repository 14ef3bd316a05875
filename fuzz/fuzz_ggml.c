/* fuzz_ggml.c - libFuzzer harness: the input is a ggml legacy GPT-2 file (model.c's dispatch reads
 * the magic, format_ggml.c the rest). Any outcome but a crash, a sanitizer report or a leak is fine;
 * a model that loads must pass gpt2_model_validate again. */
#include <stdint.h>
#include <stdlib.h>

#include "core/model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[512];
    fuzz_write("model.bin", data, size, path, sizeof path);
    gpt2_model m;
    if (gpt2_model_load(&m, path, err, sizeof err) == 0) {
        if (gpt2_model_validate(&m, err, sizeof err) != 0) abort();
        if (gpt2_weights_bytes(&m) == 0) abort();
        gpt2_model_free(&m);
    }
    return 0;
}
