/* cmd_quantize.c - `vkgpt2 quantize IN OUT TYPE`: a model to a ggml block format (vkg_quantize). */
#include <stdio.h>
#include <string.h>

#include "vkgpt2.h"

static const char quantize_usage[] =
    "usage: vkgpt2 quantize IN OUT TYPE\n"
    "  IN    a model vkgpt2 reads (ggml file, Hugging Face directory, GGUF, ...)\n"
    "  OUT   the quantized model: OUT.gguf is written as GGUF, anything else as ggml legacy\n"
    "  TYPE  q8_0 | q5_1 | q5_0 | q4_1 | q4_0\n"
    "Quantizes the weight matrices, wte and lm_head (as ggml's gpt-2 quantizer); biases, layernorm\n"
    "gains and wpe keep their types. Prints each tensor's RMS and max abs error and the sizes.\n";

int cmd_quantize(int argc, char **argv, int first)
{
    const char *pos[3];
    int np = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(quantize_usage, stdout); return 0; }
        if (a[0] == '-' && a[1]) { fprintf(stderr, "vkgpt2: quantize: unknown option '%s'\n", a); return 2; }
        if (np == 3) { fprintf(stderr, "vkgpt2: quantize: unexpected argument '%s' (IN OUT TYPE)\n", a); return 2; }
        pos[np++] = a;
    }
    if (np < 3) {
        fprintf(stderr, "vkgpt2: quantize needs IN OUT TYPE (see vkgpt2 quantize --help)\n");
        return 2;
    }
    char err[1024];
    if (vkg_quantize(pos[0], pos[1], pos[2], stdout, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return 1;
    }
    return 0;
}
