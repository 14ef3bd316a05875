/* cmd_quantize.c - `vkgpt2 quantize IN OUT TYPE`: a model to a ggml block format (vkg_quantize). */
#include <stdio.h>
#include <string.h>

#include "cli_out.h"
#include "vkgpt2.h"

static const char quantize_usage[] =
    "usage: vkgpt2 quantize IN OUT TYPE [--force]\n"
    "  IN       a model vkgpt2 reads (ggml file, Hugging Face directory, GGUF, ...)\n"
    "  OUT      the quantized model: OUT.gguf is written as GGUF, anything else as ggml legacy\n"
    "  TYPE     q8_0 | q5_1 | q5_0 | q4_1 | q4_0\n"
    "  --force  replace OUT if it exists (default: refuse). OUT is written to a temporary beside it\n"
    "           and renamed into place when complete; OUT may not be IN or lie inside IN.\n"
    "Quantizes the weight matrices, wte and lm_head (as ggml's gpt-2 quantizer); biases, layernorm\n"
    "gains and wpe keep their types. Prints each tensor's RMS and max abs error and the sizes.\n";

int cmd_quantize(int argc, char **argv, int first)
{
    const char *pos[3];
    int np = 0;
    unsigned flags = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(quantize_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--force")) {
            flags |= VKG_OUT_FORCE;
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vkgpt2: quantize: unknown option '%s'\n", a);
            return 2;
        }
        if (np == 3) {
            fprintf(stderr, "vkgpt2: quantize: unexpected argument '%s' (IN OUT TYPE)\n", a);
            return 2;
        }
        pos[np++] = a;
    }
    if (np < 3) {
        fprintf(stderr, "vkgpt2: quantize needs IN OUT TYPE (see vkgpt2 quantize --help)\n");
        return 2;
    }
    char err[1024];
    cli_cleanup_on_signals();
    int rc = vkg_quantize(pos[0], pos[1], pos[2], stdout, flags, err, sizeof err);
    if (rc) {
        fflush(stdout);
        cli_output_error(rc, NULL, pos[1], err);
        return 1;
    }
    return 0;
}
