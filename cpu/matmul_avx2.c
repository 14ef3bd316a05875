/* matmul_avx2.c - AVX2 + FMA + F16C kernels: dot products, axpy, and the matmul tile.
 *
 * Compiled with default flags; every function carries a target attribute and only runs when
 * cpu_isa_detect() found AVX2. Column tails (< 8) go through masked loads (f32) or a zero-padded
 * copy (f16), so every shape takes the vector path.
 */
#include "cpu_ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

AVX2_INLINE __m256i tail_mask(int r) /* first r lanes set, 0 <= r <= 8 */
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx);
}

AVX2_INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 weights at column i of a row (f32 or f16) */
AVX2_INLINE __m256 ldw(const void *w, int f16, size_t i)
{
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    return _mm256_loadu_ps((const float *)w + i);
}

/* the last r (< 8) weights from column i, zero-padded */
AVX2_INLINE __m256 ldw_tail(const void *w, int f16, size_t i, int r, __m256i m)
{
    if (f16) {
        uint16_t buf[8] = {0};
        memcpy(buf, (const uint16_t *)w + i, (size_t)r * 2);
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)buf));
    }
    return _mm256_maskload_ps((const float *)w + i, m);
}

AVX2_INLINE float dot_impl(const float *a, const void *b, int f16, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), ldw(b, f16, i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), ldw(b, f16, i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), ldw(b, f16, i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), ldw(b, f16, i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), ldw(b, f16, i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), ldw_tail(b, f16, i, n - i, m), s1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2_FN float cpu_dot_f32_avx2(const float *a, const float *b, int n) { return dot_impl(a, b, 0, n); }
AVX2_FN float cpu_dot_f16_avx2(const float *a, const uint16_t *b, int n) { return dot_impl(a, b, 1, n); }

AVX2_INLINE void axpy_impl(float *y, float a, const void *x, int f16, int n)
{
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ldw(x, f16, i), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(y + i + 8, _mm256_fmadd_ps(va, ldw(x, f16, i + 8), _mm256_loadu_ps(y + i + 8)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ldw(x, f16, i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_fmadd_ps(va, ldw_tail(x, f16, i, n - i, m), _mm256_maskload_ps(y + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

AVX2_FN void cpu_axpy_f32_avx2(float *y, float a, const float *x, int n) { axpy_impl(y, a, x, 0, n); }
AVX2_FN void cpu_axpy_f16_avx2(float *y, float a, const uint16_t *x, int n) { axpy_impl(y, a, x, 1, n); }

/* Two weight rows against four tokens: 8 accumulators, each weight vector loaded (and widened)
 * once for four tokens. Token pointers beyond nt repeat the last token; their sums are dropped. */
AVX2_INLINE void tile_2x4(float *acc, int ldacc, const float *const xs[4], int nt, const void *w0,
                          const void *w1, int f16, int in)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    int i = 0;
    for (; i + 8 <= in; i += 8) {
        __m256 wa = ldw(w0, f16, i), wb = ldw(w1, f16, i);
        __m256 x0 = _mm256_loadu_ps(xs[0] + i), x1 = _mm256_loadu_ps(xs[1] + i);
        __m256 x2 = _mm256_loadu_ps(xs[2] + i), x3 = _mm256_loadu_ps(xs[3] + i);
        a00 = _mm256_fmadd_ps(wa, x0, a00);
        a01 = _mm256_fmadd_ps(wa, x1, a01);
        a02 = _mm256_fmadd_ps(wa, x2, a02);
        a03 = _mm256_fmadd_ps(wa, x3, a03);
        a10 = _mm256_fmadd_ps(wb, x0, a10);
        a11 = _mm256_fmadd_ps(wb, x1, a11);
        a12 = _mm256_fmadd_ps(wb, x2, a12);
        a13 = _mm256_fmadd_ps(wb, x3, a13);
    }
    if (i < in) {
        int r = in - i;
        __m256i m = tail_mask(r);
        __m256 wa = ldw_tail(w0, f16, i, r, m), wb = ldw_tail(w1, f16, i, r, m);
        __m256 x0 = _mm256_maskload_ps(xs[0] + i, m), x1 = _mm256_maskload_ps(xs[1] + i, m);
        __m256 x2 = _mm256_maskload_ps(xs[2] + i, m), x3 = _mm256_maskload_ps(xs[3] + i, m);
        a00 = _mm256_fmadd_ps(wa, x0, a00);
        a01 = _mm256_fmadd_ps(wa, x1, a01);
        a02 = _mm256_fmadd_ps(wa, x2, a02);
        a03 = _mm256_fmadd_ps(wa, x3, a03);
        a10 = _mm256_fmadd_ps(wb, x0, a10);
        a11 = _mm256_fmadd_ps(wb, x1, a11);
        a12 = _mm256_fmadd_ps(wb, x2, a12);
        a13 = _mm256_fmadd_ps(wb, x3, a13);
    }
    float r0[4] = {hsum(a00), hsum(a01), hsum(a02), hsum(a03)};
    float r1[4] = {hsum(a10), hsum(a11), hsum(a12), hsum(a13)};
    for (int t = 0; t < nt; t++) {
        acc[t * ldacc] = r0[t];
        if (w1 != w0) acc[t * ldacc + 1] = r1[t];
    }
}

AVX2_INLINE void tile_impl(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, int f16,
                           int in, int nr)
{
    const size_t rb = (size_t)in * (f16 ? 2 : 4);
    if (nt == 1) { /* decode: one dot per row, streaming the weights */
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

AVX2_FN void cpu_mm_tile_avx2(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w,
                              gpt2_dtype wt, int in, int nr)
{
    if (wt == GPT2_F16)
        tile_impl(acc, ldacc, x, ldx, nt, w, 1, in, nr);
    else
        tile_impl(acc, ldacc, x, ldx, nt, w, 0, in, nr);
}

#else
typedef int cpu_matmul_avx2_unused; /* keeps the translation unit non-empty */
#endif
