/* fuzz_decode.c - libFuzzer harness: the input is a sequence of little-endian 16-bit token ids for
 * GPT-2's real vocabulary (ids past the vocabulary are kept, to test their refusal). Checks that
 * gpt2_detokenize, gpt2_detokenize_alloc and the streaming decoder agree: the stream's pieces,
 * concatenated and flushed, are the whole decoded text, and every piece but the flushed tail ends
 * on a UTF-8 character boundary when the text is valid UTF-8 up to there. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "core/vocab.h"
#include "fuzz_util.h"

static gpt2_vocab vocab;

static void cleanup(void) { gpt2_vocab_free(&vocab); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("VKGPT2_FUZZ_VOCAB");
    if (!dir) dir = VKG_FUZZ_VOCAB_DIR;
    char err[512];
    if (gpt2_vocab_load_dir(&vocab, dir, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_decode: %s (run tools/fetch-vocab.sh %s)\n", err, dir);
        exit(1);
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    size_t n = size / 2;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return 0;
    bool all_valid = true;
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)((uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1] << 8);
        if (ids[i] >= vocab.n_tokens) all_valid = false;
    }
    if (size % 2 == 1 && data[size - 1] == 0xff && n) ids[0] = -1 - (int32_t)data[0]; /* negatives too */
    if (n && ids[0] < 0) all_valid = false;

    size_t len = 0;
    char *text = gpt2_detokenize_alloc(&vocab, ids, n, &len, err, sizeof err);
    if ((text != NULL) != all_valid) abort();
    size_t want = gpt2_detokenize_size(&vocab, ids, n);
    if (text && want != len) abort();
    if (text) {
        /* Exactly-sized buffer: fits (the NUL is optional); one byte less: refused. */
        char *buf = malloc(len ? len : 1);
        size_t got;
        if (!buf) abort();
        if (gpt2_detokenize(&vocab, ids, n, buf, len, &got, err, sizeof err) != 0 || got != len ||
            memcmp(buf, text, len) != 0)
            abort();
        if (len && gpt2_detokenize(&vocab, ids, n, buf, len - 1, &got, err, sizeof err) == 0) abort();
        free(buf);
    }

    /* The streaming decoder: skips bad ids (an error, stream unchanged), so compare against the
     * decoding of the valid ids only. */
    gpt2_stream s;
    gpt2_stream_init(&s, &vocab);
    char *cat = NULL;
    size_t cat_len = 0, cat_cap = 0;
    int32_t *valid = malloc((n ? n : 1) * sizeof *valid);
    size_t n_valid = 0;
    if (!valid) abort();
    for (size_t i = 0; i < n; i++) {
        const char *piece;
        size_t plen;
        if (gpt2_stream_feed(&s, ids[i], &piece, &plen, err, sizeof err) != 0) {
            if (ids[i] >= 0 && ids[i] < vocab.n_tokens) abort(); /* refused a good id */
            continue;
        }
        if (ids[i] < 0 || ids[i] >= vocab.n_tokens) abort(); /* took a bad one */
        valid[n_valid++] = ids[i];
        if (cat_len + plen > cat_cap) {
            cat_cap = (cat_len + plen) * 2 + 16;
            char *t = realloc(cat, cat_cap);
            if (!t) abort();
            cat = t;
        }
        if (plen) memcpy(cat + cat_len, piece, plen);
        cat_len += plen;
    }
    const char *tail;
    size_t tlen;
    gpt2_stream_flush(&s, &tail, &tlen);
    if (tlen > 3) abort(); /* at most an incomplete character is held back */
    if (cat_len + tlen > cat_cap) {
        char *t = realloc(cat, cat_len + tlen + 1);
        if (!t) abort();
        cat = t;
    }
    if (tlen) memcpy(cat + cat_len, tail, tlen);
    cat_len += tlen;
    gpt2_stream_free(&s);
    size_t vlen;
    char *vtext = gpt2_detokenize_alloc(&vocab, valid, n_valid, &vlen, err, sizeof err);
    if (!vtext || vlen != cat_len || (vlen && memcmp(vtext, cat, vlen) != 0)) abort();
    free(vtext);
    free(valid);
    free(cat);
    free(text);
    free(ids);
    return 0;
}
