/* attention.c - causal multi-head attention over a KV cache (f32 or f16).
 *
 * The cache is head-major (cpu_kv_index): a sequence's keys (and values) of one head are
 * contiguous, so each (token, head) reads one stream per cache, which the hardware prefetcher
 * follows at full bandwidth (with the heads interleaved in each position's row, a head read a
 * 128-256 byte piece of every row, a strided walk that ran at half the bandwidth). The new tokens'
 * K and V go into the caches first; then one pool task per (token, head) walks the keys it may see
 * in blocks, with an online softmax: scores of a block, a running maximum, and the output
 * accumulator rescaled whenever the maximum grows. The task's output slice is its accumulator, so
 * no scratch memory is needed whatever the context length. In a batched decode step
 * (cpu_attention_rows) each row is its own sequence: its own cache rows and length.
 */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

#define KBLK 128 /* keys per score block */

typedef struct att_job {
    float *out;                    /* [n][E] */
    const float *qkv;              /* [n][3E] */
    const char *k, *v;             /* the caches */
    gpt2_dtype kt;                 /* their element type */
    int n_past;                    /* one sequence: token t at n_past + t (row_pos NULL) */
    int n_ctx, n_head, hd, E;      /* cache geometry */
    float scale;                   /* 1 / sqrt(head_dim) */
    const int *row_base, *row_pos; /* batched rows, or NULL: base 0 */
} att_job;

static void att_task(void *ctx, int idx)
{
    const att_job *j = ctx;
    const int t = idx / j->n_head, h = idx % j->n_head;
    const int E = j->E, hd = j->hd;
    const int L = j->row_pos ? j->row_pos[t] + 1 : j->n_past + t + 1; /* keys 0 .. position */
    const size_t es = gpt2_dtype_size(j->kt), row = (size_t)hd * es;
    const size_t off = cpu_kv_index(j->n_ctx, E, hd, j->row_base ? (size_t)j->row_base[t] : 0, h * hd) * es;
    const char *k = j->k + off, *v = j->v + off;
    const float *q = j->qkv + (size_t)t * 3 * E + (size_t)h * hd;
    float *o = j->out + (size_t)t * E + (size_t)h * hd;
    const int f16 = j->kt == GPT2_F16;
#if defined(__x86_64__)
    if (cpu_isa_active() == CPU_ISA_AVX512 && cpu_att_head_avx512(o, q, k, v, row, L, hd, f16, j->scale))
        return;
#endif
    float s[KBLK];
    float m = -INFINITY, l = 0;
    memset(o, 0, (size_t)hd * sizeof *o);
    for (int j0 = 0; j0 < L; j0 += KBLK) {
        const int nb = L - j0 < KBLK ? L - j0 : KBLK;
        float bm = -INFINITY;
        for (int b = 0; b < nb; b++) {
            const void *kr = k + (size_t)(j0 + b) * row;
            float d = f16 ? cpu_dot_f16(q, kr, hd) : cpu_dot_f32(q, kr, hd);
            s[b] = d * j->scale;
            if (s[b] > bm) bm = s[b];
        }
        if (bm > m) {
            const float corr = m == -INFINITY ? 0.0f : expf(m - bm);
            if (corr != 1.0f)
                for (int i = 0; i < hd; i++) o[i] *= corr;
            l *= corr;
            m = bm;
        }
        for (int b = 0; b < nb; b++) {
            const float p = expf(s[b] - m);
            const void *vr = v + (size_t)(j0 + b) * row;
            l += p;
            if (f16)
                cpu_axpy_f16(o, p, vr, hd);
            else
                cpu_axpy_f32(o, p, vr, hd);
        }
    }
    const float inv = l > 0 ? 1.0f / l : 0.0f;
    for (int i = 0; i < hd; i++) o[i] *= inv;
}

/* Stores K and V of token t (qkv row t) at cache row r (slot * n_ctx + position), head by head. */
static void store_kv(const att_job *j, void *kcache, void *vcache, int t, size_t r)
{
    const int E = j->E, hd = j->hd;
    const float *kn = j->qkv + (size_t)t * 3 * E + E, *vn = kn + E;
    for (int e0 = 0; e0 < E; e0 += hd) {
        const size_t at = cpu_kv_index(j->n_ctx, E, hd, r, e0);
        if (j->kt == GPT2_F16) {
            uint16_t *kc = (uint16_t *)kcache + at, *vc = (uint16_t *)vcache + at;
            for (int i = 0; i < hd; i++) {
                kc[i] = gpt2_f32_to_f16(kn[e0 + i]);
                vc[i] = gpt2_f32_to_f16(vn[e0 + i]);
            }
        } else {
            memcpy((float *)kcache + at, kn + e0, (size_t)hd * sizeof(float));
            memcpy((float *)vcache + at, vn + e0, (size_t)hd * sizeof(float));
        }
    }
}

/* Both entries: every row's K/V stored first, then one task per (row, head). A single sequence has
 * no row arrays (token t at n_past + t of slot 0). */
static void attend(float *out, const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type, int n_ctx,
                   int n, int n_past, const int *row_base, const int *row_pos, int n_head, int head_dim,
                   cpu_pool *pool)
{
    if (n <= 0 || n_head * head_dim <= 0) return;
    att_job j = {.out = out,
                 .qkv = qkv,
                 .k = kcache,
                 .v = vcache,
                 .kt = kv_type,
                 .n_past = n_past,
                 .n_ctx = n_ctx,
                 .n_head = n_head,
                 .hd = head_dim,
                 .E = n_head * head_dim,
                 .scale = 1.0f / sqrtf((float)head_dim),
                 .row_base = row_base,
                 .row_pos = row_pos};
    for (int t = 0; t < n; t++)
        store_kv(&j, kcache, vcache, t,
                 row_pos ? (size_t)row_base[t] + (size_t)row_pos[t] : (size_t)(n_past + t));
    cpu_pool_run(pool, att_task, &j, n * n_head);
}

void cpu_attention_rows(float *out, const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type,
                        int n_ctx, int n, const int *row_base, const int *row_pos, int n_head, int head_dim,
                        cpu_pool *pool)
{
    attend(out, qkv, kcache, vcache, kv_type, n_ctx, n, 0, row_base, row_pos, n_head, head_dim, pool);
}

void cpu_attention(float *out, const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type, int n_ctx,
                   int n, int n_past, int n_head, int head_dim, cpu_pool *pool)
{
    attend(out, qkv, kcache, vcache, kv_type, n_ctx, n, n_past, NULL, NULL, n_head, head_dim, pool);
}

void cpu_kv_copy_slot(void *cache, gpt2_dtype kv_type, int n_ctx, int n_head, int head_dim, int dst_slot,
                      int src_slot, int n)
{
    const int E = n_head * head_dim;
    const size_t es = gpt2_dtype_size(kv_type);
    for (int e0 = 0; e0 < E; e0 += head_dim) {
        const size_t d = cpu_kv_index(n_ctx, E, head_dim, (size_t)dst_slot * n_ctx, e0);
        const size_t s = cpu_kv_index(n_ctx, E, head_dim, (size_t)src_slot * n_ctx, e0);
        memcpy((char *)cache + d * es, (char *)cache + s * es, (size_t)n * head_dim * es);
    }
}
