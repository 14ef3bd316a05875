/* utf8.c - see utf8.h. */
#include "utf8.h"

size_t gpt2_utf8_seq_len(unsigned c)
{
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}

int gpt2_utf8_continues(unsigned lead, size_t n, unsigned c)
{
    unsigned lo = 0x80, hi = 0xbf;
    if (n == 1) {
        if (lead == 0xe0) lo = 0xa0;
        if (lead == 0xed) hi = 0x9f;
        if (lead == 0xf0) lo = 0x90;
        if (lead == 0xf4) hi = 0x8f;
    }
    return c >= lo && c <= hi;
}

size_t gpt2_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    size_t k = gpt2_utf8_seq_len(s[0]);
    if (k == 0 || k > n) return 0;
    /* the lead's payload bits: 7 for ASCII, then 5, 4, 3 */
    uint32_t v = s[0] & (k == 1 ? 0x7fu : 0x7fu >> k);
    for (size_t i = 1; i < k; i++) {
        if (!gpt2_utf8_continues(s[0], i, s[i])) return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    *cp = v;
    return k;
}

size_t gpt2_utf8_valid_prefix(const unsigned char *s, size_t len)
{
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        size_t k = gpt2_utf8_decode(s + i, len - i, &cp);
        if (k == 0) return i;
        i += k;
    }
    return len;
}

size_t gpt2_utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}
