/* avx512_fold.h - sum16_fold(a): 16 AVX-512 accumulators -> one vector whose lane j is the sum of
 * a[j]'s 16 lanes, by a transpose-add tree (halves, quarters, pairs, a fixed lane permute): about
 * three shuffles per result instead of a horizontal sum each. Include only from x86-64 files that
 * compile their callers with AVX-512F targets. */
#ifndef VKG_AVX512_FOLD_H
#define VKG_AVX512_FOLD_H

#include <immintrin.h>

static inline __attribute__((always_inline, target("avx512f"))) __m512 sum16_fold(const __m512 a[16])
{
    __m512 b[8], c[4], d[2];
    for (int i = 0; i < 8; i++) /* lanes 0..7: a[2i] folded to 8, 8..15: a[2i+1] */
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++) /* 128-bit lane g: a[4i + g] folded to 4 */
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++) /* lane g: [a[8i+g] x2, a[8i+4+g] x2] folded */
        d[i] = _mm512_add_ps(_mm512_unpacklo_ps(c[2 * i], c[2 * i + 1]),
                             _mm512_unpackhi_ps(c[2 * i], c[2 * i + 1]));
    /* lane 4g + {0, 1, 2, 3} = a[g], a[8 + g], a[4 + g], a[12 + g] */
    const __m512 e = _mm512_add_ps(_mm512_unpacklo_ps(d[0], d[1]), _mm512_unpackhi_ps(d[0], d[1]));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, e);
}

#endif
