/* test_tokenizer.c - GPT-2 BPE encoding against the shared vectors, round trips, invalid UTF-8,
 * speed, decoding and the streaming decoder. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/tokenizer.h"
#include "core/utf8.h"
#include "core/vocab.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW_BUILD 1
#endif
#endif
#ifndef SLOW_BUILD
#define SLOW_BUILD 0
#endif
/* Seconds allowed for each speed case (ASan builds run a few times slower). */
#define TIME_LIMIT (SLOW_BUILD ? 3.0 : 1.0)

static const char *src_root(void)
{
    const char *r = getenv("VKGPT2_SOURCE_ROOT");
    return r && *r ? r : ".";
}

static gpt2_vocab vocab;
static gpt2_tokenizer *tok;

static void setup(void)
{
    char dir[4096], enc[4200], bpe[4200], err[512] = "";
    snprintf(dir, sizeof dir, "%s/data/gpt2-vocab", src_root());
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", dir);
    if (access(enc, R_OK) != 0 || access(bpe, R_OK) != 0) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "sh '%s/tools/fetch-vocab.sh' '%s'", src_root(), dir);
        int rc = system(cmd);
        cr_assert(rc == 0, "fetch-vocab.sh failed (%d): GPT-2's vocabulary is needed in %s", rc, dir);
    }
    cr_assert_eq(gpt2_vocab_load_files(&vocab, enc, bpe, err, sizeof err), 0, "%s", err);
    tok = gpt2_tokenizer_create(&vocab, err, sizeof err);
    cr_assert_not_null(tok, "%s", err);
}

static void teardown(void)
{
    gpt2_tokenizer_free(tok);
    tok = NULL;
    gpt2_vocab_free(&vocab);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Whether s[0..n) is well-formed UTF-8. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            k = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            k = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else
            return false;
        if (n - i < k || s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t j = 2; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return false;
        i += k;
    }
    return true;
}

/* Encodes, checks the ids are in range and that decoding gives the bytes back. */
static void round_trip(const char *text, size_t len)
{
    int32_t *ids;
    size_t n;
    char err[512] = "";
    cr_assert_eq(gpt2_tokenize(tok, text, len, &ids, &n, err, sizeof err), 0, "%s", err);
    for (size_t i = 0; i < n; i++) cr_assert(ids[i] >= 0 && ids[i] < vocab.n_tokens - 1);
    size_t m = 0;
    char *back = gpt2_detokenize_alloc(&vocab, ids, n, &m, err, sizeof err);
    cr_assert_not_null(back, "%s", err);
    cr_assert_eq(m, len);
    cr_assert(memcmp(back, text, len) == 0, "round trip differs");
    free(back);
    free(ids);
}

static void expect_ids(const char *text, const int32_t *want, size_t nw)
{
    int32_t *ids;
    size_t n;
    char err[512] = "";
    cr_assert_eq(gpt2_tokenize(tok, text, strlen(text), &ids, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, nw, "\"%s\": %zu ids, want %zu", text, n, nw);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "\"%s\": id %zu", text, i);
    free(ids);
}

TestSuite(tokenizer, .init = setup, .fini = teardown);

Test(tokenizer, shared_cases)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/data/tokenizer_cases.jsonl",
             src_root()); /* a copy of shared/tokenizer/cases.jsonl */
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int total = 0, pass = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        if (got <= 1) continue;
        char err[512] = "";
        json_doc *d = json_parse(line, (size_t)got, err, sizeof err);
        cr_assert_not_null(d, "%s: line %d: %s", path, total + 1, err);
        const json_value *name = json_get(json_root(d), "name"), *text = json_get(json_root(d), "text"),
                         *want = json_get(json_root(d), "ids");
        cr_assert(name && text && want && text->type == JSON_STRING && want->type == JSON_ARRAY);
        total++;
        int32_t *ids;
        size_t n;
        bool ok = gpt2_tokenize(tok, text->str, text->len, &ids, &n, err, sizeof err) == 0;
        if (!ok) fprintf(stderr, "case %s: %s\n", name->str, err);
        if (ok && n != want->len) {
            fprintf(stderr, "case %s: %zu ids, want %zu\n", name->str, n, want->len);
            ok = false;
        }
        for (size_t i = 0; ok && i < n; i++) {
            int64_t w;
            if (!json_as_int(want->items[i], &w) || w != ids[i]) {
                fprintf(stderr, "case %s: id %zu is %d, want %lld\n", name->str, i, (int)ids[i],
                        (long long)w);
                ok = false;
            }
        }
        if (ok) {
            size_t m;
            char *back = gpt2_detokenize_alloc(&vocab, ids, n, &m, err, sizeof err);
            if (!back || m != text->len || memcmp(back, text->str, m) != 0) {
                fprintf(stderr, "case %s: decoding does not give the text back\n", name->str);
                ok = false;
            }
            free(back);
        }
        if (ok) {
            /* the streaming decoder gives the same bytes, each chunk whole characters */
            gpt2_stream s;
            gpt2_stream_init(&s, &vocab);
            char *acc = malloc(text->len + 8);
            size_t an = 0;
            for (size_t i = 0; ok && i < n; i++) {
                const char *o;
                size_t ol;
                cr_assert_eq(gpt2_stream_feed(&s, ids[i], &o, &ol, err, sizeof err), 0, "%s", err);
                if (!valid_utf8((const unsigned char *)o, ol) || an + ol > text->len)
                    ok = false;
                else {
                    memcpy(acc + an, o, ol);
                    an += ol;
                }
            }
            const char *o;
            size_t ol;
            gpt2_stream_flush(&s, &o, &ol);
            if (ok && ol == 0 && an == text->len && memcmp(acc, text->str, an) == 0) {
                /* fine */
            } else {
                fprintf(stderr, "case %s: streaming decoder differs\n", name->str);
                ok = false;
            }
            free(acc);
            gpt2_stream_free(&s);
        }
        pass += ok;
        free(ids);
        json_free(d);
    }
    free(line);
    fclose(f);
    fprintf(stderr, "tokenizer: %d of %d shared cases pass\n", pass, total);
    cr_assert_gt(total, 0);
    cr_assert_eq(pass, total, "%d of %d shared cases pass", pass, total);
}

Test(tokenizer, endoftext_is_ordinary_text)
{
    static const int32_t want[] = {27, 91, 437, 1659, 5239, 91, 29};
    expect_ids("<|endoftext|>", want, 7);
    static const int32_t hello[] = {15496, 995};
    expect_ids("Hello world", hello, 2);
    int32_t *ids;
    size_t n;
    char err[256];
    cr_assert_eq(gpt2_tokenize(tok, "", 0, &ids, &n, err, sizeof err), 0);
    cr_assert_eq(n, 0u);
    free(ids);
}

/* \s is the Unicode White_Space property, as in OpenAI's encoder.py (Python's `regex` module):
 * U+0085 and U+3000 are spaces; U+FEFF, U+180E and U+001C are not. */
Test(tokenizer, whitespace_class_follows_encoder_py)
{
    static const int32_t nel[] = {220, 126, 227, 0};
    expect_ids(" \xc2\x85!", nel, 4);
    static const int32_t bom[] = {64, 27332, 119, 123, 0};
    expect_ids("a \xef\xbb\xbf!", bom, 5);
    static const int32_t mvs[] = {64, 28053, 254, 236, 0};
    expect_ids("a \xe1\xa0\x8e!", mvs, 5);
    static const int32_t fs[] = {87, 216, 216, 331};
    expect_ids("x\x1c\x1c y", fs, 4);
    static const int32_t ideo[] = {437, 220, 5099, 222, 5099, 222};
    expect_ids("end \xe3\x80\x80\xe3\x80\x80", ideo, 6);
    static const int32_t ls[] = {64, 220, 220, 447, 101, 65};
    expect_ids("a  \xe2\x80\xa8"
               "b",
               ls, 6);
}

Test(tokenizer, round_trips)
{
    static const char *texts[] = {
        "Hello, world! It's a test.",
        "  leading and trailing  \n\n",
        "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\xf0\x9f\x91\x8d",
        "tabs\tand\r\ncrlf\x0b\x0c",
        "I'm you're we've they'll he'd she's it't 'S'T",
        "1234567890 3.14159 -42 1e10",
        "\xef\xbb\xbf\xc2\x85\xc2\xa0\xe2\x80\x83\xe2\x80\xa8\xe2\x80\xa9\xe3\x80\x80",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) round_trip(texts[i], strlen(texts[i]));
    round_trip("a\0b\0\0c", 6);
}

/* xorshift64* */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* UTF-8 of cp written another way than core/utf8.c's encoder (which it checks): the continuation
 * bytes from the low end, six bits each, then the lead byte's length marker and what is left. */
static size_t put_cp(char *o, uint32_t cp)
{
    static const unsigned char marker[5] = {0, 0x00, 0xc0, 0xe0, 0xf0};
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (size_t k = n - 1; k > 0; k--, cp >>= 6) o[k] = (char)(0x80 | (cp & 0x3f));
    o[0] = (char)(marker[n] | cp);
    return n;
}

static uint32_t random_cp(void)
{
    static const uint32_t spaces[] = {' ',    '\t',   '\n',   '\r',   0x0b,   0x0c,   0x85, 0xa0,
                                      0x1680, 0x2003, 0x2028, 0x3000, 0xfeff, 0x200b, 0x1c, 0x1f};
    switch (rnd() % 8) {
    case 0: return spaces[rnd() % (sizeof spaces / sizeof *spaces)];
    case 1: return (uint32_t)(rnd() % 0x80);
    case 2: return (uint32_t)(0x80 + rnd() % 0x780);
    case 3: {
        uint32_t c = (uint32_t)(0x800 + rnd() % 0xf800);
        return c >= 0xd800 && c < 0xe000 ? 0x4e00 : c;
    }
    case 4: return (uint32_t)(0x10000 + rnd() % 0x100000);
    case 5: return "'sStlrevmd"[rnd() % 10];
    default: return (uint32_t)('a' + rnd() % 26);
    }
}

/* nchar random characters into buf (4 bytes each at most): their length. Each one's bytes are
 * gpt2_utf8_encode's, and gpt2_utf8_decode reads the character back. */
static size_t put_random_text(char *buf, size_t nchar)
{
    size_t len = 0;
    for (size_t i = 0; i < nchar; i++) {
        uint32_t cp = random_cp(), back = 0;
        char mine[4];
        size_t n = put_cp(buf + len, cp);
        cr_assert_eq(gpt2_utf8_encode(cp, mine), n, "U+%04X: encoded length", cp);
        cr_assert(memcmp(mine, buf + len, n) == 0, "U+%04X: encoded bytes", cp);
        cr_assert_eq(gpt2_utf8_decode((const unsigned char *)buf + len, n, &back), n, "U+%04X: decode", cp);
        cr_assert_eq(back, cp);
        len += n;
    }
    return len;
}

Test(tokenizer, random_utf8_round_trips)
{
    char buf[4 * 200];
    for (int it = 0; it < 3000; it++) {
        size_t nchar = rnd() % 200, len = put_random_text(buf, nchar);
        cr_assert(valid_utf8((unsigned char *)buf, len));
        round_trip(buf, len);
    }
}

Test(tokenizer, invalid_utf8_rejected_with_offset)
{
    static const struct {
        const char *s;
        size_t len, off;
    } bad[] = {
        {"ab\xff", 3, 2},               /* byte that never occurs */
        {"a\xc3", 2, 1},                /* truncated at the end */
        {"a\xc3(", 3, 1},               /* bad continuation */
        {"\xed\xa0\x80", 3, 0},         /* surrogate */
        {"xy\xc0\xaf", 4, 2},           /* overlong */
        {"\xe0\x80\xaf", 3, 0},         /* overlong, 3 bytes */
        {"hey \xf4\x90\x80\x80", 8, 4}, /* above U+10FFFF */
        {"\x80", 1, 0},                 /* lone continuation */
        {"ok \xe2\x82", 6, 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *ids = (int32_t *)1;
        size_t n = 99;
        char err[256] = "", want[64];
        cr_assert_eq(gpt2_tokenize(tok, bad[i].s, bad[i].len, &ids, &n, err, sizeof err), -1, "case %zu", i);
        cr_assert_null(ids);
        cr_assert_eq(n, 0u);
        snprintf(want, sizeof want, "offset %zu", bad[i].off);
        cr_assert(strstr(err, "invalid UTF-8") && strstr(err, want), "case %zu: %s", i, err);
    }
}

static void timed(const char *what, const char *text, size_t len)
{
    int32_t *ids;
    size_t n;
    char err[256] = "";
    double t0 = now();
    cr_assert_eq(gpt2_tokenize(tok, text, len, &ids, &n, err, sizeof err), 0, "%s", err);
    double dt = now() - t0;
    fprintf(stderr, "tokenizer speed: %s: %zu bytes -> %zu ids in %.3f s\n", what, len, n, dt);
    cr_assert_lt(dt, TIME_LIMIT, "%s took %.3f s", what, dt);
    size_t m;
    char *back = gpt2_detokenize_alloc(&vocab, ids, n, &m, err, sizeof err);
    cr_assert(back && m == len && memcmp(back, text, len) == 0);
    free(back);
    free(ids);
}

Test(tokenizer, speed_long_word)
{
    char *w = malloc(100001);
    for (int i = 0; i < 5000; i++) w[i] = (char)('a' + rnd() % 26);
    timed("5000-letter word", w, 5000);
    for (int i = 0; i < 5000; i++) w[i] = 'a';
    timed("5000 x 'a'", w, 5000);
    for (int i = 0; i < 100000; i++) w[i] = (char)('a' + rnd() % 26);
    timed("100000-letter word", w, 100000);
    for (int i = 0; i < 100000; i++) w[i] = ' ';
    timed("100000 spaces", w, 100000);
    free(w);
}

Test(tokenizer, speed_one_megabyte)
{
    static const char *words[] = {
        "the",  "of",    "and",   "to",  "in",   "is",         "that",   "for",    "it",  "as",   "was",
        "with", "be",    "by",    "on",  "not",  "he",         "I",      "this",   "are", "or",   "his",
        "from", "at",    "which", "but", "have", "an",         "had",    "they",   "you", "were", "their",
        "one",  "all",   "we",    "can", "her",  "has",        "there",  "been",   "if",  "more", "when",
        "will", "would", "who",   "so",  "no",   "lighthouse", "keeper", "harbour"};
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap + 64);
    while (len < cap) {
        uint64_t r = rnd();
        if (r % 13 == 0)
            len += (size_t)sprintf(text + len, " %u", (unsigned)(r >> 20) % 100000);
        else if (r % 17 == 0)
            len += (size_t)sprintf(text + len, ".\n");
        else if (r % 19 == 0)
            len += (size_t)sprintf(text + len, ", ");
        else if (r % 23 == 0) { /* a made-up word, so the cache does not see everything */
            text[len++] = ' ';
            for (int k = 0; k < 4 + (int)(r >> 40) % 8; k++) text[len++] = (char)('a' + rnd() % 26);
        } else
            len += (size_t)sprintf(text + len, " %s", words[(r >> 8) % (sizeof words / sizeof *words)]);
    }
    timed("1 MB of text", text, len);
    free(text);
}

Test(tokenizer, emoji_stream_holds_partial_characters)
{
    const char *emoji = "\xf0\x9f\x98\x80"; /* U+1F600 */
    int32_t *ids;
    size_t n;
    char err[256] = "";
    cr_assert_eq(gpt2_tokenize(tok, emoji, 4, &ids, &n, err, sizeof err), 0, "%s", err);
    cr_assert_geq(n, 2u, "the emoji should take several byte tokens");
    gpt2_stream s;
    gpt2_stream_init(&s, &vocab);
    const char *o;
    size_t ol;
    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert_eq(gpt2_stream_feed(&s, ids[i], &o, &ol, err, sizeof err), 0);
        cr_assert_eq(ol, 0u, "emitted part of a character after token %zu", i);
    }
    cr_assert_eq(gpt2_stream_feed(&s, ids[n - 1], &o, &ol, err, sizeof err), 0);
    cr_assert_eq(ol, 4u);
    cr_assert(memcmp(o, emoji, 4) == 0);
    gpt2_stream_flush(&s, &o, &ol);
    cr_assert_eq(ol, 0u);

    /* text around it: "a" comes out at once, the emoji only when complete */
    cr_assert_eq(gpt2_stream_feed(&s, 64, &o, &ol, err, sizeof err), 0);
    cr_assert(ol == 1 && o[0] == 'a');
    cr_assert_eq(gpt2_stream_feed(&s, ids[0], &o, &ol, err, sizeof err), 0);
    cr_assert_eq(ol, 0u);
    /* ended early: the flush hands out the held bytes as they are */
    gpt2_stream_flush(&s, &o, &ol);
    cr_assert_eq(ol, vocab.len[ids[0]]);
    cr_assert(memcmp(o, vocab.tok[ids[0]], ol) == 0);

    /* a byte that starts nothing passes straight through; an interrupted sequence is released */
    int32_t b_ff = -1, b_e2 = -1;
    for (int32_t i = 0; i < 256; i++) {
        if ((unsigned char)vocab.tok[i][0] == 0xff) b_ff = i;
        if ((unsigned char)vocab.tok[i][0] == 0xe2) b_e2 = i;
    }
    cr_assert_eq(gpt2_stream_feed(&s, b_ff, &o, &ol, err, sizeof err), 0);
    cr_assert(ol == 1 && (unsigned char)o[0] == 0xff);
    cr_assert_eq(gpt2_stream_feed(&s, b_e2, &o, &ol, err, sizeof err), 0);
    cr_assert_eq(ol, 0u);
    cr_assert_eq(gpt2_stream_feed(&s, 64, &o, &ol, err, sizeof err), 0);
    cr_assert(ol == 2 && (unsigned char)o[0] == 0xe2 && o[1] == 'a');
    gpt2_stream_flush(&s, &o, &ol);
    cr_assert_eq(ol, 0u);

    /* out of range ids are errors and leave the stream as it was */
    cr_assert_eq(gpt2_stream_feed(&s, ids[0], &o, &ol, err, sizeof err), 0);
    cr_assert_eq(gpt2_stream_feed(&s, vocab.n_tokens, &o, &ol, err, sizeof err), -1);
    cr_assert(strstr(err, "out of range"), "%s", err);
    cr_assert_eq(gpt2_stream_feed(&s, -1, &o, &ol, err, sizeof err), -1);
    for (size_t i = 1; i < n; i++) cr_assert_eq(gpt2_stream_feed(&s, ids[i], &o, &ol, err, sizeof err), 0);
    cr_assert(ol == 4 && memcmp(o, emoji, 4) == 0);
    gpt2_stream_free(&s);
    free(ids);
}

Test(tokenizer, random_stream_chunks_are_whole_characters)
{
    char buf[4 * 100];
    for (int it = 0; it < 500; it++) {
        size_t nchar = 1 + rnd() % 100, len = put_random_text(buf, nchar);
        int32_t *ids;
        size_t n;
        char err[256] = "";
        cr_assert_eq(gpt2_tokenize(tok, buf, len, &ids, &n, err, sizeof err), 0, "%s", err);
        gpt2_stream s;
        gpt2_stream_init(&s, &vocab);
        char acc[4 * 100];
        size_t an = 0;
        const char *o;
        size_t ol;
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(gpt2_stream_feed(&s, ids[i], &o, &ol, err, sizeof err), 0);
            cr_assert(valid_utf8((const unsigned char *)o, ol), "chunk is not whole characters");
            cr_assert_leq(an + ol, len);
            memcpy(acc + an, o, ol);
            an += ol;
        }
        gpt2_stream_flush(&s, &o, &ol);
        cr_assert_eq(ol, 0u);
        cr_assert(an == len && memcmp(acc, buf, len) == 0);
        gpt2_stream_free(&s);
        free(ids);
    }
}

Test(tokenizer, detokenize_rejects_bad_ids)
{
    int32_t ids[] = {15496, 995, 50257};
    char out[64], err[256] = "";
    size_t m = 0;
    cr_assert_eq(gpt2_detokenize(&vocab, ids, 2, out, sizeof out, &m, err, sizeof err), 0, "%s", err);
    cr_assert(m == 11 && strcmp(out, "Hello world") == 0);
    cr_assert_eq(gpt2_detokenize_size(&vocab, ids, 2), 11u);
    cr_assert_eq(gpt2_detokenize(&vocab, ids, 3, out, sizeof out, &m, err, sizeof err), -1);
    cr_assert(strstr(err, "50257") && strstr(err, "index 2"), "%s", err);
    ids[2] = -5;
    cr_assert_null(gpt2_detokenize_alloc(&vocab, ids, 3, &m, err, sizeof err));
    cr_assert(strstr(err, "-5"), "%s", err);
    cr_assert_eq(gpt2_detokenize(&vocab, ids, 2, out, 5, &m, err, sizeof err), -1);
    cr_assert(strstr(err, "too small"), "%s", err);
    /* eot decodes to its text */
    ids[0] = vocab.eot;
    char *s = gpt2_detokenize_alloc(&vocab, ids, 1, &m, err, sizeof err);
    cr_assert(s && strcmp(s, "<|endoftext|>") == 0);
    free(s);
}

Test(tokenizer, create_checks_vocabulary)
{
    gpt2_vocab v;
    char err[256] = "";
    cr_assert_eq(gpt2_vocab_make_bytes(&v, 0), 0);
    free(v.tok[10]);
    v.tok[10] = malloc(3);
    memcpy(v.tok[10], "xy", 3);
    v.len[10] = 2;
    cr_assert_null(gpt2_tokenizer_create(&v, err, sizeof err));
    cr_assert(strstr(err, "byte"), "%s", err);
    gpt2_vocab_free(&v);
}

Test(tokenizer, byte_vocab_round_trips)
{
    gpt2_vocab v;
    char err[256] = "";
    cr_assert_eq(gpt2_vocab_make_bytes(&v, 200), 0);
    gpt2_tokenizer *t = gpt2_tokenizer_create(&v, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    gpt2_vocab_free(&v); /* the tokenizer keeps its own copy */
    const gpt2_vocab *tv = gpt2_tokenizer_vocab(t);
    const char *text = "The keeper climbed the stairs to light the lamp. \xe2\x9c\x93 <|endoftext|>";
    int32_t *ids;
    size_t n;
    cr_assert_eq(gpt2_tokenize(t, text, strlen(text), &ids, &n, err, sizeof err), 0, "%s", err);
    cr_assert_lt(n, strlen(text), "merges should shorten ordinary English");
    for (size_t i = 0; i < n; i++) cr_assert(ids[i] >= 0 && ids[i] < tv->eot);
    size_t m;
    char *back = gpt2_detokenize_alloc(tv, ids, n, &m, err, sizeof err);
    cr_assert(back && m == strlen(text) && memcmp(back, text, m) == 0);
    free(back);
    free(ids);
    gpt2_tokenizer_free(t);
}
