/* fuzz_llmc.c - libFuzzer harness: the input is an llm.c GPT-2 checkpoint (core/format_llmc.c; gpt2_model_load tells it by its magic).
 * Any outcome but a crash, a sanitizer report, a leak or a timeout is fine; a model that loads
 * must pass gpt2_model_validate again. */
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
        gpt2_model_free(&m);
    }
    return 0;
}
