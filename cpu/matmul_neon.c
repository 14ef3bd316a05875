/* matmul_neon.c - arm64 NEON kernels: dot products, axpy, and the matmul tile, 4 lanes wide.
 *
 * Same structure as matmul_avx2.c. NEON is part of the arm64 baseline, so no target attributes are
 * needed; f16 weights are widened with vcvt_f32_f16. Column tails (< 4) are done in scalar code.
 */
#include "cpu_ops.h"

#if defined(__aarch64__)
#include <arm_neon.h>

static inline float32x4_t ldw(const void *w, int f16, size_t i)
{
    if (f16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
    return vld1q_f32((const float *)w + i);
}

static inline float ldw1(const void *w, int f16, size_t i)
{
    return f16 ? gpt2_f16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

static inline float dot_impl(const float *a, const void *b, int f16, int n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), ldw(b, f16, i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), ldw(b, f16, i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), ldw(b, f16, i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), ldw(b, f16, i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), ldw(b, f16, i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) s += a[i] * ldw1(b, f16, (size_t)i);
    return s;
}

float cpu_dot_f32_neon(const float *a, const float *b, int n) { return dot_impl(a, b, 0, n); }
float cpu_dot_f16_neon(const float *a, const uint16_t *b, int n) { return dot_impl(a, b, 1, n); }

static inline void axpy_impl(float *y, float a, const void *x, int f16, int n)
{
    const float32x4_t va = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, ldw(x, f16, i)));
    for (; i < n; i++) y[i] += a * ldw1(x, f16, (size_t)i);
}

void cpu_axpy_f32_neon(float *y, float a, const float *x, int n) { axpy_impl(y, a, x, 0, n); }
void cpu_axpy_f16_neon(float *y, float a, const uint16_t *x, int n) { axpy_impl(y, a, x, 1, n); }

/* Two weight rows against four tokens; see matmul_avx2.c. */
static inline void tile_2x4(float *acc, int ldacc, const float *const xs[4], int nt, const void *w0,
                            const void *w1, int f16, int in)
{
    float32x4_t a0[4], a1[4];
    for (int t = 0; t < 4; t++) a0[t] = a1[t] = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= in; i += 4) {
        const float32x4_t wa = ldw(w0, f16, i), wb = ldw(w1, f16, i);
        for (int t = 0; t < 4; t++) {
            const float32x4_t xv = vld1q_f32(xs[t] + i);
            a0[t] = vfmaq_f32(a0[t], wa, xv);
            a1[t] = vfmaq_f32(a1[t], wb, xv);
        }
    }
    for (int t = 0; t < nt; t++) {
        float r0 = vaddvq_f32(a0[t]), r1 = vaddvq_f32(a1[t]);
        for (int k = i; k < in; k++) {
            r0 += xs[t][k] * ldw1(w0, f16, (size_t)k);
            r1 += xs[t][k] * ldw1(w1, f16, (size_t)k);
        }
        acc[t * ldacc] = r0;
        if (w1 != w0) acc[t * ldacc + 1] = r1;
    }
}

static inline void tile_impl(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, int f16,
                             int in, int nr)
{
    const size_t rb = (size_t)in * (f16 ? 2 : 4);
    if (nt == 1) {
        for (int r = 0; r < nr; r++) acc[r] = dot_impl(x, (const char *)w + r * rb, f16, in);
        return;
    }
    const float *xs[4];
    for (int t = 0; t < 4; t++) xs[t] = x + (size_t)(t < nt ? t : nt - 1) * ldx;
    int r = 0;
    for (; r + 2 <= nr; r += 2)
        tile_2x4(acc + r, ldacc, xs, nt, (const char *)w + r * rb, (const char *)w + (r + 1) * rb, f16, in);
    if (r < nr) {
        const void *wr = (const char *)w + r * rb;
        tile_2x4(acc + r, ldacc, xs, nt, wr, wr, f16, in);
    }
}

void cpu_mm_tile_neon(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, gpt2_dtype wt,
                      int in, int nr)
{
    if (wt == GPT2_F16)
        tile_impl(acc, ldacc, x, ldx, nt, w, 1, in, nr);
    else
        tile_impl(acc, ldacc, x, ldx, nt, w, 0, in, nr);
}

#else
typedef int cpu_matmul_neon_unused; /* keeps the translation unit non-empty */
#endif
