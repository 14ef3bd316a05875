/* attention_avx512.c - one (token, head) of causal attention with AVX-512: keys in blocks of 16.
 *
 * A block's 16 scores come from 16 q.k accumulators (one zmm per key, head_dim / 16 FMAs each)
 * folded into one zmm by a transpose-add tree (halves, quarters, pairs, then a fixed lane
 * permute), so a score costs a few shuffles instead of a horizontal sum. The softmax is online:
 * the block's maximum rescales the output and the sum when it grows, the 16 exponentials come from
 * one vector exp (range reduction to [-ln2/2, ln2/2], degree-7 polynomial, scalef), and V rows are
 * accumulated with broadcast probabilities into head_dim / 16 registers kept twice (even and odd
 * keys) so the FMA chains overlap. K and V are read once each, f16 rows converted on load.
 * The function carries target attributes; it only runs when cpu_isa_detect() found AVX-512F.
 */
#include "cpu_ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "avx512_fold.h"

#define AVX512_FN __attribute__((target("avx512f,avx2,fma,f16c")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma,f16c")))

#define MAXV 16 /* head_dim / 16 at most (head_dim <= 256) */

AVX512_INLINE __m512 ld(const char *row, int f16, int v)
{
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + 16 * v)));
    return _mm512_loadu_ps((const float *)row + 16 * v);
}

/* e^x for x <= 0 (and a little above), relative error ~1e-7; below -104 the result is 0. */
AVX512_INLINE __m512 exp_neg(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x); /* ln2 in two parts */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

AVX512_INLINE void head_impl(float *o, const float *q, const char *k, const char *v, size_t row, int L,
                             int nv, int f16, float scale)
{
    __m512 qv[MAXV], ov[MAXV], ov2[MAXV];
    for (int i = 0; i < nv; i++) {
        qv[i] = _mm512_mul_ps(_mm512_loadu_ps(q + 16 * i), _mm512_set1_ps(scale));
        ov[i] = ov2[i] = _mm512_setzero_ps();
    }
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < L; j0 += 16) {
        const int nk = L - j0 < 16 ? L - j0 : 16;
        const __mmask16 live = (__mmask16)((1u << nk) - 1u);
        __m512 a[16];
        for (int kk = 0; kk < 16; kk++) { /* past the last key: its row again, masked out below */
            const char *kr = k + (size_t)(j0 + (kk < nk ? kk : nk - 1)) * row;
            a[kk] = _mm512_mul_ps(qv[0], ld(kr, f16, 0));
            for (int i = 1; i < nv; i++) a[kk] = _mm512_fmadd_ps(qv[i], ld(kr, f16, i), a[kk]);
        }
        const __m512 s = _mm512_mask_blend_ps(live, _mm512_set1_ps(-INFINITY), sum16_fold(a));
        const float bm = _mm512_reduce_max_ps(s);
        if (bm > m) {
            const float corr = m == -INFINITY ? 0.0f : expf(m - bm);
            const __m512 c = _mm512_set1_ps(corr);
            for (int i = 0; i < nv; i++) {
                ov[i] = _mm512_mul_ps(ov[i], c);
                ov2[i] = _mm512_mul_ps(ov2[i], c);
            }
            l *= corr;
            m = bm;
        }
        const __m512 p = _mm512_maskz_mov_ps(live, exp_neg(_mm512_sub_ps(s, _mm512_set1_ps(m))));
        l += _mm512_reduce_add_ps(p);
        float pk[16];
        _mm512_storeu_ps(pk, p);
        int kk = 0;
        for (; kk + 2 <= nk; kk += 2) {
            const char *v0 = v + (size_t)(j0 + kk) * row, *v1 = v0 + row;
            const __m512 p0 = _mm512_set1_ps(pk[kk]), p1 = _mm512_set1_ps(pk[kk + 1]);
            for (int i = 0; i < nv; i++) {
                ov[i] = _mm512_fmadd_ps(p0, ld(v0, f16, i), ov[i]);
                ov2[i] = _mm512_fmadd_ps(p1, ld(v1, f16, i), ov2[i]);
            }
        }
        if (kk < nk) {
            const char *v0 = v + (size_t)(j0 + kk) * row;
            const __m512 p0 = _mm512_set1_ps(pk[kk]);
            for (int i = 0; i < nv; i++) ov[i] = _mm512_fmadd_ps(p0, ld(v0, f16, i), ov[i]);
        }
    }
    const __m512 inv = _mm512_set1_ps(l > 0 ? 1.0f / l : 0.0f);
    for (int i = 0; i < nv; i++)
        _mm512_storeu_ps(o + 16 * i, _mm512_mul_ps(_mm512_add_ps(ov[i], ov2[i]), inv));
}

AVX512_FN int cpu_att_head_avx512(float *o, const float *q, const void *k, const void *v, size_t row_bytes,
                                  int L, int head_dim, int f16, float scale)
{
    if (head_dim % 16 != 0 || head_dim > 16 * MAXV || head_dim <= 0) return 0;
    const int nv = head_dim / 16;
    if (nv == 4 && f16) /* GPT-2's head_dim 64: constant trip counts keep the accumulators in registers */
        head_impl(o, q, k, v, row_bytes, L, 4, 1, scale);
    else if (nv == 4)
        head_impl(o, q, k, v, row_bytes, L, 4, 0, scale);
    else if (f16)
        head_impl(o, q, k, v, row_bytes, L, nv, 1, scale);
    else
        head_impl(o, q, k, v, row_bytes, L, nv, 0, scale);
    return 1;
}

#else
typedef int cpu_attention_avx512_unused; /* keeps the translation unit non-empty */
#endif
