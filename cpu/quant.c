/* quant.c - the scalar integer dot over ggml block formats and the activation quantizer. */
#include "quant.h"

#include <math.h>
#include <string.h>

#include "cpu_ops.h"

static inline uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- activations ---- */

void cpu_quantize_act_scalar(const float *x, cpu_q8a *y, size_t n)
{
    for (size_t b = 0; b < n / GPT2_QBLOCK; b++, x += GPT2_QBLOCK) {
        float amax = 0.0f;
        for (int j = 0; j < GPT2_QBLOCK; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < GPT2_QBLOCK; j++) {
            float v = nearbyintf(x[j] * id); /* round half to even, as the SIMD twins */
            int q = !(v == v) ? 0 : v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
            y[b].qs[j] = (int8_t)q;
            sum += q;
        }
        y[b].d = d;
        y[b].s = d * (float)sum;
    }
}

void cpu_quantize_act(const float *x, cpu_q8a *y, size_t n)
{
#if defined(__x86_64__)
    cpu_isa isa = cpu_isa_active();
    if (isa == CPU_ISA_AVX2 || isa == CPU_ISA_AVX512) {
        cpu_quantize_act_avx2(x, y, n);
        return;
    }
#endif
    cpu_quantize_act_scalar(x, y, n);
}

/* ---- scalar integer dot ---- */

/* The 32 integer weights of one block (before the offset/min), and its scale and min: w = q*d + m
 * for every format (q4_0: q in [-8, 7], m = 0). */
static inline void unpack_block(gpt2_dtype t, const unsigned char *b, int8_t q[GPT2_QBLOCK], float *d,
                                float *m)
{
    const int H = GPT2_QBLOCK / 2;
    *d = gpt2_f16_to_f32(get16(b));
    *m = 0.0f;
    switch (t) {
    case GPT2_Q4_0:
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)((b[2 + j] & 15) - 8);
            q[j + H] = (int8_t)((b[2 + j] >> 4) - 8);
        }
        return;
    case GPT2_Q4_1:
        *m = gpt2_f16_to_f32(get16(b + 2));
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)(b[4 + j] & 15);
            q[j + H] = (int8_t)(b[4 + j] >> 4);
        }
        return;
    case GPT2_Q5_0: {
        const uint32_t qh = get32(b + 2);
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)(((b[6 + j] & 15) | (int)((qh >> j) & 1) << 4) - 16);
            q[j + H] = (int8_t)(((b[6 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4) - 16);
        }
        return;
    }
    case GPT2_Q5_1: {
        *m = gpt2_f16_to_f32(get16(b + 2));
        const uint32_t qh = get32(b + 4);
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)((b[8 + j] & 15) | (int)((qh >> j) & 1) << 4);
            q[j + H] = (int8_t)((b[8 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4);
        }
        return;
    }
    case GPT2_Q8_0: memcpy(q, b + 2, GPT2_QBLOCK); return;
    default: memset(q, 0, GPT2_QBLOCK); return;
    }
}

void cpu_qdot_scalar(float *out, const void *w, gpt2_dtype wt, const cpu_q8a *x, size_t ldx, int nt, int nb)
{
    const unsigned char *b = w;
    const size_t bb = gpt2_dtype_block_bytes(wt);
    float acc[4] = {0, 0, 0, 0};
    for (int k = 0; k < nb; k++, b += bb) {
        int8_t q[GPT2_QBLOCK];
        float d, m;
        unpack_block(wt, b, q, &d, &m);
        for (int t = 0; t < nt; t++) {
            const cpu_q8a *xb = x + t * ldx + k;
            int32_t s = 0;
            for (int j = 0; j < GPT2_QBLOCK; j++) s += (int32_t)q[j] * xb->qs[j];
            acc[t] += d * xb->d * (float)s + m * xb->s;
        }
    }
    for (int t = 0; t < nt; t++) out[t] = acc[t];
}

cpu_qdot_fn cpu_qdot_pick(void)
{
    switch (cpu_isa_active()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX512:
    case CPU_ISA_AVX2: return cpu_qdot_avx2;
#endif
    default: return cpu_qdot_scalar;
    }
}
