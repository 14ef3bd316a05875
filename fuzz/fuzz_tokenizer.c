/* fuzz_tokenizer.c - libFuzzer harness: the input is text for GPT-2's real tokenizer (vocabulary
 * from $VKGPT2_FUZZ_VOCAB, default data/gpt2-vocab of the source tree: tools/fetch-vocab.sh).
 * Invalid UTF-8 must be refused; valid text must encode to ids in range that decode to the very
 * same bytes, and encoding must be deterministic (the second run goes through the cache). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "core/vocab.h"
#include "fuzz_util.h"

static gpt2_tokenizer *tok;

static void cleanup(void) { gpt2_tokenizer_free(tok); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("VKGPT2_FUZZ_VOCAB");
    if (!dir) dir = VKG_FUZZ_VOCAB_DIR;
    char err[512];
    gpt2_vocab v = {0};
    if (gpt2_vocab_load_dir(&v, dir, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_tokenizer: %s (run tools/fetch-vocab.sh %s)\n", err, dir);
        exit(1);
    }
    tok = gpt2_tokenizer_create(&v, err, sizeof err);
    gpt2_vocab_free(&v);
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        exit(1);
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    int32_t *ids = NULL, *ids2 = NULL;
    size_t n = 0, n2 = 0;
    if (gpt2_tokenize(tok, (const char *)data, size, &ids, &n, err, sizeof err) != 0) return 0;
    const gpt2_vocab *v = gpt2_tokenizer_vocab(tok);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v->n_tokens) abort();
    size_t len;
    char *back = gpt2_detokenize_alloc(v, ids, n, &len, err, sizeof err);
    if (!back || len != size || memcmp(back, data, size) != 0) abort();
    free(back);
    if (gpt2_tokenize(tok, (const char *)data, size, &ids2, &n2, err, sizeof err) != 0) abort();
    if (n2 != n || (n && memcmp(ids, ids2, n * sizeof *ids) != 0)) abort();
    free(ids);
    free(ids2);
    return 0;
}
