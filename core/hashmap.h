/* hashmap.h - the hash tables of vkgpt2 (open addressing, linear probing, power-of-two sizes, at
 * most half full): a token index (a vocabulary's token bytes -> id) and a pair map ((left id,
 * right id) -> an int32, for merge ranks). One byte hash (FNV-1a) and one integer mixer (MurmurHash3's
 * finalizer) serve them and the tokenizer's pre-token cache.
 */
#ifndef VKG_HASHMAP_H
#define VKG_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* FNV-1a (64-bit) of n bytes. */
uint64_t gpt2_hash_bytes(const void *s, size_t n);
/* A well-spread 64-bit hash of k. */
uint64_t gpt2_hash_u64(uint64_t k);

/* ---- token index: bytes -> the id of the vocabulary holding them ---- */
typedef struct gpt2_tokmap {
    const gpt2_vocab *v; /* the vocabulary indexed (not owned; its tokens must outlive the map) */
    int32_t *slot;       /* ids, -1 empty */
    size_t mask;         /* slots - 1 */
} gpt2_tokmap;

/* An empty index with room for every token of v. 0, or -1 when out of memory. */
int gpt2_tokmap_init(gpt2_tokmap *m, const gpt2_vocab *v);
/* gpt2_tokmap_init, then every id added in order (the first id with given bytes wins). */
int gpt2_tokmap_build(gpt2_tokmap *m, const gpt2_vocab *v);
/* Adds id; returns the id already holding the same bytes (id is then not added), or -1. */
int32_t gpt2_tokmap_add(gpt2_tokmap *m, int32_t id);
/* The id holding bytes s[0..n), or -1. */
int32_t gpt2_tokmap_find(const gpt2_tokmap *m, const char *s, size_t n);
void gpt2_tokmap_free(gpt2_tokmap *m);

/* ---- pair map: (a, b) -> value ---- */
typedef struct gpt2_pair_ent {
    uint64_t key; /* (a << 32 | b) + 1; 0 empty */
    int32_t val;  /* the value stored for the pair */
} gpt2_pair_ent;
typedef struct gpt2_pairmap {
    gpt2_pair_ent *e; /* the slots */
    size_t mask;      /* slots - 1 */
} gpt2_pairmap;

/* An empty map with room for n pairs. 0, or -1 when out of memory. */
int gpt2_pairmap_init(gpt2_pairmap *m, size_t n);
/* Stores val for (a, b) unless the pair is there already (the first value stays); returns whether
 * it was stored. At most the n pairs of gpt2_pairmap_init. */
bool gpt2_pairmap_put_first(gpt2_pairmap *m, int32_t a, int32_t b, int32_t val);
/* The value of (a, b), or -1 when the pair is not there. */
static inline int32_t gpt2_pairmap_find(const gpt2_pairmap *m, int32_t a, int32_t b)
{
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (size_t i = gpt2_hash_u64(k) & m->mask;; i = (i + 1) & m->mask) {
        if (m->e[i].key == k) return m->e[i].val;
        if (m->e[i].key == 0) return -1;
    }
}
void gpt2_pairmap_free(gpt2_pairmap *m);

#endif
