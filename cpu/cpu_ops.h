/* cpu_ops.h - the CPU kernels: one function per GPT-2 op, SIMD chosen at run time.
 *
 * Every kernel has a scalar twin that is always compiled; the dispatching entry points below pick
 * AVX-512, AVX2+FMA, NEON or scalar once (cpu_isa_detect) unless a test forces one (cpu_isa_force).
 * Activations are f32; weight matrices are f32, f16, bf16 or a ggml block format (quant.h), stored
 * [out][in] (tensor.h); accumulation is always f32. Every kernel is checked against a float64 reference in tests/test_<op>.c.
 */
#ifndef VKG_CPU_OPS_H
#define VKG_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/epilogue.h"
#include "core/tensor.h"

/* ---- instruction set selection ---- */
typedef enum cpu_isa {
    CPU_ISA_SCALAR = 0,
    CPU_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    CPU_ISA_AVX512 = 2, /* AVX-512F (+ the AVX2 set) */
    CPU_ISA_NEON = 3,   /* arm64 */
} cpu_isa;

cpu_isa cpu_isa_detect(void);    /* best the machine has */
cpu_isa cpu_isa_active(void);    /* what the kernels use now */
void cpu_isa_force(cpu_isa isa); /* tests: use exactly this one (must be supported) */
const char *cpu_isa_name(cpu_isa isa);
int cpu_isa_supported(cpu_isa isa); /* 1 if this machine (and build) can run isa */

/* ---- thread pool ---- */
typedef struct cpu_pool cpu_pool;
/* The default thread count: the physical cores this process may run on (hyperthreads share a
 * core's load ports and gain nothing on these memory-bound kernels). */
int cpu_default_threads(void);
/* n_threads <= 0: cpu_default_threads(). */
cpu_pool *cpu_pool_create(int n_threads);
void cpu_pool_destroy(cpu_pool *p);
int cpu_pool_threads(const cpu_pool *p);
/* Runs fn(ctx, i) for i in [0, n_tasks) over the pool and the calling thread; returns when all are
 * done. p may be NULL: runs serially on the caller. */
void cpu_pool_run(cpu_pool *p, void (*fn)(void *ctx, int i), void *ctx, int n_tasks);

/* ---- ops ---- (pool may be NULL for single-threaded) */

/* x[t][d] = wte[ids[t]][d] + wpe[pos0 + t][d] for t in [0, n). */
void cpu_embed(float *x, const gpt2_tensor *wte, const gpt2_tensor *wpe, const int32_t *ids, int n, int pos0);

/* y[t] = (x[t] - mean) / sqrt(var + eps) * g + b over rows of d; two-pass, exact with large means.
 * y may equal x. */
void cpu_layernorm(float *y, const float *x, const float *g, const float *b, int n, int d, float eps);

/* Epilogue applied to each output of a matmul, in this order (the flags of core/epilogue.h). */
typedef enum cpu_epilogue {
    CPU_EPI_NONE = 0,
    CPU_EPI_BIAS = GPT2_EPI_BIAS,         /* y += bias[o] */
    CPU_EPI_GELU = GPT2_EPI_GELU,         /* y = gelu(y) (form from the gelu argument) */
    CPU_EPI_RESIDUAL = GPT2_EPI_RESIDUAL, /* y += y_old (the output buffer's prior content) */
} cpu_epilogue;

/* y[t][o] = epilogue(sum_i x[t][i] * W[o][i]) for t < n, o < W->ne[1], i < W->ne[0].
 * x rows have stride ldx floats, y rows stride ldy floats. W is f32, f16, bf16 or a ggml block
 * format (quant.h; W->ne[0] a multiple of 32): then each x row is first quantized to int8 blocks
 * (d = amax/127, as ggml's q8 activations) and the dots run in integers. Returns 0, or -1 when
 * the scratch it needs (quantized activations, a converted weight slice) cannot be allocated. */
int cpu_matmul(float *y, int ldy, const float *x, int ldx, const gpt2_tensor *W, const float *bias, int n,
               int epilogue, int gelu_form, cpu_pool *pool);

/* In place: x[i] = gelu(x[i]); form 0 = tanh approximation, 1 = erf. */
void cpu_gelu(float *x, size_t n, int form);

/* y[i] += x[i]. */
void cpu_add(float *y, const float *x, size_t n);

/* In place softmax over each of n rows of length d (max-subtracted). */
void cpu_softmax(float *x, int n, int d);

/* The CPU's KV cache of one layer, K and V alike: n_slots sequences of n_ctx positions, head-major
 * within a sequence ([slot][head][position][head_dim] of kv_type, f32 or f16), so the keys one head
 * reads are contiguous. Element index of column e (head e / head_dim) of cache row r, where
 * r = slot * n_ctx + position: */
static inline size_t cpu_kv_index(int n_ctx, int E, int head_dim, size_t r, int e)
{
    const size_t slot = r / (size_t)n_ctx, pos = r % (size_t)n_ctx;
    return slot * (size_t)n_ctx * (size_t)E +
        ((size_t)(e / head_dim) * (size_t)n_ctx + pos) * (size_t)head_dim + (size_t)(e % head_dim);
}

/* Copies positions 0 .. n-1 of slot src_slot to slot dst_slot in one cache (as cpu_kv_index). */
void cpu_kv_copy_slot(void *cache, gpt2_dtype kv_type, int n_ctx, int n_head, int head_dim, int dst_slot,
                      int src_slot, int n);

/* Causal multi-head attention for n new tokens at positions [n_past, n_past + n) of one sequence.
 * qkv: [n][3*E] (Q, K, V of the new tokens, E = n_head * head_dim).
 * First stores K and V of the new tokens into the caches at positions n_past .. n_past+n-1
 * (kcache/vcache: one slot of n_ctx positions, laid out as cpu_kv_index says), then for each token
 * t and head h out[t][h*hd..] = softmax(q . K[0..n_past+t] / sqrt(hd)) . V[0..n_past+t]. */
void cpu_attention(float *out, const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type, int n_ctx,
                   int n, int n_past, int n_head, int head_dim, cpu_pool *pool);

/* Attention of a batched decode step: n rows, row t one new token of its own sequence whose cache
 * rows start at row_base[t] (slot * n_ctx), at position row_pos[t]. Stores row t's K and V at cache
 * row row_base[t] + row_pos[t], then out[t] = attention of q[t] over that sequence's keys
 * 0 .. row_pos[t] (as cpu_attention with n = 1, n_past = row_pos[t]). Every K/V is stored before
 * any row attends, so n rows of one slot at consecutive positions are cpu_attention's prompt chunk. */
void cpu_attention_rows(float *out, const float *qkv, void *kcache, void *vcache, gpt2_dtype kv_type,
                        int n_ctx, int n, const int *row_base, const int *row_pos, int n_head, int head_dim,
                        cpu_pool *pool);

/* Index of the largest of x[0..n) (lowest index on ties; NaNs are skipped; -1 if n <= 0). */
int cpu_argmax(const float *x, int n);

/* One GELU value, the same formula cpu_gelu and the matmul epilogue use. */
float cpu_gelu1(float x, int form);

/* Reads a buffer of about `bytes` with all of the pool's threads; returns the best rate in GB/s
 * (1e9 bytes/s) over a few passes, or 0 on allocation failure. */
double cpu_measure_bandwidth_gbs(cpu_pool *p, size_t bytes);

/* ---- scalar twins and per-ISA entry points used by the dispatchers and tests ---- */
float cpu_dot_f32_scalar(const float *a, const float *b, int n);
float cpu_dot_f16_scalar(const float *a, const uint16_t *b, int n);
float cpu_dot_f32(const float *a, const float *b, int n);    /* dispatched */
float cpu_dot_f16(const float *a, const uint16_t *b, int n); /* dispatched */
/* y[i] += a * x[i] (x f32 or f16); dispatched. */
void cpu_axpy_f32(float *y, float a, const float *x, int n);
void cpu_axpy_f16(float *y, float a, const uint16_t *x, int n);

/* Matmul tile: acc[t*ldacc + r] = sum_i x[t*ldx + i] * w[r][i] for t < nt (1..4), r < nr, i < in;
 * w: nr rows of `in` elements of type wt (f32 or f16), contiguous. No epilogue. */
typedef void (*cpu_mm_tile_fn)(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w,
                               gpt2_dtype wt, int in, int nr);
void cpu_mm_tile_scalar(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, gpt2_dtype wt,
                        int in, int nr);

/* Per-ISA twins (defined only where the build targets that architecture). */
float cpu_dot_f32_avx2(const float *a, const float *b, int n);
float cpu_dot_f16_avx2(const float *a, const uint16_t *b, int n);
void cpu_axpy_f32_avx2(float *y, float a, const float *x, int n);
void cpu_axpy_f16_avx2(float *y, float a, const uint16_t *x, int n);
void cpu_mm_tile_avx2(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, gpt2_dtype wt,
                      int in, int nr);
float cpu_dot_f32_avx512(const float *a, const float *b, int n);
float cpu_dot_f16_avx512(const float *a, const uint16_t *b, int n);
void cpu_axpy_f32_avx512(float *y, float a, const float *x, int n);
void cpu_axpy_f16_avx512(float *y, float a, const uint16_t *x, int n);
void cpu_mm_tile_avx512(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, gpt2_dtype wt,
                        int in, int nr);
/* Prompt matmul on AVX-512: acc[t * ldacc + r] = x[t] . w[r] for t < nt (1..4), r < nr, with w
 * nr contiguous f32 rows of in (an f16 slice is converted once with cpu_f16_to_f32_avx512). */
void cpu_mm_panel_avx512(float *acc, int ldacc, const float *x, int ldx, int nt, const float *w, int in,
                         int nr);
void cpu_f16_to_f32_avx512(float *dst, const uint16_t *src, size_t n);
/* One (token, head) of attention over L cache rows row_bytes apart (k, v at the head's first
 * element, f32 or f16): o = softmax(scale * q . K) . V. Returns 0 (and does nothing) unless
 * head_dim is a multiple of 16 up to 256. */
int cpu_att_head_avx512(float *o, const float *q, const void *k, const void *v, size_t row_bytes, int L,
                        int head_dim, int f16, float scale);
float cpu_dot_f32_neon(const float *a, const float *b, int n);
float cpu_dot_f16_neon(const float *a, const uint16_t *b, int n);
void cpu_axpy_f32_neon(float *y, float a, const float *x, int n);
void cpu_axpy_f16_neon(float *y, float a, const uint16_t *x, int n);
void cpu_mm_tile_neon(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, gpt2_dtype wt,
                      int in, int nr);
void cpu_axpy_f32_scalar(float *y, float a, const float *x, int n);
void cpu_axpy_f16_scalar(float *y, float a, const uint16_t *x, int n);

#endif
