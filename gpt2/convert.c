/* convert.c - vkg_convert: any model vkgpt2 reads, written as a GGUF file. */
#include <string.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "vkgpt2.h"

int vkg_convert(const char *in, const char *out, char *err, size_t errlen)
{
    size_t n = strlen(out);
    if (n < 5 || strcmp(out + n - 5, ".gguf") != 0) {
        gpt2_errf(err, errlen, "%s: output name must end in .gguf (the only format convert writes)", out);
        return -1;
    }
    gpt2_model m;
    if (gpt2_model_load(&m, in, err, errlen) != 0) return -1;
    int r = gpt2_write_gguf(&m, out, err, errlen);
    gpt2_model_free(&m);
    return r;
}
