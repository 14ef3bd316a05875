/* load.c - loading a model: the format from the path (a directory, a file of a Hugging Face
 * directory, or a file's magic), then that format's reader. The readers depend only on the shared
 * helpers (model_internal.h), never on this file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "progress.h"

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int load_any(gpt2_model *m, const char *path, unsigned flags, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    struct stat st;
    if (stat(path, &st) != 0) {
        gpt2_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) return gpt2_load_hf_ex(m, path, flags, err, errlen);
    if (!S_ISREG(st.st_mode)) {
        gpt2_errf(err, errlen, "%s: not a regular file or directory", path);
        return -1;
    }
    /* A file of a Hugging Face directory stands for the directory. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "config.json") == 0 || ends_with(base, ".safetensors") ||
        ends_with(base, ".safetensors.index.json")) {
        size_t dl = (size_t)(base - path);
        char *dir = malloc(dl + 2);
        if (!dir) {
            gpt2_errf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        if (dl == 0)
            strcpy(dir, ".");
        else {
            memcpy(dir, path, dl);
            dir[dl] = 0;
        }
        int r = gpt2_load_hf_ex(m, dir, flags, err, errlen);
        free(dir);
        return r;
    }
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        gpt2_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got < 4) {
        gpt2_errf(err, errlen, "%s: file too short (%zu bytes) to be a model", path, got);
        return -1;
    }
    uint32_t v =
        (uint32_t)magic[0] | (uint32_t)magic[1] << 8 | (uint32_t)magic[2] << 16 | (uint32_t)magic[3] << 24;
    if (v == 0x67676d6cu) return gpt2_load_ggml(m, path, err, errlen);
    if (memcmp(magic, "GGUF", 4) == 0) return gpt2_load_gguf(m, path, err, errlen);
    if (v == (uint32_t)LLMC_MAGIC) return gpt2_load_llmc(m, path, err, errlen);
    if (v == 0x67676a74u || v == 0x67676d66u) {
        gpt2_errf(err, errlen, "%s: ggml %s files are not supported (only ggml's unversioned GPT-2 format)",
                  path, v == 0x67676a74u ? "ggjt" : "ggmf");
        return -1;
    }
    gpt2_errf(err, errlen,
              "%s: unknown model format (magic 0x%08x; expected ggml 0x67676d6c, GGUF, llm.c 20240326, "
              "or a Hugging Face directory)",
              path, v);
    return -1;
}

int gpt2_model_load_ex(gpt2_model *m, const char *path, unsigned flags, char *err, size_t errlen)
{
    gpt2_progress(path, "loading", 0, 1);
    int r = load_any(m, path, flags, err, errlen);
    gpt2_progress(path, "loading", 1, 1); /* the step ends, loaded or not */
    return r;
}

int gpt2_model_load(gpt2_model *m, const char *path, char *err, size_t errlen)
{
    return gpt2_model_load_ex(m, path, 0, err, errlen);
}
