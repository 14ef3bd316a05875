/* utf8.h - the one UTF-8 codec of vkgpt2, strict as Unicode's well-formed table: no overlong
 * forms, no surrogates (U+D800..DFFF), nothing past U+10FFFF. Leads: 00..7f one byte, c2..df two,
 * e0..ef three, f0..f4 four; 80..c1 and f5..ff start nothing. The second byte is 80..bf except
 * after e0 (a0..bf), ed (80..9f), f0 (90..bf) and f4 (80..8f); later bytes are 80..bf.
 */
#ifndef VKG_UTF8_H
#define VKG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the sequence lead byte c starts (1 for ASCII), or 0 when c starts none. */
size_t gpt2_utf8_seq_len(unsigned c);
/* Whether c may stand at position n (1..3) of a sequence that lead starts. */
int gpt2_utf8_continues(unsigned lead, size_t n, unsigned c);
/* Decodes the sequence at s (n bytes left): its length with *cp set, or 0 when it is malformed,
 * truncated, or n is 0. */
size_t gpt2_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Offset of the first byte of s that does not start a well-formed sequence; len when all do. */
size_t gpt2_utf8_valid_prefix(const unsigned char *s, size_t len);
/* Writes code point cp (at most U+10FFFF) to out: 1 to 4 bytes, the count returned. */
size_t gpt2_utf8_encode(uint32_t cp, char *out);

#endif
