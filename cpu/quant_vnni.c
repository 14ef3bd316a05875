/* quant_vnni.c - AVX-512 VNNI integer dot products of ggml block weights, two blocks per register.
 *
 * A pair of weight blocks (at most 64 bytes except q8_0) is read with one masked load and unpacked
 * into the 64 bytes of one zmm with byte permutes: the nibble formats as [b0 low 16 | b1 low 16 |
 * b0 high 16 | b1 high 16] (a 16-bit variable shift and a mask then leave 0..15 in every byte),
 * the fifth bit of q5_0/q5_1 from a bit shuffle of the qh words, q8_0 as [b0 32 | b1 32]. The
 * activations are laid out once per matmul in that same order (cpu_q8p), so a single vpdpbusd
 * gives 16 int32 partial sums of the pair: unsigned weights times signed activations for the
 * nibble formats, whose offset (8 or 16) is a per-lane starting sum computed with the activations;
 * for q8_0 the activations are biased by +128 to be the unsigned side and 128 * sum(w) is taken
 * back. The two f16 block scales (and mins) go to their lanes with one word permute. Every lane
 * then meets its block's d_w * d_x in f32; the formats with a min add m_w * s_x / 8 per lane.
 * Functions carry target attributes; they only run when cpu_has_vnni() said so.
 */
#include "quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu_ops.h"

#define VNNI_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512bitalg,avx2,fma,f16c"
#define VNNI_FN __attribute__((target(VNNI_TARGET)))
#define VNNI_INLINE static inline __attribute__((always_inline, target(VNNI_TARGET)))

int cpu_has_vnni(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bitalg") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* Block of pair lane L (0..15) for the nibble formats ([b0 | b1 | b0 | b1] in 16-byte quarters) and
 * for q8_0 ([b0 | b1] in halves). */
static inline int lane_block(gpt2_dtype t, int lane) { return t == GPT2_Q8_0 ? lane / 8 : (lane / 4) & 1; }

/* Element of its block that byte i (0..63) of the pair register holds. */
static inline int byte_elem(gpt2_dtype t, int i)
{
    return t == GPT2_Q8_0 ? i % 32 : (i % 16) + (i >= 32 ? 16 : 0);
}

static inline int byte_block(gpt2_dtype t, int i) { return lane_block(t, i / 4); }

void cpu_prepare_act_vnni(gpt2_dtype wt, const cpu_q8a *x, cpu_q8p *p, int nb)
{
    const int off = wt == GPT2_Q4_0 ? 8 : wt == GPT2_Q5_0 ? 16 : 0;
    for (int k = 0; k < (nb + 1) / 2; k++) {
        cpu_q8p *o = p + k;
        const cpu_q8a *blk[2] = {x + 2 * k, 2 * k + 1 < nb ? x + 2 * k + 1 : NULL};
        for (int i = 0; i < 64; i++) {
            const cpu_q8a *b = blk[byte_block(wt, i)];
            int q = b ? b->qs[byte_elem(wt, i)] : 0;
            if (wt == GPT2_Q8_0 && b) q += 128; /* the unsigned operand */
            o->qs[i] = (uint8_t)q;
        }
        for (int lane = 0; lane < 16; lane++) {
            const cpu_q8a *b = blk[lane_block(wt, lane)];
            int sum = 0;
            for (int j = 0; j < 4; j++) sum += (int8_t)o->qs[4 * lane + j];
            o->base[lane] = wt == GPT2_Q8_0 || !b ? 0 : -off * sum;
            o->d[lane] = b ? b->d : 0.0f;
            o->s[lane] = b ? b->s * 0.125f : 0.0f; /* 8 lanes per block share s */
        }
    }
}

#if defined(__x86_64__)

/* Constants of one weight type, built once per call. */
typedef struct vnni_consts {
    __m512i nib_idx; /* vpermb: the pair's qs bytes to their register bytes */
    __m512i nib_shr; /* vpsrlvw: 0 for the low-nibble half, 4 for the high one */
    __m512i qh_idx;  /* vpermb: each qword gets the qh u32 of its bytes' block */
    __m512i qh_bit;  /* vpshufbitqmb: the bit of qh that byte i needs */
    __m512i dm_idx;  /* vpermw: words 0..15 the lanes' d, 16..31 the lanes' m */
} vnni_consts;

VNNI_INLINE void make_consts(gpt2_dtype t, vnni_consts *c)
{
    const int bb = (int)gpt2_dtype_block_bytes(t);
    const int qs_off = t == GPT2_Q4_0 ? 2 : t == GPT2_Q4_1 ? 4 : t == GPT2_Q5_0 ? 6 : t == GPT2_Q5_1 ? 8 : 2;
    const int qh_off = t == GPT2_Q5_0 ? 2 : 4;
    uint8_t nib[64], shr[64] = {0}, qh[64], bit[64];
    uint16_t dm[32];
    for (int i = 0; i < 64; i++) {
        const int blk = byte_block(t, i);
        nib[i] = (uint8_t)(qs_off + blk * bb + (i % 16));
        const int qw_blk = byte_block(t, i / 8 * 8); /* the block of this byte's qword */
        qh[i] = (uint8_t)(i % 8 < 4 ? qh_off + qw_blk * bb + i % 8 : 0);
        bit[i] = (uint8_t)byte_elem(t, i);
    }
    for (int w = 16; w < 32; w++) shr[2 * w] = 4; /* words 16..31: the high nibbles */
    for (int lane = 0; lane < 16; lane++) {
        const int blk = lane_block(t, lane);
        dm[lane] = (uint16_t)(blk * bb / 2);
        dm[16 + lane] = (uint16_t)((blk * bb + 2) / 2);
    }
    c->nib_idx = _mm512_loadu_si512(nib);
    c->nib_shr = _mm512_loadu_si512(shr);
    c->qh_idx = _mm512_loadu_si512(qh);
    c->qh_bit = _mm512_loadu_si512(bit);
    c->dm_idx = _mm512_loadu_si512(dm);
}

/* Unpacks weight pair k of a row (full: both blocks exist) into its bytes and lane scales/mins. */
VNNI_INLINE __m512i unpack_pair(gpt2_dtype t, const vnni_consts *c, const unsigned char *b, int full,
                                int plain, __m512 *dv, __m512 *mv)
{
    const int bb = (int)gpt2_dtype_block_bytes(t);
    const int bytes = full ? 2 * bb : bb;
    const __mmask64 m = bytes >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << bytes) - 1);
    const __m512i raw = plain ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi8(m, b);
    const __m512i dm = _mm512_permutexvar_epi16(c->dm_idx, raw);
    *dv = _mm512_cvtph_ps(_mm512_castsi512_si256(dm));
    if (t == GPT2_Q4_1 || t == GPT2_Q5_1) *mv = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(dm, 1));
    if (t == GPT2_Q8_0) {
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(b + 2));
        const __m256i hi = full ? _mm256_loadu_si256((const __m256i *)(b + 36)) : _mm256_setzero_si256();
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    __m512i w = _mm512_permutexvar_epi8(c->nib_idx, raw);
    w = _mm512_and_si512(_mm512_srlv_epi16(w, c->nib_shr), _mm512_set1_epi8(15));
    if (t == GPT2_Q5_0 || t == GPT2_Q5_1) {
        const __m512i qh = _mm512_permutexvar_epi8(c->qh_idx, raw);
        const __mmask64 five = _mm512_bitshuffle_epi64_mask(qh, c->qh_bit);
        w = _mm512_mask_add_epi8(w, five, w, _mm512_set1_epi8(16));
    }
    return w;
}

/* One pair against NT tokens' activations. */
VNNI_INLINE void pair_dot(gpt2_dtype t, __m512i w, __m512 dv, __m512 mv, const cpu_q8p *x, size_t ldx, int NT,
                          __m512 *acc, __m512 *accm)
{
    __m512i start = _mm512_setzero_si512();
    if (t == GPT2_Q8_0) /* -128 * sum(w) per lane, once for all tokens */
        start = _mm512_sub_epi32(start, _mm512_dpbusd_epi32(start, _mm512_set1_epi8((char)0x80), w));
    for (int k = 0; k < NT; k++) {
        const cpu_q8p *xp = x + (size_t)k * ldx;
        const __m512i xq = _mm512_load_si512(xp->qs);
        __m512i s = t == GPT2_Q8_0 ? _mm512_dpbusd_epi32(start, xq, w)
                                   : _mm512_dpbusd_epi32(_mm512_load_si512(xp->base), w, xq);
        acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dv, _mm512_load_ps(xp->d)), acc[k]);
        if (t == GPT2_Q4_1 || t == GPT2_Q5_1) accm[k] = _mm512_fmadd_ps(mv, _mm512_load_ps(xp->s), accm[k]);
    }
}

/* A plain 64-byte load of pair P of the current row stays inside this call's rows. */
#define PLAIN(P) (w + (size_t)(P) * 2 * bb + 64 <= end)

VNNI_INLINE void rows_impl(gpt2_dtype t, float *out, int ldo, const unsigned char *w, size_t row_bytes,
                           int nr, const cpu_q8p *x, size_t ldx, int nt, int nb, int NT)
{
    vnni_consts c;
    make_consts(t, &c);
    const int bb = (int)gpt2_dtype_block_bytes(t), np = nb / 2, pairs = (nb + 1) / 2;
    const unsigned char *end = w + (size_t)nr * row_bytes;
    for (int r = 0; r < nr; r++, w += row_bytes) {
        __m512 acc[4], accm[4], acc2[4];
        for (int k = 0; k < 4; k++) acc[k] = accm[k] = acc2[k] = _mm512_setzero_ps();
        int p = 0;
        if (NT == 1) /* two chains: the pair's work is shorter than the FMA latency chain */
            for (; p + 2 <= np; p += 2) {
                __m512 dv0 = _mm512_setzero_ps(), mv0 = dv0, dv1 = dv0, mv1 = dv0;
                __m512i w0 = unpack_pair(t, &c, w + (size_t)p * 2 * bb, 1, PLAIN(p), &dv0, &mv0);
                __m512i w1 = unpack_pair(t, &c, w + (size_t)(p + 1) * 2 * bb, 1, PLAIN(p + 1), &dv1, &mv1);
                pair_dot(t, w0, dv0, mv0, x + p, ldx, 1, acc, accm);
                pair_dot(t, w1, dv1, mv1, x + p + 1, ldx, 1, acc2, accm + 1);
            }
        for (; p < pairs; p++) {
            __m512 dv = _mm512_setzero_ps(), mv = dv;
            __m512i wq = unpack_pair(t, &c, w + (size_t)p * 2 * bb, p < np, PLAIN(p), &dv, &mv);
            pair_dot(t, wq, dv, mv, x + p, ldx, NT, acc, accm);
        }
        if (NT == 1) {
            acc[0] = _mm512_add_ps(acc[0], acc2[0]);
            accm[0] = _mm512_add_ps(accm[0], accm[1]);
        }
        for (int k = 0; k < nt && k < NT; k++)
            out[(size_t)k * ldo + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[k], accm[k]));
    }
}

#define VNNI_TYPE_CASE(T)                                                                                    \
    case T:                                                                                                  \
        if (nt <= 1)                                                                                         \
            rows_impl(T, out, ldo, w, row_bytes, nr, x, ldx, 1, nb, 1);                                      \
        else if (nt == 2)                                                                                    \
            rows_impl(T, out, ldo, w, row_bytes, nr, x, ldx, 2, nb, 2);                                      \
        else if (nt == 3)                                                                                    \
            rows_impl(T, out, ldo, w, row_bytes, nr, x, ldx, 3, nb, 3);                                      \
        else                                                                                                 \
            rows_impl(T, out, ldo, w, row_bytes, nr, x, ldx, nt, nb, 4);                                     \
        return;

VNNI_FN void cpu_qdot_rows_vnni(float *out, int ldo, const void *w, size_t row_bytes, int nr, gpt2_dtype wt,
                                const cpu_q8p *x, size_t ldx, int nt, int nb)
{
    switch (wt) {
        VNNI_TYPE_CASE(GPT2_Q4_0)
        VNNI_TYPE_CASE(GPT2_Q4_1)
        VNNI_TYPE_CASE(GPT2_Q5_0)
        VNNI_TYPE_CASE(GPT2_Q5_1)
        VNNI_TYPE_CASE(GPT2_Q8_0)
    default: return;
    }
}

#endif
