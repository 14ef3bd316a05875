/* tokenizer.h - GPT-2's byte-level BPE: text -> ids and ids -> bytes.
 *
 * Encoding follows OpenAI's algorithm exactly: the UTF-8 text is split into pre-tokens by GPT-2's
 * pattern  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  with \s as
 * in OpenAI's encoder.py (Python's `regex` module: the Unicode White_Space property, so U+0085 and
 * U+00A0 are spaces while U+001C..U+001F and U+FEFF are not), then each pre-token's bytes are merged
 * by rank. "<|endoftext|>" inside text is ordinary text; callers that want the eot id append
 * vocab->eot themselves.
 *
 *     gpt2_tokenizer *t = gpt2_tokenizer_create(&vocab, err, sizeof err);
 *     int32_t *ids; size_t n;
 *     if (gpt2_tokenize(t, text, len, &ids, &n, err, sizeof err) == 0) { ...; free(ids); }
 *     gpt2_tokenizer_free(t);
 *
 * A tokenizer keeps a cache of pre-token results, so one gpt2_tokenizer must not be used by two
 * threads at once (create one per thread).
 */
#ifndef VKG_TOKENIZER_H
#define VKG_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct gpt2_tokenizer gpt2_tokenizer;

/* Builds a tokenizer over a copy of v (v may be freed afterwards). v needs all 256 single-byte
 * tokens and merges whose results are tokens. Returns NULL with a message in err on failure. */
gpt2_tokenizer *gpt2_tokenizer_create(const gpt2_vocab *v, char *err, size_t errlen);
void gpt2_tokenizer_free(gpt2_tokenizer *t);
/* The tokenizer's own copy of the vocabulary. */
const gpt2_vocab *gpt2_tokenizer_vocab(const gpt2_tokenizer *t);

/* Encodes len bytes of UTF-8 text (NUL bytes allowed). On success returns 0 with *ids a malloc'ed
 * array of *n ids (the caller frees it; NULL when *n is 0). Invalid UTF-8 fails with -1 and a
 * message giving the byte offset of the first bad byte. */
int gpt2_tokenize(gpt2_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, char *err,
                  size_t errlen);

/* Decoding. The bytes of ids[0..n) concatenated; ids out of [0, n_tokens) are errors. */
/* Number of bytes gpt2_detokenize writes (ids out of range count as 0). */
size_t gpt2_detokenize_size(const gpt2_vocab *v, const int32_t *ids, size_t n);
/* Writes the bytes to out (cap bytes available; a NUL is added when room is left) and their count to
 * *out_len. Returns 0, or -1 with err (an id out of range, giving its index; or cap too small). */
int gpt2_detokenize(const gpt2_vocab *v, const int32_t *ids, size_t n, char *out, size_t cap, size_t *out_len,
                    char *err, size_t errlen);
/* Same into a malloc'ed, NUL-terminated buffer (free it); NULL with err on failure. */
char *gpt2_detokenize_alloc(const gpt2_vocab *v, const int32_t *ids, size_t n, size_t *out_len, char *err,
                            size_t errlen);

/* Streaming decoder for generation: fed one id at a time, it hands out only whole UTF-8 characters
 * and holds back the start of a character whose remaining bytes have not arrived yet. Bytes that
 * can never be part of a valid character are passed through as they are, in order. At the end,
 * gpt2_stream_flush hands out whatever is held back (an incomplete character, as is). */
typedef struct gpt2_stream {
    const gpt2_vocab *v;   /* not owned */
    unsigned char held[4]; /* start of an incomplete character */
    size_t n_held;         /* its length (0..3) */
    char *buf;             /* output of the last call (owned; valid until the next call) */
    size_t cap;            /* its capacity */
} gpt2_stream;

void gpt2_stream_init(gpt2_stream *s, const gpt2_vocab *v);
/* Feeds id: *out and *out_len receive the bytes ready to print (possibly none). Returns 0, or -1 with err
 * for an id out of range (the stream is unchanged) or out of memory. */
int gpt2_stream_feed(gpt2_stream *s, int32_t id, const char **out, size_t *out_len, char *err, size_t errlen);
/* Hands out the held-back bytes and resets the stream for reuse. */
void gpt2_stream_flush(gpt2_stream *s, const char **out, size_t *out_len);
void gpt2_stream_free(gpt2_stream *s);

#endif
