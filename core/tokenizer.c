/* tokenizer.c - see tokenizer.h. PCRE2 pre-tokenizer, heap-driven BPE with a pre-token cache. */
#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vocab.h"
#include "err.h"
#include "utf8.h"
#include "hashmap.h"

/* \s as OpenAI's encoder (Python's `regex` module) reads it: the Unicode White_Space property, i.e.
 * tab, LF, VT, FF, CR, space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
 * U+205F, U+3000. Not U+001C..U+001F (Python's str.isspace has those), not U+FEFF (JavaScript's \s
 * has it), not U+180E (PCRE2's \h has it): so the class is spelled out rather than left to \s. */
#define WS                                                                                                   \
    "\\t\\n\\x0b\\f\\r\\x20\\x85\\xa0\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{"   \
    "3000}"
static const char pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

enum { CACHE_MAX_KEY = 128, CACHE_MAX_ENTRIES = 1 << 16 };

typedef struct heap_ent {
    int32_t rank, pos, right, a, b;
} heap_ent;
typedef struct cache_ent {
    uint64_t hash;
    uint32_t koff, klen, ioff, nids;
    bool used;
} cache_ent;

struct gpt2_tokenizer {
    gpt2_vocab v;
    int32_t byte_id[256];
    gpt2_pairmap merges; /* (left id, right id) -> the merge's rank (the first rule of a pair) */
    int32_t *merge_res;  /* rank -> the id the merge makes */
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    bool jit;
    /* BPE scratch */
    int32_t *sym, *prev, *next;
    heap_ent *heap;
    size_t scap;
    /* pre-token cache: keys and ids live in two growing arenas */
    cache_ent *ct;
    size_t cmask, ccount;
    char *ckeys;
    size_t ckeys_len, ckeys_cap;
    int32_t *cids;
    size_t cids_len, cids_cap;
};

/* ---------------------------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------------------------- */

void gpt2_tokenizer_free(gpt2_tokenizer *t)
{
    if (!t) return;
    gpt2_vocab_free(&t->v);
    gpt2_pairmap_free(&t->merges);
    free(t->merge_res);
    if (t->md) pcre2_match_data_free(t->md);
    if (t->mctx) pcre2_match_context_free(t->mctx);
    if (t->jstack) pcre2_jit_stack_free(t->jstack);
    if (t->re) pcre2_code_free(t->re);
    free(t->sym);
    free(t->prev);
    free(t->next);
    free(t->heap);
    free(t->ct);
    free(t->ckeys);
    free(t->cids);
    free(t);
}

const gpt2_vocab *gpt2_tokenizer_vocab(const gpt2_tokenizer *t) { return &t->v; }

gpt2_tokenizer *gpt2_tokenizer_create(const gpt2_vocab *v, char *err, size_t errlen)
{
    gpt2_tokenizer *t = calloc(1, sizeof *t);
    if (!t || gpt2_vocab_copy(&t->v, v)) {
        free(t);
        gpt2_errf(err, errlen, "tokenizer: out of memory");
        return NULL;
    }
    const gpt2_vocab *tv = &t->v;

    /* bytes -> id for single bytes, and a lookup for merge results */
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    gpt2_tokmap smap; /* the first id with given bytes wins */
    if (gpt2_tokmap_build(&smap, tv)) goto oom;
    for (int32_t id = 0; id < tv->n_tokens; id++)
        if (tv->len[id] == 1 && t->byte_id[(uint8_t)tv->tok[id][0]] < 0)
            t->byte_id[(uint8_t)tv->tok[id][0]] = id;
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0) {
            gpt2_tokmap_free(&smap);
            gpt2_errf(err, errlen, "tokenizer: the vocabulary has no token for byte 0x%02x", b);
            gpt2_tokenizer_free(t);
            return NULL;
        }

    t->merge_res = malloc(((size_t)tv->n_merges + 1) * sizeof *t->merge_res);
    if (!t->merge_res || gpt2_pairmap_init(&t->merges, (size_t)tv->n_merges)) {
        gpt2_tokmap_free(&smap);
        goto oom;
    }
    char *cat = NULL;
    size_t catcap = 0;
    for (int32_t r = 0; r < tv->n_merges; r++) {
        int32_t a = tv->merges[r][0], b = tv->merges[r][1];
        if (a < 0 || a >= tv->n_tokens || b < 0 || b >= tv->n_tokens) {
            gpt2_tokmap_free(&smap);
            free(cat);
            gpt2_errf(err, errlen, "tokenizer: merge %d names an id out of range", (int)r);
            gpt2_tokenizer_free(t);
            return NULL;
        }
        size_t la = tv->len[a], lb = tv->len[b];
        if (la + lb > catcap) {
            catcap = (la + lb) * 2;
            char *nc = realloc(cat, catcap);
            if (!nc) {
                gpt2_tokmap_free(&smap);
                free(cat);
                goto oom;
            }
            cat = nc;
        }
        memcpy(cat, tv->tok[a], la);
        memcpy(cat + la, tv->tok[b], lb);
        int32_t res = gpt2_tokmap_find(&smap, cat, la + lb);
        if (res < 0) {
            gpt2_tokmap_free(&smap);
            free(cat);
            gpt2_errf(err, errlen, "tokenizer: merge %d (%d %d) makes a token that is not in the vocabulary",
                      (int)r, (int)a, (int)b);
            gpt2_tokenizer_free(t);
            return NULL;
        }
        t->merge_res[r] = res;
        gpt2_pairmap_put_first(&t->merges, a, b, r); /* a repeated pair keeps its first (best) rank */
    }
    free(cat);
    gpt2_tokmap_free(&smap);

    int ecode;
    PCRE2_SIZE eoff;
    t->re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ecode, &eoff, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        gpt2_errf(err, errlen, "tokenizer: pattern does not compile at %zu: %s", (size_t)eoff, (char *)msg);
        gpt2_tokenizer_free(t);
        return NULL;
    }
    t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    t->mctx = pcre2_match_context_create(NULL);
    if (!t->md || !t->mctx) goto oom;
    if (pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0) {
        t->jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (t->jstack) pcre2_jit_stack_assign(t->mctx, NULL, t->jstack);
        t->jit = true;
    }

    t->cmask = 1024 - 1;
    t->ct = calloc(t->cmask + 1, sizeof *t->ct);
    if (!t->ct) goto oom;
    return t;
oom:
    gpt2_errf(err, errlen, "tokenizer: out of memory");
    gpt2_tokenizer_free(t);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * BPE of one pre-token
 * ------------------------------------------------------------------------------------------- */

static bool heap_less(const heap_ent *x, const heap_ent *y)
{
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n)
{
    heap_ent top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static void push_pair(gpt2_tokenizer *t, size_t *hn, int32_t l, int32_t r)
{
    int32_t rank = gpt2_pairmap_find(&t->merges, t->sym[l], t->sym[r]);
    if (rank >= 0) heap_push(t->heap, hn, (heap_ent){rank, l, r, t->sym[l], t->sym[r]});
}

/* Merges the bytes s[0..n) and leaves the ids in t->sym, in order, returning their count. */
static size_t bpe(gpt2_tokenizer *t, const char *s, size_t n)
{
    int32_t *sym = t->sym, *prev = t->prev, *next = t->next;
    for (size_t i = 0; i < n; i++) {
        sym[i] = t->byte_id[(uint8_t)s[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = (int32_t)i + 1;
    }
    if (n < 2) return n;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, &hn, (int32_t)i, (int32_t)i + 1);
    while (hn) {
        heap_ent e = heap_pop(t->heap, &hn);
        /* stale unless both symbols are still there, still adjacent, still the same tokens */
        if (sym[e.pos] != e.a || next[e.pos] != e.right || sym[e.right] != e.b) continue;
        sym[e.pos] = t->merge_res[e.rank];
        sym[e.right] = -1;
        int32_t nr = next[e.right];
        next[e.pos] = nr;
        if (nr < (int32_t)n) prev[nr] = e.pos;
        if (prev[e.pos] >= 0) push_pair(t, &hn, prev[e.pos], e.pos);
        if (nr < (int32_t)n) push_pair(t, &hn, e.pos, nr);
    }
    size_t k = 0;
    for (int32_t i = 0; i < (int32_t)n; i = next[i]) sym[k++] = sym[i];
    return k;
}

static int ensure_scratch(gpt2_tokenizer *t, size_t n)
{
    if (n <= t->scap) return 0;
    size_t c = t->scap ? t->scap : 64;
    while (c < n) c *= 2;
    int32_t *a = realloc(t->sym, c * sizeof *a);
    if (a) t->sym = a;
    int32_t *b = realloc(t->prev, c * sizeof *b);
    if (b) t->prev = b;
    int32_t *d = realloc(t->next, c * sizeof *d);
    if (d) t->next = d;
    heap_ent *h = realloc(t->heap, 3 * c * sizeof *h); /* n initial pairs + 2 per merge */
    if (h) t->heap = h;
    if (!a || !b || !d || !h) return -1;
    t->scap = c;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Cache
 * ------------------------------------------------------------------------------------------- */

static void cache_clear(gpt2_tokenizer *t)
{
    memset(t->ct, 0, (t->cmask + 1) * sizeof *t->ct);
    t->ccount = 0;
    t->ckeys_len = 0;
    t->cids_len = 0;
}

static const cache_ent *cache_find(const gpt2_tokenizer *t, const char *s, size_t n, uint64_t h)
{
    for (size_t i = h & t->cmask; t->ct[i].used; i = (i + 1) & t->cmask) {
        const cache_ent *e = &t->ct[i];
        if (e->hash == h && e->klen == n && memcmp(t->ckeys + e->koff, s, n) == 0) return e;
    }
    return NULL;
}

static void cache_put(gpt2_tokenizer *t, const char *s, size_t n, uint64_t h, const int32_t *ids, size_t k)
{
    if (t->ccount >= CACHE_MAX_ENTRIES) cache_clear(t);
    if ((t->ccount + 1) * 2 > t->cmask + 1) { /* grow the table */
        size_t nc = (t->cmask + 1) * 2;
        cache_ent *nt = calloc(nc, sizeof *nt);
        if (!nt) return;
        for (size_t i = 0; i <= t->cmask; i++) {
            if (!t->ct[i].used) continue;
            size_t j = t->ct[i].hash & (nc - 1);
            while (nt[j].used) j = (j + 1) & (nc - 1);
            nt[j] = t->ct[i];
        }
        free(t->ct);
        t->ct = nt;
        t->cmask = nc - 1;
    }
    if (t->ckeys_len + n > t->ckeys_cap) {
        size_t c = t->ckeys_cap ? t->ckeys_cap * 2 : 1 << 16;
        while (c < t->ckeys_len + n) c *= 2;
        char *p = realloc(t->ckeys, c);
        if (!p) return;
        t->ckeys = p;
        t->ckeys_cap = c;
    }
    if (t->cids_len + k > t->cids_cap) {
        size_t c = t->cids_cap ? t->cids_cap * 2 : 1 << 14;
        while (c < t->cids_len + k) c *= 2;
        int32_t *p = realloc(t->cids, c * sizeof *p);
        if (!p) return;
        t->cids = p;
        t->cids_cap = c;
    }
    size_t i = h & t->cmask;
    while (t->ct[i].used) i = (i + 1) & t->cmask;
    t->ct[i] = (cache_ent){h, (uint32_t)t->ckeys_len, (uint32_t)n, (uint32_t)t->cids_len, (uint32_t)k, true};
    memcpy(t->ckeys + t->ckeys_len, s, n);
    t->ckeys_len += n;
    memcpy(t->cids + t->cids_len, ids, k * sizeof *ids);
    t->cids_len += k;
    t->ccount++;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------------- */

typedef struct idvec {
    int32_t *p;
    size_t n, cap;
} idvec;

static int idvec_add(idvec *v, const int32_t *ids, size_t k)
{
    if (v->n + k > v->cap) {
        size_t c = v->cap ? v->cap * 2 : 256;
        while (c < v->n + k) c *= 2;
        int32_t *p = realloc(v->p, c * sizeof *p);
        if (!p) return -1;
        v->p = p;
        v->cap = c;
    }
    memcpy(v->p + v->n, ids, k * sizeof *ids);
    v->n += k;
    return 0;
}

/* Encodes one pre-token onto out. */
static int encode_piece(gpt2_tokenizer *t, const char *s, size_t n, idvec *out)
{
    if (n == 0) return 0;
    if (n == 1) return idvec_add(out, &t->byte_id[(uint8_t)s[0]], 1);
    uint64_t h = 0;
    if (n <= CACHE_MAX_KEY) {
        h = gpt2_hash_bytes(s, n);
        const cache_ent *e = cache_find(t, s, n, h);
        if (e) return idvec_add(out, t->cids + e->ioff, e->nids);
    }
    if (ensure_scratch(t, n)) return -1;
    size_t k = bpe(t, s, n);
    if (n <= CACHE_MAX_KEY) cache_put(t, s, n, h, t->sym, k);
    return idvec_add(out, t->sym, k);
}

int gpt2_tokenize(gpt2_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, char *err,
                  size_t errlen)
{
    *ids = NULL;
    *n = 0;
    if (len && !text) {
        gpt2_errf(err, errlen, "tokenize: NULL text");
        return -1;
    }
    size_t bad = gpt2_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad < len) {
        gpt2_errf(err, errlen, "tokenize: invalid UTF-8 at byte offset %zu (byte 0x%02x)", bad,
                  (unsigned)(unsigned char)text[bad]);
        return -1;
    }
    idvec out = {0};
    size_t pos = 0;
    bool use_jit = t->jit;
    while (pos < len) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)text, len, pos,
                             PCRE2_NO_UTF_CHECK | (use_jit ? 0 : PCRE2_NO_JIT), t->md, t->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && use_jit) {
            use_jit = false;
            continue;
        }
        size_t s, e;
        if (rc == PCRE2_ERROR_NOMATCH) {
            s = e = len;
        } else if (rc < 0) {
            PCRE2_UCHAR msg[200];
            pcre2_get_error_message(rc, msg, sizeof msg);
            gpt2_errf(err, errlen, "tokenize: pattern match failed at byte offset %zu: %s", pos, (char *)msg);
            free(out.p);
            return -1;
        } else {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
            s = ov[0];
            e = ov[1];
        }
        /* The pattern covers every character, so nothing is skipped; bytes that were would still be
         * encoded rather than lost. */
        if (s > pos && encode_piece(t, text + pos, s - pos, &out)) goto oom;
        if (e <= s) { /* an empty match cannot happen; never loop on one */
            if (e >= len) break;
            e = s + 1;
            while (e < len && ((unsigned char)text[e] & 0xc0) == 0x80) e++;
        }
        if (encode_piece(t, text + s, e - s, &out)) goto oom;
        pos = e;
    }
    *ids = out.p;
    *n = out.n;
    return 0;
oom:
    free(out.p);
    gpt2_errf(err, errlen, "tokenize: out of memory");
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------------------------- */

size_t gpt2_detokenize_size(const gpt2_vocab *v, const int32_t *ids, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < v->n_tokens) total += v->len[ids[i]];
    return total;
}

int gpt2_detokenize(const gpt2_vocab *v, const int32_t *ids, size_t n, char *out, size_t cap, size_t *out_len,
                    char *err, size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= v->n_tokens) {
            gpt2_errf(err, errlen, "detokenize: id %d at index %zu is out of range [0, %d)", (int)id, i,
                      (int)v->n_tokens);
            return -1;
        }
        if (cap - o < v->len[id]) {
            gpt2_errf(err, errlen, "detokenize: output buffer of %zu bytes is too small", cap);
            return -1;
        }
        memcpy(out + o, v->tok[id], v->len[id]);
        o += v->len[id];
    }
    if (o < cap) out[o] = 0;
    if (out_len) *out_len = o;
    return 0;
}

char *gpt2_detokenize_alloc(const gpt2_vocab *v, const int32_t *ids, size_t n, size_t *out_len, char *err,
                            size_t errlen)
{
    size_t need = gpt2_detokenize_size(v, ids, n) + 1;
    char *buf = malloc(need);
    if (!buf) {
        gpt2_errf(err, errlen, "detokenize: out of memory");
        return NULL;
    }
    if (gpt2_detokenize(v, ids, n, buf, need, out_len, err, errlen)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * Streaming decoder
 * ------------------------------------------------------------------------------------------- */

void gpt2_stream_init(gpt2_stream *s, const gpt2_vocab *v)
{
    memset(s, 0, sizeof *s);
    s->v = v;
}

void gpt2_stream_free(gpt2_stream *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
    s->n_held = 0;
}

int gpt2_stream_feed(gpt2_stream *s, int32_t id, const char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = s->buf ? s->buf : "";
    *out_len = 0;
    if (id < 0 || id >= s->v->n_tokens) {
        gpt2_errf(err, errlen, "detokenize: id %d is out of range [0, %d)", (int)id, (int)s->v->n_tokens);
        return -1;
    }
    size_t n = s->v->len[id], need = n + s->n_held + 1;
    if (need > s->cap) {
        size_t c = s->cap ? s->cap : 64;
        while (c < need) c *= 2;
        char *p = realloc(s->buf, c);
        if (!p) {
            gpt2_errf(err, errlen, "detokenize: out of memory");
            return -1;
        }
        s->buf = p;
        s->cap = c;
    }
    const unsigned char *b = (const unsigned char *)s->v->tok[id];
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = b[i];
        if (s->n_held == 0) {
            if (gpt2_utf8_seq_len(c) > 1)
                s->held[s->n_held++] = (unsigned char)c;
            else
                s->buf[o++] = (char)c; /* ASCII, or a byte that starts nothing: pass it on */
            i++;
            continue;
        }
        if (gpt2_utf8_continues(s->held[0], s->n_held, c)) {
            s->held[s->n_held++] = (unsigned char)c;
            i++;
            if (s->n_held == gpt2_utf8_seq_len(s->held[0])) {
                memcpy(s->buf + o, s->held, s->n_held);
                o += s->n_held;
                s->n_held = 0;
            }
            continue;
        }
        /* the held bytes can never complete: pass them on and look at c afresh */
        memcpy(s->buf + o, s->held, s->n_held);
        o += s->n_held;
        s->n_held = 0;
    }
    s->buf[o] = 0;
    *out = s->buf;
    *out_len = o;
    return 0;
}

void gpt2_stream_flush(gpt2_stream *s, const char **out, size_t *out_len)
{
    if (s->cap < 5) {
        char *p = realloc(s->buf, 64);
        if (!p) {
            *out = "";
            *out_len = 0;
            s->n_held = 0;
            return;
        }
        s->buf = p;
        s->cap = 64;
    }
    memcpy(s->buf, s->held, s->n_held);
    s->buf[s->n_held] = 0;
    *out = s->buf;
    *out_len = s->n_held;
    s->n_held = 0;
}
