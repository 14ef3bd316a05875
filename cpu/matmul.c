/* matmul.c - y = epilogue(x W^T): the dispatcher, its threading, and the scalar kernels.
 *
 * Output rows (weight rows) are split into tasks for the pool. Decode (n = 1) is memory-bound: the
 * tasks are just even slices of rows, each weight row streamed once through the ISA's dot product.
 * Prompt batches (n > 1) run four tokens at a time against each weight row, with task slices small
 * enough that a slice of weights stays in cache while every token block passes over it.
 */
#include "cpu_ops.h"

#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "quant.h"
#include "core/notice.h"

/* ---- scalar twins ---- */

/* The weight operand b is read with gpt2_load (memcpy): weight rows in a mapped file may be
 * misaligned. Four partial sums, added pairwise at the end. */
static float dot_scalar(const float *a, const void *b, gpt2_dtype t, int n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * gpt2_load(b, t, (size_t)i);
        s1 += a[i + 1] * gpt2_load(b, t, (size_t)i + 1);
        s2 += a[i + 2] * gpt2_load(b, t, (size_t)i + 2);
        s3 += a[i + 3] * gpt2_load(b, t, (size_t)i + 3);
    }
    for (; i < n; i++) s0 += a[i] * gpt2_load(b, t, (size_t)i);
    return (s0 + s1) + (s2 + s3);
}

float cpu_dot_f32_scalar(const float *a, const float *b, int n) { return dot_scalar(a, b, GPT2_F32, n); }

float cpu_dot_f16_scalar(const float *a, const uint16_t *b, int n) { return dot_scalar(a, b, GPT2_F16, n); }

void cpu_axpy_f32_scalar(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

void cpu_axpy_f16_scalar(float *y, float a, const uint16_t *x, int n)
{
    for (int i = 0; i < n; i++) y[i] += a * gpt2_f16_to_f32(x[i]);
}

void cpu_mm_tile_scalar(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, gpt2_dtype wt,
                        int in, int nr)
{
    const size_t rb = (size_t)in * gpt2_dtype_size(wt);
    for (int r = 0; r < nr; r++) {
        const void *wr = (const char *)w + r * rb;
        for (int t = 0; t < nt; t++) {
            const float *xt = x + (size_t)t * ldx;
            float s;
            if (wt == GPT2_F32) {
                s = cpu_dot_f32_scalar(xt, wr, in);
            } else if (wt == GPT2_F16) {
                s = cpu_dot_f16_scalar(xt, wr, in);
            } else { /* bf16 and anything else gpt2_load knows */
                s = 0;
                for (int i = 0; i < in; i++) s += xt[i] * gpt2_load(wr, wt, (size_t)i);
            }
            acc[t * ldacc + r] = s;
        }
    }
}

/* ---- dispatched primitives ---- */

float cpu_dot_f32(const float *a, const float *b, int n)
{
    switch (cpu_isa_active()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX512: return cpu_dot_f32_avx512(a, b, n);
    case CPU_ISA_AVX2: return cpu_dot_f32_avx2(a, b, n);
#endif
#if defined(__aarch64__)
    case CPU_ISA_NEON: return cpu_dot_f32_neon(a, b, n);
#endif
    default: return cpu_dot_f32_scalar(a, b, n);
    }
}

float cpu_dot_f16(const float *a, const uint16_t *b, int n)
{
    switch (cpu_isa_active()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX512: return cpu_dot_f16_avx512(a, b, n);
    case CPU_ISA_AVX2: return cpu_dot_f16_avx2(a, b, n);
#endif
#if defined(__aarch64__)
    case CPU_ISA_NEON: return cpu_dot_f16_neon(a, b, n);
#endif
    default: return cpu_dot_f16_scalar(a, b, n);
    }
}

void cpu_axpy_f32(float *y, float a, const float *x, int n)
{
    switch (cpu_isa_active()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX512: cpu_axpy_f32_avx512(y, a, x, n); return;
    case CPU_ISA_AVX2: cpu_axpy_f32_avx2(y, a, x, n); return;
#endif
#if defined(__aarch64__)
    case CPU_ISA_NEON: cpu_axpy_f32_neon(y, a, x, n); return;
#endif
    default: cpu_axpy_f32_scalar(y, a, x, n); return;
    }
}

void cpu_axpy_f16(float *y, float a, const uint16_t *x, int n)
{
    switch (cpu_isa_active()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX512: cpu_axpy_f16_avx512(y, a, x, n); return;
    case CPU_ISA_AVX2: cpu_axpy_f16_avx2(y, a, x, n); return;
#endif
#if defined(__aarch64__)
    case CPU_ISA_NEON: cpu_axpy_f16_neon(y, a, x, n); return;
#endif
    default: cpu_axpy_f16_scalar(y, a, x, n); return;
    }
}

static cpu_mm_tile_fn pick_tile(gpt2_dtype wt)
{
    if (wt != GPT2_F32 && wt != GPT2_F16) return cpu_mm_tile_scalar;
    switch (cpu_isa_active()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX512: return cpu_mm_tile_avx512;
    case CPU_ISA_AVX2: return cpu_mm_tile_avx2;
#endif
#if defined(__aarch64__)
    case CPU_ISA_NEON: return cpu_mm_tile_neon;
#endif
    default: return cpu_mm_tile_scalar;
    }
}

/* ---- the matmul ---- */

#define TILE_R 64 /* rows per kernel call: the accumulator tile is 4 x TILE_R floats */

typedef struct mm_job {
    float *y;
    const float *x;
    const char *w;
    const float *bias;
    cpu_mm_tile_fn tile;
    size_t row_bytes;
    gpt2_dtype wt;
    int ldy, ldx, n, in, rows, epi, form, rows_per_task;
    atomic_int oom; /* a task could not allocate its weight slice (the call fails) */
} mm_job;

static void mm_store(const mm_job *j, const float *acc, int t0, int nt, int rr, int nr)
{
    for (int t = 0; t < nt; t++) {
        float *yr = j->y + (size_t)(t0 + t) * j->ldy + rr;
        const float *ar = acc + t * TILE_R;
        if (j->epi == CPU_EPI_NONE) {
            for (int r = 0; r < nr; r++) yr[r] = ar[r];
            continue;
        }
        for (int r = 0; r < nr; r++) {
            float v = ar[r];
            if (j->epi & CPU_EPI_BIAS) v += j->bias[rr + r];
            if (j->epi & CPU_EPI_GELU) v = cpu_gelu1(v, j->form);
            if (j->epi & CPU_EPI_RESIDUAL) v += yr[r];
            yr[r] = v;
        }
    }
}

static void mm_task(void *ctx, int task)
{
    const mm_job *j = ctx;
    const int r0 = task * j->rows_per_task;
    const int r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    float acc[4 * TILE_R];
    for (int t0 = 0; t0 < j->n; t0 += 4) {
        const int nt = j->n - t0 < 4 ? j->n - t0 : 4;
        for (int rr = r0; rr < r1; rr += TILE_R) {
            const int nr = r1 - rr < TILE_R ? r1 - rr : TILE_R;
            j->tile(acc, TILE_R, j->x + (size_t)t0 * j->ldx, j->ldx, nt, j->w + (size_t)rr * j->row_bytes,
                    j->wt, j->in, nr);
            mm_store(j, acc, t0, nt, rr, nr);
        }
    }
}

#if defined(__x86_64__)
/* Prompt batches on AVX-512: the task's slice of weight rows as f32 (an f16 slice converted once,
 * then reused by every token block from L2), four rows x four tokens per kernel step. */
static void mm_panel_task(void *ctx, int task)
{
    const mm_job *j = ctx;
    const int r0 = task * j->rows_per_task;
    const int r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    const size_t count = (size_t)(r1 - r0) * (size_t)j->in;
    const float *wf = (const float *)(j->w + (size_t)r0 * j->row_bytes);
    float *buf = NULL;
    if (j->wt == GPT2_F16) {
        buf = malloc(count * sizeof *buf);
        if (!buf) { /* cpu_matmul fails with -1 once every task has returned */
            atomic_store(&((mm_job *)ctx)->oom, 1);
            return;
        }
        cpu_f16_to_f32_avx512(buf, (const uint16_t *)(j->w + (size_t)r0 * j->row_bytes), count);
        wf = buf;
    }
    float acc[4 * TILE_R];
    for (int t0 = 0; t0 < j->n; t0 += 4) {
        const int nt = j->n - t0 < 4 ? j->n - t0 : 4;
        for (int rr = r0; rr < r1; rr += TILE_R) {
            const int nr = r1 - rr < TILE_R ? r1 - rr : TILE_R;
            cpu_mm_panel_avx512(acc, TILE_R, j->x + (size_t)t0 * j->ldx, j->ldx, nt,
                                wf + (size_t)(rr - r0) * j->in, j->in, nr);
            mm_store(j, acc, t0, nt, rr, nr);
        }
    }
    free(buf);
}

/* Rows of a prompt slice: their f32 copy within half the L2 cache (x's token block and the output
 * take the rest), a multiple of 4, and at least four slices per thread when the matrix allows. */
static int panel_rows(int rows, int in, int threads)
{
    static long l2 = -1; /* bytes; accessed with __atomic builtins */
    long c = __atomic_load_n(&l2, __ATOMIC_RELAXED);
    if (c < 0) {
        c = sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (c < 256 * 1024 || c > 64L * 1024 * 1024) c = 1024 * 1024;
        __atomic_store_n(&l2, c, __ATOMIC_RELAXED);
    }
    long cap = c / 2 / ((long)in * (long)sizeof(float));
    long share = (rows + threads * 4 - 1) / (threads * 4);
    long rpt = cap < share ? cap : share;
    rpt &= ~3L;
    if (rpt < 4) rpt = 4;
    return rpt > rows ? rows : (int)rpt;
}
#endif

/* ---- block-format weights: x quantized once to int8 blocks, then integer dot products ---- */

typedef struct qmm_job {
    float *y;
    const cpu_q8a *xq; /* quantized activations (the generic path) */
    const cpu_q8p *xp; /* the same laid out in block pairs (the VNNI path) */
    const char *w;
    const float *bias;
    cpu_qdot_fn dot; /* the generic path's dot product */
    size_t row_bytes;
    gpt2_dtype wt;
    int ldy, n, nb, pairs, rows, epi, form, rows_per_task;
} qmm_job;

static inline float epi_apply(float v, int epi, const float *bias, int o, int form, float old)
{
    if (epi & CPU_EPI_BIAS) v += bias[o];
    if (epi & CPU_EPI_GELU) v = cpu_gelu1(v, form);
    if (epi & CPU_EPI_RESIDUAL) v += old;
    return v;
}

static void qmm_task(void *ctx, int task)
{
    const qmm_job *j = ctx;
    const int r0 = task * j->rows_per_task;
    const int r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    for (int t0 = 0; t0 < j->n; t0 += 4) {
        const int nt = j->n - t0 < 4 ? j->n - t0 : 4;
        for (int r = r0; r < r1; r++) {
            float acc[4];
            j->dot(acc, j->w + (size_t)r * j->row_bytes, j->wt, j->xq + (size_t)t0 * j->nb, (size_t)j->nb, nt,
                   j->nb);
            for (int t = 0; t < nt; t++) {
                float *yo = j->y + (size_t)(t0 + t) * j->ldy + r;
                *yo = epi_apply(acc[t], j->epi, j->bias, r, j->form, *yo);
            }
        }
    }
}

typedef struct qact_job {
    const float *x;
    cpu_q8a *xq;
    int ldx, in, nb;
} qact_job;

static void qact_task(void *ctx, int t)
{
    const qact_job *j = ctx;
    cpu_quantize_act(j->x + (size_t)t * j->ldx, j->xq + (size_t)t * j->nb, (size_t)j->in);
}

#if defined(__x86_64__)
/* ---- AVX-512 VNNI: activations laid out in pairs of blocks, TILE_R rows per kernel call ---- */

static void vmm_task(void *ctx, int task)
{
    const qmm_job *j = ctx;
    const int r0 = task * j->rows_per_task;
    const int r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    float acc[4 * TILE_R];
    for (int t0 = 0; t0 < j->n; t0 += 4) {
        const int nt = j->n - t0 < 4 ? j->n - t0 : 4;
        for (int rr = r0; rr < r1; rr += TILE_R) {
            const int nr = r1 - rr < TILE_R ? r1 - rr : TILE_R;
            cpu_qdot_rows_vnni(acc, TILE_R, j->w + (size_t)rr * j->row_bytes, j->row_bytes, nr, j->wt,
                               j->xp + (size_t)t0 * j->pairs, (size_t)j->pairs, nt, j->nb);
            for (int t = 0; t < nt; t++) {
                float *yr = j->y + (size_t)(t0 + t) * j->ldy + rr;
                for (int r = 0; r < nr; r++)
                    yr[r] = epi_apply(acc[t * TILE_R + r], j->epi, j->bias, rr + r, j->form, yr[r]);
            }
        }
    }
}

/* 1 when the quantized matmul runs the VNNI kernel: the AVX-512 level is active and the CPU has
 * the VNNI extensions (checked once). */
static int use_vnni(void)
{
    static int has = -1; /* accessed with __atomic builtins */
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0) {
        h = cpu_has_vnni();
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    return h && cpu_isa_active() == CPU_ISA_AVX512;
}
#endif

/* Rows per task: the whole matrix when small or single-threaded; decode (n = 1) even slices, four
 * per thread; prompts slices of at most ~64 KiB of weights that stay in cache across the tokens. */
static int quant_rows_per_task(int rows, int in, int n, size_t row_bytes, int threads)
{
    int rpt;
    if (threads <= 1 || (double)rows * in * n < 32768.0) {
        rpt = rows;
    } else if (n == 1) {
        rpt = (rows + threads * 4 - 1) / (threads * 4);
        rpt = (rpt + 7) & ~7;
    } else {
        size_t cap = 65536 / row_bytes;
        int share = (rows + threads * 4 - 1) / (threads * 4);
        rpt = (int)(cap < (size_t)share ? cap : (size_t)share);
    }
    if (rpt < 2) rpt = 2;
    if (rpt > rows) rpt = rows;
    return rpt;
}

static int matmul_quant(float *y, int ldy, const float *x, int ldx, const gpt2_tensor *W, const float *bias,
                        int n, int epilogue, int gelu_form, cpu_pool *pool)
{
    const int in = (int)W->ne[0], rows = (int)W->ne[1], nb = in / GPT2_QBLOCK;
    cpu_q8a *xq = malloc((size_t)n * (size_t)nb * sizeof *xq);
    if (!xq) return -1;
    qact_job aj = {x, xq, ldx, in, nb};
    cpu_pool_run(n >= 8 ? pool : NULL, qact_task, &aj, n);
    const size_t row_bytes = gpt2_row_bytes(W->type, (size_t)in);
    const int rpt = quant_rows_per_task(rows, in, n, row_bytes, cpu_pool_threads(pool));
    qmm_job j = {
        .y = y,
        .xq = xq,
        .w = W->data,
        .bias = bias,
        .dot = cpu_qdot_pick(),
        .row_bytes = row_bytes,
        .wt = W->type,
        .ldy = ldy,
        .n = n,
        .nb = nb,
        .rows = rows,
        .epi = bias ? epilogue : epilogue & ~CPU_EPI_BIAS,
        .form = gelu_form,
        .rows_per_task = rpt,
    };
#if defined(__x86_64__)
    if (use_vnni()) {
        const int pairs = (nb + 1) / 2;
        cpu_q8p *xp = aligned_alloc(64, (size_t)n * (size_t)pairs * sizeof *xp);
        if (!xp) {
            free(xq);
            return -1;
        }
        for (int t = 0; t < n; t++)
            cpu_prepare_act_vnni(W->type, xq + (size_t)t * nb, xp + (size_t)t * pairs, nb);
        free(xq);
        j.xq = NULL;
        j.xp = xp;
        j.pairs = pairs;
        cpu_pool_run(pool, vmm_task, &j, (rows + rpt - 1) / rpt);
        free(xp);
        return 0;
    }
#endif
    cpu_pool_run(pool, qmm_task, &j, (rows + rpt - 1) / rpt);
    free(xq);
    return 0;
}

int cpu_matmul(float *y, int ldy, const float *x, int ldx, const gpt2_tensor *W, const float *bias, int n,
               int epilogue, int gelu_form, cpu_pool *pool)
{
    const int in = (int)W->ne[0], rows = (int)W->ne[1];
    if (n <= 0 || rows <= 0) return 0;
    if (gpt2_dtype_is_quant(W->type))
        return matmul_quant(y, ldy, x, ldx, W, bias, n, epilogue, gelu_form, pool);
    mm_job j = {
        .y = y,
        .x = x,
        .w = W->data,
        .bias = bias,
        .tile = pick_tile(W->type),
        .row_bytes = (size_t)in * gpt2_dtype_size(W->type),
        .wt = W->type,
        .ldy = ldy,
        .ldx = ldx,
        .n = n,
        .in = in,
        .rows = rows,
        .epi = bias ? epilogue : epilogue & ~CPU_EPI_BIAS,
        .form = gelu_form,
    };
    const int threads = cpu_pool_threads(pool);
    const double work = (double)rows * in * n;
    int rpt;
    if (threads <= 1 || work < 32768.0) {
        rpt = rows;
    } else if (n == 1) {
        rpt = (rows + threads * 4 - 1) / (threads * 4);
        rpt = (rpt + 7) & ~7;
    } else {
        /* a slice of at most ~64 KiB of weights, and at least 4 slices per thread */
        size_t cap = 65536 / (j.row_bytes ? j.row_bytes : 1);
        int share = (rows + threads * 4 - 1) / (threads * 4);
        rpt = (int)(cap < (size_t)share ? cap : (size_t)share);
        rpt = (rpt + 1) & ~1;
    }
    if (rpt < 2) rpt = 2;
    if (rpt > rows) rpt = rows;
    j.rows_per_task = rpt;
#if defined(__x86_64__)
    if (n >= 4 && cpu_isa_active() == CPU_ISA_AVX512 && (W->type == GPT2_F32 || W->type == GPT2_F16)) {
        j.rows_per_task = rpt = panel_rows(rows, in, threads);
        cpu_pool_run(pool, mm_panel_task, &j, (rows + rpt - 1) / rpt);
        return atomic_load(&j.oom) ? -1 : 0;
    }
#endif
    cpu_pool_run(pool, mm_task, &j, (rows + rpt - 1) / rpt);
    return 0;
}
