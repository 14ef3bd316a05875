/* test_fuzz_regressions.c - every input the libFuzzer harnesses of fuzz/ found to crash, hang or
 * trip a sanitizer, rebuilt here (inline, from a synthetic model) so the fix stays fixed. See
 * docs/RELIABILITY.md for the fuzzing runs. */
#include <time.h>

#include "formats_util.h"

static void setup(void) { tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(); }

TestSuite(fuzz_regressions, .init = setup, .fini = teardown, .timeout = 60);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* fuzz_ggml, timeout: a ggml file whose vocabulary holds one huge token. Deriving the BPE merges
 * ran BPE and a split search over every token, quadratic in its length: one 50 KB token took
 * minutes. Tokens longer than 1024 bytes are now no merges (GPT-2's longest has 128). Rebuilt
 * here with a 256 KiB token in place of token 300 of a tiny synthetic model. */
Test(fuzz_regressions, ggml_huge_vocab_token_loads_quickly)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F32, false);
    char err[512] = "";
    const char *src = tu_path("tiny.bin"), *dst = tu_path("huge-token.bin");
    cr_assert(gpt2_write_ggml(&a, src, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&a);
    size_t n;
    unsigned char *b = tu_read(src, &n);
    int32_t nv;
    memcpy(&nv, b + 28, 4);
    cr_assert(nv > 300);
    const size_t huge = 256 << 10;
    unsigned char *out = malloc(n + huge + 16), *o = out;
    cr_assert(out);
    memcpy(o, b, 32);
    o += 32;
    size_t off = 32;
    for (int i = 0; i < nv; i++) {
        uint32_t len;
        memcpy(&len, b + off, 4);
        if (i == 300) {
            uint32_t hl = (uint32_t)huge;
            memcpy(o, &hl, 4);
            memset(o + 4, 'a', huge);
            o += 4 + huge;
        } else {
            memcpy(o, b + off, 4 + (size_t)len);
            o += 4 + len;
        }
        off += 4 + len;
    }
    memcpy(o, b + off, n - off);
    o += n - off;
    tu_write(dst, out, (size_t)(o - out));
    free(out);
    free(b);

    double t0 = now_s();
    gpt2_model m;
    int r = gpt2_model_load(&m, dst, err, sizeof err);
    double dt = now_s() - t0;
    cr_assert(r == 0, "%s", err);
    cr_assert(m.vocab.len[300] == huge);
    cr_assert(dt < 10.0, "loading took %.1f s", dt);
    gpt2_model_free(&m);
}

/* Sizes before allocations: a ggml header claiming 16 million tokens in a file of a few KB is
 * refused before the vocabulary tables (about 200 MB) are allocated, with both sizes named. */
Test(fuzz_regressions, ggml_vocab_count_checked_against_file_size)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F32, false);
    char err[512] = "";
    const char *path = tu_path("many-tokens.bin");
    cr_assert(gpt2_write_ggml(&a, path, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&a);
    size_t n;
    unsigned char *b = tu_read(path, &n);
    int32_t nv = 16000000;
    memcpy(b + 4, &nv, 4);  /* header n_vocab */
    memcpy(b + 28, &nv, 4); /* vocabulary count */
    tu_write(path, b, n);
    free(b);
    gpt2_model m;
    cr_assert(gpt2_model_load(&m, path, err, sizeof err) != 0);
    cr_assert(strstr(err, "16000000 tokens") && strstr(err, "64000000 bytes"), "%s", err);
    cr_assert(strchr(err, '\n') == NULL);
}
