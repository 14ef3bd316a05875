/* quant_avx2.c - AVX2 integer dot products of ggml block weights with int8 activation blocks,
 * and the activation quantizer.
 *
 * Each weight block is widened once to 32 signed bytes (q4_0: nibble - 8, q5_0: 5-bit - 16, q4_1
 * and q5_1: 0..31, q8_0 as stored) and multiplied with up to four tokens' activation bytes:
 * maddubs needs an unsigned left operand, so |w| meets sign(w)*x (at most 128 * 127 * 2 per pair,
 * no saturation). The int32 block sums are scaled by d_w * d_x in f32; the formats with a min add
 * m_w * s_x. Functions carry target attributes; they only run when cpu_isa_detect() found AVX2.
 */
#include "quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

AVX2_INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE float ld_f16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 16 packed nibble bytes -> 32 bytes: elements 0..15 the low nibbles, 16..31 the high ones */
AVX2_INLINE __m256i nibbles(const unsigned char *qs)
{
    const __m128i lo4 = _mm_set1_epi8(15);
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(v, lo4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), lo4);
    return _mm256_set_m128i(hi, lo);
}

/* byte j = 0x10 where bit j of the little-endian u32 at p is set, else 0 */
AVX2_INLINE __m256i fifth_bits(const unsigned char *p)
{
    uint32_t qh;
    memcpy(&qh, p, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                                            2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* The block's 32 integer weights (signed bytes), scale d and min m (w = q * d + m). */
AVX2_INLINE __m256i unpack(gpt2_dtype t, const unsigned char *b, float *d, float *m)
{
    *d = ld_f16(b);
    switch (t) {
    case GPT2_Q4_0: *m = 0.0f; return _mm256_sub_epi8(nibbles(b + 2), _mm256_set1_epi8(8));
    case GPT2_Q4_1: *m = ld_f16(b + 2); return nibbles(b + 4);
    case GPT2_Q5_0:
        *m = 0.0f;
        return _mm256_sub_epi8(_mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)), _mm256_set1_epi8(16));
    case GPT2_Q5_1: *m = ld_f16(b + 2); return _mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4));
    default: /* q8_0 */ *m = 0.0f; return _mm256_loadu_si256((const __m256i *)(b + 2));
    }
}

/* 8 int32 partial sums of w . x over one block, as floats */
AVX2_INLINE __m256 bdot(__m256i aw, __m256i w, const int8_t *xq)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)xq);
    __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

AVX2_INLINE void qdot_impl(float *out, const unsigned char *b, gpt2_dtype wt, const cpu_q8a *x, size_t ldx,
                           int nt, int nb, int NT)
{
    const size_t bb = gpt2_dtype_block_bytes(wt);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float msum[4] = {0, 0, 0, 0};
    const cpu_q8a *xs[4];
    for (int t = 0; t < 4; t++) xs[t] = x + (size_t)(t < nt ? t : nt - 1) * ldx;
    for (int k = 0; k < nb; k++, b += bb) {
        float d, m;
        __m256i w = unpack(wt, b, &d, &m);
        __m256i aw = _mm256_sign_epi8(w, w);
        for (int t = 0; t < NT; t++) {
            const cpu_q8a *xb = xs[t] + k;
            acc[t] = _mm256_fmadd_ps(bdot(aw, w, xb->qs), _mm256_set1_ps(d * xb->d), acc[t]);
            msum[t] += m * xb->s;
        }
    }
    for (int t = 0; t < nt && t < NT; t++) out[t] = hsum(acc[t]) + msum[t];
}

AVX2_FN void cpu_qdot_avx2(float *out, const void *w, gpt2_dtype wt, const cpu_q8a *x, size_t ldx, int nt,
                           int nb)
{
    if (nt <= 1)
        qdot_impl(out, w, wt, x, ldx, 1, nb, 1);
    else if (nt == 2)
        qdot_impl(out, w, wt, x, ldx, 2, nb, 2);
    else
        qdot_impl(out, w, wt, x, ldx, nt, nb, 4);
}

AVX2_FN void cpu_quantize_act_avx2(const float *x, cpu_q8a *y, size_t n)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < n / GPT2_QBLOCK; b++, x += GPT2_QBLOCK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absm), _mm256_and_ps(v1, absm)),
                                  _mm256_max_ps(_mm256_and_ps(v2, absm), _mm256_and_ps(v3, absm)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        const float d = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(d != 0.0f ? 127.0f / amax : 0.0f);
        enum { rm = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }; /* a constant expression (clang) */
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), rm));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), rm));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), rm));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), rm));
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)y[b].qs, _mm256_permutevar8x32_epi32(p, order));
        y[b].d = d;
        y[b].s = d * (float)_mm_cvtsi128_si32(s4);
    }
}

#else
typedef int cpu_quant_avx2_unused; /* keeps the translation unit non-empty */
#endif
