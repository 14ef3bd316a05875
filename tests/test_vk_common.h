/* test_vk_common.h - helpers shared by the tests of the Vulkan ops (tests/test_vk_*.c): an engine
 * on the best device (lavapipe in CI), device buffers, one-shot recordings, a seeded PRNG and
 * float64 comparisons. Header-only: each test executable includes it once. */
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

/* ---- PRNG (xorshift64, seeded per test) ---- */
static uint64_t vkt_rng;
static inline void vkt_seed(uint64_t s) { vkt_rng = s * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull; }
static inline double vkt_unif(void) /* [0, 1) */
{
    vkt_rng ^= vkt_rng << 13;
    vkt_rng ^= vkt_rng >> 7;
    vkt_rng ^= vkt_rng << 17;
    return (double)(vkt_rng >> 11) * (1.0 / 9007199254740992.0);
}
/* Uniform in [lo, hi), never exactly zero. */
static inline float vkt_rnd(float lo, float hi)
{
    float v;
    do v = lo + (hi - lo) * (float)vkt_unif();
    while (v == 0.0f);
    return v;
}
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

static inline double vkt_gelu_ref(double x, int form)
{
    if (form == 1) return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* float64 reference of vk_op_matmul / cpu_matmul: y = epi(x . w^T + bias) (+ y0 with
 * CPU_EPI_RESIDUAL) for n rows of x (stride ldx) and w as rows x cols floats (dequantized where
 * the weights are blocks). ref and scale hold n * ldy values: columns past `rows` keep y0 with
 * scale 0; elsewhere scale is the sum of |terms| (through the gelu, whose slope is below 1.13). */
static inline void vkt_matmul_ref(double *ref, double *scale, const float *x, int ldx, const float *w,
                                  const float *bias, const float *y0, int ldy, int n, int rows, int cols,
                                  int epi, int form)
{
    for (int tk = 0; tk < n; tk++)
        for (int o = 0; o < ldy; o++) {
            size_t yi = (size_t)tk * ldy + o;
            if (o >= rows) {
                ref[yi] = y0[yi];
                scale[yi] = 0;
                continue;
            }
            double acc = 0, sc = 0;
            for (int i = 0; i < cols; i++) {
                double p = (double)x[(size_t)tk * ldx + i] * w[(size_t)o * cols + i];
                acc += p;
                sc += fabs(p);
            }
            if (epi & CPU_EPI_BIAS) {
                acc += bias[o];
                sc += fabs(bias[o]);
            }
            if (epi & CPU_EPI_GELU) {
                acc = vkt_gelu_ref(acc, form);
                sc = sc * 1.13 + 1e-6;
            }
            if (epi & CPU_EPI_RESIDUAL) {
                acc += y0[yi];
                sc += fabs(y0[yi]);
            }
            ref[yi] = acc;
            scale[yi] = sc;
        }
}

#endif
