/* test_vk_common.h - helpers shared by the tests of the Vulkan ops (tests/test_vk_*.c): an engine
 * on the best device (lavapipe in CI), device buffers, one-shot recordings, a seeded PRNG and
 * comparisons against the float64 references of devtools/ref64.h. Header-only: each test
 * executable includes it once. */
#ifndef VKG_TEST_VK_COMMON_H
#define VKG_TEST_VK_COMMON_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"
#include "vkengine/vk_engine.h"
#include "vulkan/vk_ops.h"
#include "core/tensor.h"
#include "ref64.h"

/* ---- PRNG (ref64's xorshift64, seeded per test) ---- */
static uint64_t vkt_rng;
static inline void vkt_seed(uint64_t s) { vkt_rng = ref64_rng_seed(s); }
static inline double vkt_unif(void) { return ref64_unif(&vkt_rng); } /* [0, 1) */
/* Uniform in [lo, hi), never exactly zero. */
static inline float vkt_rnd(float lo, float hi) { return ref64_rnd(&vkt_rng, lo, hi); }
static inline float *vkt_rand_floats(size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof *p + 16);
    cr_assert(p);
    for (size_t i = 0; i < n; i++) p[i] = vkt_rnd(lo, hi);
    return p;
}
/* Rounds every value to f16 (in place) and returns the f16 words. */
static inline uint16_t *vkt_to_f16(float *p, size_t n)
{
    uint16_t *h = malloc(n * sizeof *h + 16);
    cr_assert(h);
    for (size_t i = 0; i < n; i++) {
        h[i] = gpt2_f32_to_f16(p[i]);
        p[i] = gpt2_f16_to_f32(h[i]);
    }
    return h;
}

/* ---- engine ---- */
typedef struct vkt {
    vk_engine *e;
    vk_ops *o;
    vk_seq *s;
} vkt;

static inline vkt vkt_open(void)
{
    vkt t = {0};
    char err[256];
    if (vk_engine_create(&t.e, -1, err, sizeof err) != 0) {
        cr_skip_test("no Vulkan device: %s", err);
    }
    t.o = vk_ops_create(t.e, err, sizeof err);
    cr_assert(t.o, "vk_ops_create: %s", err);
    t.s = vk_seq_create(t.e, 64);
    cr_assert(t.s);
    return t;
}

static inline void vkt_close(vkt *t)
{
    int msgs = vk_validation_messages(t->e);
    vk_seq_destroy(t->s);
    vk_ops_destroy(t->o);
    vk_engine_destroy(t->e);
    cr_assert_eq(msgs, 0, "%d validation messages", msgs);
}

/* A device buffer of `bytes` (plus slack), optionally filled from host data. */
static inline vk_mem vkt_buf(vkt *t, size_t bytes, const void *data)
{
    vk_mem m;
    char err[256];
    cr_assert(vk_mem_alloc(t->e, &m, bytes + 64, VKE_MEM_DEVICE, err, sizeof err) == 0, "%s", err);
    if (data)
        cr_assert(vk_upload(t->e, &m, 0, data, bytes) == 0);
    else
        cr_assert(vk_fill_zero(t->e, &m, 0, bytes + 64) == 0);
    return m;
}

static inline vk_mem vkt_host_buf(vkt *t, size_t bytes)
{
    vk_mem m;
    char err[256];
    cr_assert(vk_mem_alloc(t->e, &m, bytes, VKE_MEM_HOST, err, sizeof err) == 0, "%s", err);
    cr_assert(m.map);
    memset(m.map, 0, bytes);
    return m;
}

static inline void vkt_get(vkt *t, const vk_mem *m, void *dst, size_t bytes)
{
    cr_assert(vk_download(t->e, m, 0, dst, bytes) == 0);
}

/* Recording brackets: vkt_begin, then vk_op_* calls, then vkt_run (end + submit + wait). */
static inline void vkt_begin(vkt *t) { vk_seq_begin(t->s); }
static inline void vkt_run(vkt *t)
{
    cr_assert(vk_seq_end(t->s) == 0);
    cr_assert(vk_seq_run(t->s) == 0);
}

/* One vk_op_matmul of weights w (wbytes of type wt, rows x cols) on n rows of x (nx floats, the
 * rows from x_off on, stride ldx) into y [n][ldy] that starts as y0, on device buffers of its own,
 * with the variant `force` (NULL: the automatic one) and the subgroup setting: y, malloc'ed. */
static inline float *vkt_matmul(vkt *t, const float *x, size_t nx, int x_off, int ldx, const void *w,
                                size_t wbytes, gpt2_dtype wt, const float *bias, const float *y0, int ldy,
                                int n, int rows, int cols, int epi, int form, const char *force, int subgroup)
{
    size_t ny = (size_t)n * ldy;
    vk_mem bx = vkt_buf(t, nx * 4, x), bw = vkt_buf(t, wbytes, w);
    vk_mem bb = vkt_buf(t, (size_t)rows * 4, bias), by = vkt_buf(t, ny * 4, y0);
    vk_ops_force_matmul(t->o, force);
    vk_ops_set_subgroup(t->o, subgroup);
    vkt_begin(t);
    vk_op_matmul(t->o, t->s, by.addr, ldy, bx.addr + (VkDeviceAddress)x_off * 4, ldx, bw.addr, wt, rows, cols,
                 (epi & CPU_EPI_BIAS) ? bb.addr : 0, n, epi, form);
    vkt_run(t);
    float *y = malloc(ny * 4);
    cr_assert(y);
    vkt_get(t, &by, y, ny * 4);
    vk_mem_free(t->e, &bx);
    vk_mem_free(t->e, &bw);
    vk_mem_free(t->e, &bb);
    vk_mem_free(t->e, &by);
    return y;
}

/* ---- comparisons ---- */
/* |got - ref| <= rtol * scale + atol, where scale is the sum of |terms| that made ref. */
static inline void vkt_check(const char *what, const float *got, const double *ref, const double *scale,
                             size_t n, double rtol, double atol)
{
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]);
        double lim = rtol * (scale ? scale[i] : fabs(ref[i])) + atol;
        if (!(err <= lim))
            cr_assert_fail("%s: element %zu: got %.9g, want %.9g (error %.3g > %.3g)", what, i,
                           (double)got[i], ref[i], err, lim);
    }
}
/* Two float results (GPU vs CPU twin) against each other, with the reference's scale. */
static inline void vkt_check_twin(const char *what, const float *got, const float *cpu, const double *scale,
                                  size_t n, double rtol, double atol)
{
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - (double)cpu[i]);
        double lim = rtol * (scale ? scale[i] : fabs((double)cpu[i])) + atol;
        if (!(err <= lim))
            cr_assert_fail("%s: element %zu: gpu %.9g, cpu %.9g (difference %.3g > %.3g)", what, i,
                           (double)got[i], (double)cpu[i], err, lim);
    }
}

/* float64 layernorm of n rows of d (stride ldx) into ref [n][d], with each element's error scale:
 * the input's own rounding (|x| ulp relative to the spread) bounds the error. */
static inline void vkt_layernorm_ref(double *ref, double *scale, const float *x, int ldx, const float *g,
                                     const float *b, int n, int d, double eps)
{
    double *spread = malloc((size_t)n * sizeof *spread);
    cr_assert(spread);
    ref64_layernorm(ref, scale, spread, x, ldx, g, b, n, d, eps); /* scale holds x_hat first */
    for (int r = 0; r < n; r++)
        for (int i = 0; i < d; i++) {
            double *s = scale + (size_t)r * d + i;
            *s = (fabs(*s) + 1.0 + spread[r]) * fabs(g[i]) + fabs(b[i]);
        }
    free(spread);
}

/* An embedding's output x [n][d] against the float64 reference on the tables' values (wtef, wpef:
 * as floats) and against the CPU twin cpu_embed on the tables as stored (wte, wpe). */
static inline void vkt_check_embed(const char *what, const float *x, const gpt2_tensor *wte,
                                   const float *wtef, const gpt2_tensor *wpe, const float *wpef,
                                   const int32_t *ids, int n, int d, int pos0)
{
    size_t nx = (size_t)n * d;
    double *ref = malloc(nx * sizeof *ref);
    float *xc = malloc(nx * sizeof *xc);
    cr_assert(ref && xc);
    ref64_embed(ref, NULL, wtef, wpef, ids, n, d, pos0);
    vkt_check(what, x, ref, NULL, nx, 1e-6, 1e-7);
    cpu_embed(xc, wte, wpe, ids, n, pos0);
    vkt_check_twin(what, x, xc, NULL, nx, 1e-6, 1e-7);
    free(ref);
    free(xc);
}

/* How the Vulkan tests carry an error scale through a gelu epilogue: |gelu'| < 1.13, and the
 * f32 formula's own rounding near zero. */
static const ref64_gelu_scale vkt_gelu_scale = {1.13, 1e-6};

/* Worst |a-b| / (|b| + rms(b)) over n values: a whole model's logits against another run's. */
static inline double vkt_rel_err(const float *a, const float *b, size_t n)
{
    double rms = 0, worst = 0;
    for (size_t i = 0; i < n; i++) rms += (double)b[i] * b[i];
    rms = sqrt(rms / (double)n);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (fabs((double)b[i]) + rms);
        if (e > worst) worst = e;
    }
    return worst;
}

#endif
