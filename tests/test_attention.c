/* test_attention.c - cpu_attention against a float64 causal reference: new tokens after a filled
 * cache (n_past > 0, n > 1), f32 and f16 caches, head_dim 64 and odd ones, every ISA, with and
 * without the pool; cpu_attention_rows (a batched decode step: rows in their own slots and positions)
 * against the same reference per row. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"
#include "test_isa.h"
#include "test_rng.h"

/* cache element idx (a cpu_kv_index) as a float */
static float cache_at(const void *c, gpt2_dtype t, size_t idx) { return gpt2_load(c, t, idx); }

/* where column e of cache row j sits (the CPU's head-major layout) */
#define KV(j, e) cpu_kv_index(n_ctx, E, hd, (size_t)(j), (e))

/* n random K and V cache elements in [-1.5, 1.5) of type t, drawn in turn. */
static void fill_kv(void *k, void *v, gpt2_dtype t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float a = rnd(-1.5f, 1.5f), b = rnd(-1.5f, 1.5f);
        if (t == GPT2_F16) {
            ((uint16_t *)k)[i] = gpt2_f32_to_f16(a);
            ((uint16_t *)v)[i] = gpt2_f32_to_f16(b);
        } else {
            ((float *)k)[i] = a;
            ((float *)v)[i] = b;
        }
    }
}

static void check(int n, int n_past, int n_head, int hd, gpt2_dtype kt, cpu_pool *pool, uint64_t seed)
{
    const int E = n_head * hd, n_ctx = n_past + n + 2;
    const size_t es = gpt2_dtype_size(kt);
    rng_seed(seed);
    float *qkv = malloc((size_t)n * 3 * E * sizeof(float));
    for (int i = 0; i < n * 3 * E; i++) qkv[i] = rnd(-1.5f, 1.5f);
    void *k0 = malloc((size_t)n_ctx * E * es), *v0 = malloc((size_t)n_ctx * E * es);
    void *kc = malloc((size_t)n_ctx * E * es), *vc = malloc((size_t)n_ctx * E * es);
    fill_kv(k0, v0, kt, (size_t)n_ctx * E);
    /* expected K and V (float) for rows 0 .. n_past + n - 1 */
    float *ke = malloc((size_t)(n_past + n) * E * sizeof(float));
    float *ve = malloc((size_t)(n_past + n) * E * sizeof(float));
    for (int j = 0; j < n_past + n; j++)
        for (int e = 0; e < E; e++) {
            size_t i = (size_t)j * E + e;
            if (j < n_past) {
                ke[i] = cache_at(k0, kt, KV(j, e));
                ve[i] = cache_at(v0, kt, KV(j, e));
            } else {
                const float *r = qkv + (size_t)(j - n_past) * 3 * E;
                ke[i] = kt == GPT2_F16 ? gpt2_f16_to_f32(gpt2_f32_to_f16(r[E + e])) : r[E + e];
                ve[i] = kt == GPT2_F16 ? gpt2_f16_to_f32(gpt2_f32_to_f16(r[2 * E + e])) : r[2 * E + e];
            }
        }
    float *out = malloc((size_t)n * E * sizeof(float)), *first = malloc((size_t)n * E * sizeof(float));
    double *sc = malloc((size_t)(n_past + n) * sizeof(double));
    cpu_isa isas[4];
    const int ni = isa_list(isas);
    for (int k = 0; k < ni; k++) {
        cpu_isa_force(isas[k]);
        memcpy(kc, k0, (size_t)n_ctx * E * es);
        memcpy(vc, v0, (size_t)n_ctx * E * es);
        for (int i = 0; i < n * E; i++) out[i] = NAN;
        cpu_attention(out, qkv, kc, vc, kt, n_ctx, n, n_past, n_head, hd, pool);
        /* the cache: old rows untouched, new rows hold the new K/V, rows after untouched */
        for (int j = 0; j < n_ctx; j++)
            for (int e = 0; e < E; e++) {
                const size_t c = KV(j, e);
                if (j < n_past || j >= n_past + n) {
                    cr_assert(memcmp((char *)kc + c * es, (char *)k0 + c * es, es) == 0 &&
                                  memcmp((char *)vc + c * es, (char *)v0 + c * es, es) == 0,
                              "cache row %d changed", j);
                } else {
                    const size_t i = (size_t)j * E + e;
                    cr_assert(cache_at(kc, kt, c) == ke[i] && cache_at(vc, kt, c) == ve[i],
                              "cache row %d col %d wrong", j, e);
                }
            }
        for (int t = 0; t < n; t++)
            for (int h = 0; h < n_head; h++) {
                const int L = n_past + t + 1;
                const float *q = qkv + (size_t)t * 3 * E + (size_t)h * hd;
                double m = -INFINITY, s = 0;
                for (int j = 0; j < L; j++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += (double)q[i] * ke[(size_t)j * E + h * hd + i];
                    sc[j] = d / sqrt((double)hd);
                    if (sc[j] > m) m = sc[j];
                }
                for (int j = 0; j < L; j++) {
                    sc[j] = exp(sc[j] - m);
                    s += sc[j];
                }
                for (int i = 0; i < hd; i++) {
                    double o = 0, oa = 0;
                    for (int j = 0; j < L; j++) {
                        double v = ve[(size_t)j * E + h * hd + i];
                        o += sc[j] / s * v;
                        oa += sc[j] / s * fabs(v);
                    }
                    double got = out[(size_t)t * E + h * hd + i];
                    double tol = 2e-5 * oa + 1e-7;
                    if (!(fabs(got - o) <= tol))
                        cr_assert(0,
                                  "%s %s n=%d n_past=%d heads=%d hd=%d t=%d h=%d i=%d: got %.9g "
                                  "want %.9g",
                                  cpu_isa_name(isas[k]), gpt2_dtype_name(kt), n, n_past, n_head, hd, t, h, i,
                                  got, o);
                }
            }
        if (k == 0) {
            memcpy(first, out, (size_t)n * E * sizeof(float));
        } else {
            for (int i = 0; i < n * E; i++)
                if (!(fabs(out[i] - first[i]) <= 2e-5 * (fabs(first[i]) + 1e-2)))
                    cr_assert(0, "%s vs scalar at %d: %.9g vs %.9g", cpu_isa_name(isas[k]), i, out[i],
                              first[i]);
        }
    }
    cpu_isa_force(cpu_isa_detect());
    free(qkv);
    free(k0);
    free(v0);
    free(kc);
    free(vc);
    free(ke);
    free(ve);
    free(out);
    free(first);
    free(sc);
}

Test(attention, shapes)
{
    static const int heads[][2] = {{2, 64}, {3, 5}, {1, 17}, {4, 1}, {1, 80}};
    static const int steps[][2] = {{1, 0}, {1, 9}, {3, 0}, {7, 5}, {33, 140}};
    uint64_t seed = 1;
    for (int ty = 0; ty < 2; ty++)
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 5; b++)
                check(steps[b][0], steps[b][1], heads[a][0], heads[a][1], ty ? GPT2_F16 : GPT2_F32, NULL,
                      seed++);
}

Test(attention, threaded)
{
    cpu_pool *pool = cpu_pool_create(3);
    cr_assert(pool);
    check(1, 300, 12, 64, GPT2_F32, pool, 77);
    check(1, 300, 12, 64, GPT2_F16, pool, 78);
    check(9, 20, 12, 64, GPT2_F16, pool, 79);
    check(5, 3, 3, 7, GPT2_F32, pool, 80);
    cpu_pool_destroy(pool);
}

Test(attention, peaked_scores)
{
    /* large q and k make one key dominate: exercises the running-max rescale */
    check(4, 200, 2, 16, GPT2_F32, NULL, 500);
}

/* ---- cpu_attention_rows: a batched decode step, one token of a different sequence per row ---- */

/* n rows over n slots of n_ctx cache rows each, row t in slot n-1-t (so slot order is not row
 * order) at position pos[t]; the float64 reference for row t is attention of q[t] over its slot's
 * keys 0..pos[t], the new K/V at pos[t]. Every other cache row must stay as it was. */
static void check_rows(int n, int n_head, int hd, gpt2_dtype kt, cpu_pool *pool, uint64_t seed)
{
    const int E = n_head * hd, n_ctx = 40;
    const size_t es = gpt2_dtype_size(kt), cells = (size_t)n * n_ctx * E;
    rng_seed(seed);
    float *qkv = malloc((size_t)n * 3 * E * sizeof(float));
    void *k0 = malloc(cells * es), *v0 = malloc(cells * es), *kc = malloc(cells * es),
         *vc = malloc(cells * es);
    float *out = malloc((size_t)n * E * sizeof(float));
    double *sc = malloc((size_t)n_ctx * sizeof(double));
    int *base = malloc((size_t)n * sizeof(int)), *pos = malloc((size_t)n * sizeof(int));
    cr_assert(qkv && k0 && v0 && kc && vc && out && sc && base && pos);
    for (int i = 0; i < n * 3 * E; i++) qkv[i] = rnd(-1.5f, 1.5f);
    fill_kv(k0, v0, kt, cells);
    for (int t = 0; t < n; t++) {
        base[t] = (n - 1 - t) * n_ctx;
        pos[t] = t == 0 ? 0 : t == 1 ? n_ctx - 1 : (int)(rng_unif() * n_ctx); /* both ends, then any */
    }
    cpu_isa isas[4];
    const int ni = isa_list(isas);
    for (int k = 0; k < ni; k++) {
        cpu_isa_force(isas[k]);
        memcpy(kc, k0, cells * es);
        memcpy(vc, v0, cells * es);
        for (int i = 0; i < n * E; i++) out[i] = NAN;
        cpu_attention_rows(out, qkv, kc, vc, kt, n_ctx, n, base, pos, n_head, hd, pool);
        for (int t = 0; t < n; t++) {
            const float *r = qkv + (size_t)t * 3 * E;
            /* row t's keys and values as floats: the cache, with the new row at pos[t] */
            for (int e = 0; e < E; e++) {
                size_t i = KV(base[t] + pos[t], e);
                float ke = kt == GPT2_F16 ? gpt2_f16_to_f32(gpt2_f32_to_f16(r[E + e])) : r[E + e];
                float ve = kt == GPT2_F16 ? gpt2_f16_to_f32(gpt2_f32_to_f16(r[2 * E + e])) : r[2 * E + e];
                cr_assert(cache_at(kc, kt, i) == ke && cache_at(vc, kt, i) == ve, "row %d: new K/V col %d", t,
                          e);
            }
            for (int h = 0; h < n_head; h++) {
                const float *q = r + (size_t)h * hd;
                double m = -INFINITY, s = 0;
                for (int j = 0; j <= pos[t]; j++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += (double)q[i] * cache_at(kc, kt, KV(base[t] + j, h * hd + i));
                    sc[j] = d / sqrt((double)hd);
                    if (sc[j] > m) m = sc[j];
                }
                for (int j = 0; j <= pos[t]; j++) s += sc[j] = exp(sc[j] - m);
                for (int i = 0; i < hd; i++) {
                    double o = 0, oa = 0;
                    for (int j = 0; j <= pos[t]; j++) {
                        double v = cache_at(vc, kt, KV(base[t] + j, h * hd + i));
                        o += sc[j] / s * v;
                        oa += sc[j] / s * fabs(v);
                    }
                    double got = out[(size_t)t * E + h * hd + i];
                    if (!(fabs(got - o) <= 2e-5 * oa + 1e-7))
                        cr_assert(0, "%s %s rows=%d row %d (pos %d) h=%d i=%d: got %.9g want %.9g",
                                  cpu_isa_name(isas[k]), gpt2_dtype_name(kt), n, t, pos[t], h, i, got, o);
                }
            }
        }
        /* nothing but each row's own new cache row changed */
        for (int j = 0; j < n * n_ctx; j++) {
            bool written = false;
            for (int t = 0; t < n; t++) written |= j == base[t] + pos[t];
            if (written) continue;
            for (int e = 0; e < E; e++) {
                const size_t off = KV(j, e) * es;
                cr_assert(memcmp((char *)kc + off, (char *)k0 + off, es) == 0 &&
                              memcmp((char *)vc + off, (char *)v0 + off, es) == 0,
                          "%s: cache row %d changed", cpu_isa_name(isas[k]), j);
            }
        }
    }
    cpu_isa_force(cpu_isa_detect());
    free(qkv);
    free(k0);
    free(v0);
    free(kc);
    free(vc);
    free(out);
    free(sc);
    free(base);
    free(pos);
}

Test(attention, rows_of_a_batched_step)
{
    uint64_t seed = 900;
    static const int heads[][2] = {{2, 64}, {3, 5}, {1, 17}};
    for (int ty = 0; ty < 2; ty++)
        for (int a = 0; a < 3; a++)
            for (int n = 1; n <= 5; n += 2)
                check_rows(n, heads[a][0], heads[a][1], ty ? GPT2_F16 : GPT2_F32, NULL, seed++);
    cpu_pool *pool = cpu_pool_create(3);
    cr_assert(pool);
    check_rows(6, 12, 64, GPT2_F16, pool, seed++);
    check_rows(4, 4, 32, GPT2_F32, pool, seed++);
    cpu_pool_destroy(pool);
}

/* ---- the cache layout: cpu_kv_index and cpu_kv_copy_slot ---- */

Test(attention, kv_index_is_head_major_and_one_to_one)
{
    const int n_ctx = 7, hd = 5, E = 3 * hd, slots = 2;
    const size_t cells = (size_t)slots * n_ctx * E;
    unsigned char *seen = calloc(cells, 1);
    cr_assert(seen);
    for (size_t j = 0; j < (size_t)slots * n_ctx; j++)
        for (int e = 0; e < E; e++) {
            const size_t c = KV(j, e);
            cr_assert(c < cells && !seen[c], "row %zu col %d -> %zu", j, e, c);
            seen[c] = 1;
            /* one head's positions of a slot are contiguous rows of hd */
            if (j % n_ctx > 0) cr_assert_eq(c, KV(j - 1, e) + (size_t)hd);
        }
    free(seen);
}

Test(attention, kv_copy_slot_moves_one_slot_prefix)
{
    const int n_ctx = 9, n_head = 3, hd = 4, E = n_head * hd, slots = 3, n = 6;
    for (int ty = 0; ty < 2; ty++) {
        const gpt2_dtype kt = ty ? GPT2_F16 : GPT2_F32;
        const size_t es = gpt2_dtype_size(kt), cells = (size_t)slots * n_ctx * E;
        rng_seed(40 + ty);
        void *c0 = malloc(cells * es), *c1 = malloc(cells * es), *junk = malloc(cells * es);
        cr_assert(c0 && c1 && junk);
        fill_kv(c0, junk, kt, cells);
        memcpy(c1, c0, cells * es);
        cpu_kv_copy_slot(c1, kt, n_ctx, n_head, hd, 0, 2, n);
        for (int s = 0; s < slots; s++)
            for (int p = 0; p < n_ctx; p++)
                for (int e = 0; e < E; e++) {
                    const size_t d = KV(s * n_ctx + p, e);
                    const size_t from = s == 0 && p < n ? KV(2 * n_ctx + p, e) : d;
                    cr_assert(memcmp((char *)c1 + d * es, (char *)c0 + from * es, es) == 0,
                              "%s slot %d pos %d col %d", gpt2_dtype_name(kt), s, p, e);
                }
        free(c0);
        free(c1);
        free(junk);
    }
}
