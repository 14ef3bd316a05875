/* convert.c - vkg_convert: any model vkgpt2 reads, written as a GGUF file. */
#include <string.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "outfile.h"
#include "vkgpt2.h"

int vkg_convert(const char *in, const char *out, unsigned flags, char *err, size_t errlen)
{
    if (!in || !out || !*out) {
        gpt2_errf(err, errlen, "convert: needs an input model and an output path");
        return -1;
    }
    size_t n = strlen(out);
    if (n < 5 || strcmp(out + n - 5, ".gguf") != 0) {
        gpt2_errf(err, errlen, "%s: output name must end in .gguf (the only format convert writes)", out);
        return -1;
    }
    /* before loading: never the input, never a surprise overwrite, a writable destination */
    const unsigned of = flags & VKG_OUT_FORCE ? 0 : GPT2_OUT_NO_REPLACE;
    const char *inputs[2] = {in, NULL};
    int r = gpt2_out_check(out, of, inputs, err, errlen);
    if (r != 0) return r;
    gpt2_model m;
    if (gpt2_model_load(&m, in, err, errlen) != 0) return -1;
    r = gpt2_write_gguf_ex(&m, out, of, err, errlen);
    gpt2_model_free(&m);
    return r;
}
