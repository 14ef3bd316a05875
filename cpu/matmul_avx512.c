/* matmul_avx512.c - AVX-512F kernels: dot products, axpy, and the matmul tile, 16 lanes wide.
 *
 * Same structure as matmul_avx2.c; tails use AVX-512F masked loads (f32) or a zero-padded copy
 * (f16). Functions carry target attributes; they only run when cpu_isa_detect() found AVX-512F.
 */
#include "cpu_ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "avx512_fold.h"

#define AVX512_FN __attribute__((target("avx512f,avx2,fma,f16c")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma,f16c")))

AVX512_INLINE __mmask16 tail_mask(int r) { return (__mmask16)((1u << r) - 1u); }

AVX512_INLINE __m512 ldw(const void *w, int f16, size_t i)
{
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
    return _mm512_loadu_ps((const float *)w + i);
}

AVX512_INLINE __m512 ldw_tail(const void *w, int f16, size_t i, int r)
{
    if (f16) {
        uint16_t buf[16] = {0};
        memcpy(buf, (const uint16_t *)w + i, (size_t)r * 2);
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)buf));
    }
    return _mm512_maskz_loadu_ps(tail_mask(r), (const float *)w + i);
}

/* How far ahead (bytes) an f32 dot product prefetches its weight row. f16 rows go without: the
 * prefetches cost more there than they gain (5.5 -> 6.7 ms/token on 124M). */
#define F32_PREFETCH 1024

AVX512_INLINE float dot_impl(const float *a, const void *b, int f16, int n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        if (!f16) /* f32 rows: the hardware prefetcher alone kept decode at ~65% of the bandwidth */
            for (int l = 0; l < 4; l++)
                _mm_prefetch((const char *)b + 4 * (size_t)i + F32_PREFETCH + 64 * l, _MM_HINT_T0);
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), ldw(b, f16, i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), ldw(b, f16, i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), ldw(b, f16, i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), ldw(b, f16, i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), ldw(b, f16, i), s0);
    if (i < n) {
        int r = n - i;
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r), a + i), ldw_tail(b, f16, i, r), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512_FN float cpu_dot_f32_avx512(const float *a, const float *b, int n) { return dot_impl(a, b, 0, n); }
AVX512_FN float cpu_dot_f16_avx512(const float *a, const uint16_t *b, int n) { return dot_impl(a, b, 1, n); }

AVX512_INLINE void axpy_impl(float *y, float a, const void *x, int f16, int n)
{
    const __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, ldw(x, f16, i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        int r = n - i;
        __mmask16 m = tail_mask(r);
        __m512 v = _mm512_fmadd_ps(va, ldw_tail(x, f16, i, r), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

AVX512_FN void cpu_axpy_f32_avx512(float *y, float a, const float *x, int n) { axpy_impl(y, a, x, 0, n); }
AVX512_FN void cpu_axpy_f16_avx512(float *y, float a, const uint16_t *x, int n) { axpy_impl(y, a, x, 1, n); }

#define FMA8(wa, wb, x0, x1, x2, x3)                                                                         \
    do {                                                                                                     \
        a00 = _mm512_fmadd_ps(wa, x0, a00);                                                                  \
        a01 = _mm512_fmadd_ps(wa, x1, a01);                                                                  \
        a02 = _mm512_fmadd_ps(wa, x2, a02);                                                                  \
        a03 = _mm512_fmadd_ps(wa, x3, a03);                                                                  \
        a10 = _mm512_fmadd_ps(wb, x0, a10);                                                                  \
        a11 = _mm512_fmadd_ps(wb, x1, a11);                                                                  \
        a12 = _mm512_fmadd_ps(wb, x2, a12);                                                                  \
        a13 = _mm512_fmadd_ps(wb, x3, a13);                                                                  \
    } while (0)

/* Two weight rows against four tokens (see matmul_avx2.c). */
AVX512_INLINE void tile_2x4(float *acc, int ldacc, const float *const xs[4], int nt, const void *w0,
                            const void *w1, int f16, int in)
{
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m512 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    int i = 0;
    for (; i + 16 <= in; i += 16) {
        __m512 wa = ldw(w0, f16, i), wb = ldw(w1, f16, i);
        __m512 x0 = _mm512_loadu_ps(xs[0] + i), x1 = _mm512_loadu_ps(xs[1] + i);
        __m512 x2 = _mm512_loadu_ps(xs[2] + i), x3 = _mm512_loadu_ps(xs[3] + i);
        FMA8(wa, wb, x0, x1, x2, x3);
    }
    if (i < in) {
        int r = in - i;
        __mmask16 m = tail_mask(r);
        __m512 wa = ldw_tail(w0, f16, i, r), wb = ldw_tail(w1, f16, i, r);
        __m512 x0 = _mm512_maskz_loadu_ps(m, xs[0] + i), x1 = _mm512_maskz_loadu_ps(m, xs[1] + i);
        __m512 x2 = _mm512_maskz_loadu_ps(m, xs[2] + i), x3 = _mm512_maskz_loadu_ps(m, xs[3] + i);
        FMA8(wa, wb, x0, x1, x2, x3);
    }
    float r0[4] = {_mm512_reduce_add_ps(a00), _mm512_reduce_add_ps(a01), _mm512_reduce_add_ps(a02),
                   _mm512_reduce_add_ps(a03)};
    float r1[4] = {_mm512_reduce_add_ps(a10), _mm512_reduce_add_ps(a11), _mm512_reduce_add_ps(a12),
                   _mm512_reduce_add_ps(a13)};
    for (int t = 0; t < nt; t++) {
        acc[t * ldacc] = r0[t];
        if (w1 != w0) acc[t * ldacc + 1] = r1[t];
    }
}

AVX512_INLINE void tile_impl(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w, int f16,
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

AVX512_FN void cpu_mm_tile_avx512(float *acc, int ldacc, const float *x, int ldx, int nt, const void *w,
                                  gpt2_dtype wt, int in, int nr)
{
    if (wt == GPT2_F16)
        tile_impl(acc, ldacc, x, ldx, nt, w, 1, in, nr);
    else
        tile_impl(acc, ldacc, x, ldx, nt, w, 0, in, nr);
}

/* Four f32 weight rows against four tokens: 16 accumulators along the row, folded at the end. */
AVX512_INLINE void panel_4x4(float *acc, int ldacc, const float *const xs[4], const float *const ws[4],
                             int in, int nt, int nr)
{
    __m512 a[16];
    for (int k = 0; k < 16; k++) a[k] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= in; i += 16) {
        const __m512 w0 = _mm512_loadu_ps(ws[0] + i), w1 = _mm512_loadu_ps(ws[1] + i);
        const __m512 w2 = _mm512_loadu_ps(ws[2] + i), w3 = _mm512_loadu_ps(ws[3] + i);
        for (int t = 0; t < 4; t++) {
            const __m512 xv = _mm512_loadu_ps(xs[t] + i);
            a[t] = _mm512_fmadd_ps(w0, xv, a[t]);
            a[4 + t] = _mm512_fmadd_ps(w1, xv, a[4 + t]);
            a[8 + t] = _mm512_fmadd_ps(w2, xv, a[8 + t]);
            a[12 + t] = _mm512_fmadd_ps(w3, xv, a[12 + t]);
        }
    }
    if (i < in) {
        const __mmask16 m = tail_mask(in - i);
        const __m512 w0 = _mm512_maskz_loadu_ps(m, ws[0] + i), w1 = _mm512_maskz_loadu_ps(m, ws[1] + i);
        const __m512 w2 = _mm512_maskz_loadu_ps(m, ws[2] + i), w3 = _mm512_maskz_loadu_ps(m, ws[3] + i);
        for (int t = 0; t < 4; t++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, xs[t] + i);
            a[t] = _mm512_fmadd_ps(w0, xv, a[t]);
            a[4 + t] = _mm512_fmadd_ps(w1, xv, a[4 + t]);
            a[8 + t] = _mm512_fmadd_ps(w2, xv, a[8 + t]);
            a[12 + t] = _mm512_fmadd_ps(w3, xv, a[12 + t]);
        }
    }
    float s[16];
    _mm512_storeu_ps(s, sum16_fold(a));
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) acc[t * ldacc + r] = s[4 * r + t];
}

AVX512_FN void cpu_mm_panel_avx512(float *acc, int ldacc, const float *x, int ldx, int nt, const float *w,
                                   int in, int nr)
{
    const float *xs[4];
    for (int t = 0; t < 4; t++) xs[t] = x + (size_t)(t < nt ? t : nt - 1) * ldx;
    for (int r = 0; r < nr; r += 4) {
        const int rn = nr - r < 4 ? nr - r : 4;
        const float *ws[4];
        for (int k = 0; k < 4; k++) ws[k] = w + (size_t)(r + (k < rn ? k : rn - 1)) * in;
        panel_4x4(acc + r, ldacc, xs, ws, in, nt, rn);
    }
}

AVX512_FN void cpu_f16_to_f32_avx512(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

#else
typedef int cpu_matmul_avx512_unused; /* keeps the translation unit non-empty */
#endif
