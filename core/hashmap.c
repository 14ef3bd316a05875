/* hashmap.c - see hashmap.h. */
#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t gpt2_hash_bytes(const void *s, size_t n)
{
    const unsigned char *p = s;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t gpt2_hash_u64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

/* Slots for n entries at most half full (16 at least). */
static size_t table_size(size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 2) cap <<= 1;
    return cap;
}

/* ---------------------------------------------------------------- token index */

int gpt2_tokmap_init(gpt2_tokmap *m, const gpt2_vocab *v)
{
    size_t cap = table_size(v->n_tokens > 0 ? (size_t)v->n_tokens : 0);
    m->v = v;
    m->mask = cap - 1;
    m->slot = malloc(cap * sizeof *m->slot);
    if (!m->slot) return -1;
    for (size_t i = 0; i < cap; i++) m->slot[i] = -1;
    return 0;
}

int gpt2_tokmap_build(gpt2_tokmap *m, const gpt2_vocab *v)
{
    if (gpt2_tokmap_init(m, v)) return -1;
    for (int32_t id = 0; id < v->n_tokens; id++) gpt2_tokmap_add(m, id);
    return 0;
}

int32_t gpt2_tokmap_add(gpt2_tokmap *m, int32_t id)
{
    const char *s = m->v->tok[id];
    size_t n = m->v->len[id];
    for (size_t i = gpt2_hash_bytes(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t o = m->slot[i];
        if (o < 0) {
            m->slot[i] = id;
            return -1;
        }
        if (m->v->len[o] == n && memcmp(m->v->tok[o], s, n) == 0) return o;
    }
}

int32_t gpt2_tokmap_find(const gpt2_tokmap *m, const char *s, size_t n)
{
    for (size_t i = gpt2_hash_bytes(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slot[i];
        if (id < 0) return -1;
        if (m->v->len[id] == n && memcmp(m->v->tok[id], s, n) == 0) return id;
    }
}

void gpt2_tokmap_free(gpt2_tokmap *m)
{
    free(m->slot);
    m->slot = NULL;
}

/* ---------------------------------------------------------------- pair map */

int gpt2_pairmap_init(gpt2_pairmap *m, size_t n)
{
    size_t cap = table_size(n);
    m->e = calloc(cap, sizeof *m->e);
    m->mask = cap - 1;
    return m->e ? 0 : -1;
}

bool gpt2_pairmap_put_first(gpt2_pairmap *m, int32_t a, int32_t b, int32_t val)
{
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t i = gpt2_hash_u64(k) & m->mask;
    while (m->e[i].key != 0 && m->e[i].key != k) i = (i + 1) & m->mask;
    if (m->e[i].key == k) return false;
    m->e[i].key = k;
    m->e[i].val = val;
    return true;
}

void gpt2_pairmap_free(gpt2_pairmap *m)
{
    free(m->e);
    m->e = NULL;
}
