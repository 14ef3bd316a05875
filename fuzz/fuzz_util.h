/* fuzz_util.h - helpers the libFuzzer harnesses share: a private scratch directory, whole-file
 * writes, splitting one input into two files, and a memory limit for the loaders.
 *
 * Every harness is built with -fsanitize=fuzzer,address,undefined (see fuzz/meson.build) and links
 * only the parsers it drives, so coverage stays on the code under test.
 */
#ifndef VKG_FUZZ_UTIL_H
#define VKG_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A directory of our own, made once per process (removed at exit with its files). */
static char fuzz_dir_path[256];

static inline void fuzz_dir_cleanup(void)
{
    static const char *const names[] = {"config.json", "model.safetensors", "vocab.json",
                                        "merges.txt",  "model.bin",         "model.gguf"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, names[i]);
        unlink(p);
    }
    rmdir(fuzz_dir_path);
}

static inline const char *fuzz_dir(void)
{
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *base =
        access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/vkgpt2-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_path)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_dir_cleanup);
    /* Loaders refuse a model bigger than RAM; keep the fuzzer's hostile sizes well below the
     * libFuzzer RSS limit (2 GiB) so a refusal, not an allocation, is what gets exercised. */
    setenv("VKGPT2_MEM_LIMIT", "268435456", 1);
    return fuzz_dir_path;
}

/* Writes n bytes to dir/name (replacing it); the path goes to path. Aborts on I/O errors (they are
 * the harness's problem, not the code under test). */
static inline void fuzz_write(const char *name, const uint8_t *data, size_t n, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror("fuzz: write");
        abort();
    }
}

/* The fixed split rule of the two-file harnesses: the bytes before the first NUL are the first
 * file, the bytes after it the second (no NUL: all first, second empty). Text formats never hold a
 * NUL, so a seed is "first file, NUL, second file". */
static inline void fuzz_split(const uint8_t *data, size_t n, size_t *n1, const uint8_t **second, size_t *n2)
{
    const uint8_t *z = memchr(data, 0, n);
    *n1 = z ? (size_t)(z - data) : n;
    *second = z ? z + 1 : data + n;
    *n2 = z ? n - *n1 - 1 : 0;
}

#endif
