/* cmd_convert.c - vkgpt2 convert IN OUT.gguf: any model vkgpt2 reads, written as GGUF. */
#include <stdio.h>
#include <string.h>

#include "cli_out.h"
#include "vkgpt2.h"

static const char convert_usage[] =
    "usage: vkgpt2 convert IN OUT.gguf [--force]\n"
    "  IN       a model vkgpt2 reads: Hugging Face directory, ggml .bin, GGUF or llm.c checkpoint\n"
    "  OUT      the GGUF v3 file to write (llama.cpp's gpt2 names and metadata); weight types are kept\n"
    "  --force  replace OUT if it exists (default: refuse). OUT is written to a temporary beside it\n"
    "           and renamed into place when complete; OUT may not be IN or lie inside IN.\n";

int cmd_convert(int argc, char **argv, int first)
{
    const char *pos[2] = {NULL, NULL};
    int np = 0;
    unsigned flags = 0;
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(convert_usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--force")) {
            flags |= VKG_OUT_FORCE;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vkgpt2: convert: unknown option '%s' (see vkgpt2 convert --help)\n", argv[i]);
            return 2;
        }
        if (np == 2) {
            fprintf(stderr, "vkgpt2: convert: unexpected argument '%s' (see vkgpt2 convert --help)\n",
                    argv[i]);
            return 2;
        }
        pos[np++] = argv[i];
    }
    if (np != 2) {
        fprintf(stderr, "vkgpt2: convert needs IN and OUT.gguf (see vkgpt2 convert --help)\n");
        return 2;
    }
    char err[1024];
    cli_cleanup_on_signals();
    int rc = vkg_convert(pos[0], pos[1], flags, err, sizeof err);
    if (rc != 0) {
        cli_output_error(rc, NULL, pos[1], err);
        return 1;
    }
    cli_progress_clear();
    fprintf(stderr, "vkgpt2: wrote %s\n", pos[1]);
    return 0;
}
