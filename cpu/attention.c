/* attention.c - causal multi-head attention over a KV cache (f32 or f16).
 *
 * The new tokens' K and V go into the caches first; then one pool task per (token, head) walks the
 * keys it may see in blocks, with an online softmax: scores of a block, a running maximum, and the
 * output accumulator rescaled whenever the maximum grows. The task's output slice is its
 * accumulator, so no scratch memory is needed whatever the context length. In a batched decode
 * step (cpu_attention_rows) each row is its own sequence: its own cache rows and length.
 */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

#define KBLK 128 /* keys per score block */

typedef struct att_job {
    float *out;
    const float *qkv;
    const char *k, *v;
    gpt2_dtype kt;
    int n_past, n_head, hd, E;
    float scale;
    const int *row_base, *row_pos; /* batched rows, or NULL: token t at n_past + t, base 0 */
} att_job;

static void att_task(void *ctx, int idx)
{
    const att_job *j = ctx;
    const int t = idx / j->n_head, h = idx % j->n_head;
    const int E = j->E, hd = j->hd;
    const int L = j->row_pos ? j->row_pos[t] + 1 : j->n_past + t + 1; /* keys 0 .. position */
    const size_t es = gpt2_dtype_size(j->kt), row = (size_t)E * es;
    const size_t off = (size_t)h * hd * es + (j->row_base ? (size_t)j->row_base[t] * row : 0);
    const float *q = j->qkv + (size_t)t * 3 * E + (size_t)h * hd;
    float *o = j->out + (size_t)t * E + (size_t)h * hd;
    const int f16 = j->kt == GPT2_F16;
#if defined(__x86_64__)
    if (cpu_isa_active() == CPU_ISA_AVX512 &&
        cpu_att_head_avx512(o, q, j->k + off, j->v + off, row, L, hd, f16, j->scale))
        return;
#endif
    float s[KBLK];
    float m = -INFINITY, l = 0;
    memset(o, 0, (size_t)hd * sizeof *o);
    for (int j0 = 0; j0 < L; j0 += KBLK) {
        const int nb = L - j0 < KBLK ? L - j0 : KBLK;
        float bm = -INFINITY;
        for (int b = 0; b < nb; b++) {
            const void *kr = j->k + (size_t)(j0 + b) * row + off;
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
            const void *vr = j->v + (size_t)(j0 + b) * row + off;
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

/* Stores K and V of token t (qkv row t) at cache row r. */
static void store_kv(const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type, int E, int t,
                     size_t cache_row)
{
    const float *kn = qkv + (size_t)t * 3 * E + E, *vn = kn + E;
    const size_t r = cache_row * (size_t)E;
    if (kv_type == GPT2_F16) {
        uint16_t *kc = (uint16_t *)kcache + r, *vc = (uint16_t *)vcache + r;
        for (int e = 0; e < E; e++) {
            kc[e] = gpt2_f32_to_f16(kn[e]);
            vc[e] = gpt2_f32_to_f16(vn[e]);
        }
    } else {
        memcpy((float *)kcache + r, kn, (size_t)E * sizeof(float));
        memcpy((float *)vcache + r, vn, (size_t)E * sizeof(float));
    }
}

void cpu_attention_rows(float *out, const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type, int n,
                        const int *row_base, const int *row_pos, int n_head, int head_dim, cpu_pool *pool)
{
    const int E = n_head * head_dim;
    if (n <= 0 || E <= 0) return;
    for (int t = 0; t < n; t++)
        store_kv(qkv, kcache, vcache, kv_type, E, t, (size_t)row_base[t] + (size_t)row_pos[t]);
    att_job j = {
        .out = out,
        .qkv = qkv,
        .k = kcache,
        .v = vcache,
        .kt = kv_type,
        .n_past = 0,
        .n_head = n_head,
        .hd = head_dim,
        .E = E,
        .scale = 1.0f / sqrtf((float)head_dim),
        .row_base = row_base,
        .row_pos = row_pos,
    };
    cpu_pool_run(pool, att_task, &j, n * n_head);
}

void cpu_attention(float *out, const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type, int n,
                   int n_past, int n_head, int head_dim, cpu_pool *pool)
{
    const int E = n_head * head_dim;
    if (n <= 0 || E <= 0) return;
    for (int t = 0; t < n; t++) store_kv(qkv, kcache, vcache, kv_type, E, t, (size_t)(n_past + t));
    att_job j = {
        .out = out,
        .qkv = qkv,
        .k = kcache,
        .v = vcache,
        .kt = kv_type,
        .n_past = n_past,
        .n_head = n_head,
        .hd = head_dim,
        .E = E,
        .scale = 1.0f / sqrtf((float)head_dim),
    };
    cpu_pool_run(pool, att_task, &j, n * n_head);
}
