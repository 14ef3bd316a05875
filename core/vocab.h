/* vocab.h - reading and freeing GPT-2 vocabularies (the gpt2_vocab of model.h).
 *
 * Two spellings of the same data are accepted: Hugging Face's vocab.json + merges.txt and OpenAI's
 * encoder.json + vocab.bpe. Both store tokens in GPT-2's byte-to-unicode alphabet; gpt2_vocab holds
 * raw bytes, so the mapping is undone on load (and redone by writers).
 */
#ifndef VKG_VOCAB_H
#define VKG_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Reads a token->id JSON map and a merges file. Returns 0, or -1 with a message naming the file. */
int gpt2_vocab_load_files(gpt2_vocab *v, const char *vocab_json, const char *merges_txt, char *err,
                          size_t errlen);
/* Looks in dir for vocab.json + merges.txt, then encoder.json + vocab.bpe. */
int gpt2_vocab_load_dir(gpt2_vocab *v, const char *dir, char *err, size_t errlen);
/* Writes vocab.json and merges.txt into dir (the merges are derived when v has none). */
int gpt2_vocab_write_dir(const gpt2_vocab *v, const char *dir, char *err, size_t errlen);
/* Makes v->merges from token ids when a file carried only the vocabulary (ggml legacy): for GPT-2
 * a merged token's id is 256 + its merge rank. Returns 0 or -1 with err. */
int gpt2_vocab_derive_merges(gpt2_vocab *v, char *err, size_t errlen);
/* A small byte-level vocabulary for synthetic models without GPT-2's files: the 256 bytes (in
 * GPT-2's byte order), n_merges merges learned from a fixed English sample, then <|endoftext|>. */
int gpt2_vocab_make_bytes(gpt2_vocab *v, int n_merges);
void gpt2_vocab_free(gpt2_vocab *v);
/* Deep copy. */
int gpt2_vocab_copy(gpt2_vocab *dst, const gpt2_vocab *src);

/* GPT-2's byte-to-unicode map: the code point that stands for byte b in vocab files, and back
 * (returns -1 for a code point that stands for no byte). */
uint32_t gpt2_byte_to_unicode(uint8_t b);
int gpt2_unicode_to_byte(uint32_t cp);
/* A token in that spelling (UTF-8, n bytes) -> its raw bytes in out (room for n bytes): the byte
 * count, or -1 when a character stands for no byte (or the UTF-8 is malformed). */
long gpt2_unmap_token(const char *s, size_t n, char *out);

#endif
