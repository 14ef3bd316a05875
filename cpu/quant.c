/* quant.c - ggml block formats: reference quantize / dequantize and the scalar integer dot. */
#include "quant.h"

#include <math.h>
#include <string.h>

#include "cpu_ops.h"

static inline void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}
static inline uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Truncation of a value that should lie in [0, hi + 1): NaN and out-of-range inputs clamp, so
 * the conversion to int is always defined. */
static inline int trunc_clamp(float v, int hi)
{
    if (!(v >= 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* The signed value of largest magnitude in a block (q4_0, q5_0), and min/max (q4_1, q5_1). */
static float signed_absmax(const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < VKG_QBLOCK; j++) {
        float a = fabsf(x[j]);
        if (a > amax) {
            amax = a;
            max = x[j];
        }
    }
    return max;
}

static void minmax(const float *x, float *lo, float *hi)
{
    float mn = INFINITY, mx = -INFINITY;
    for (int j = 0; j < VKG_QBLOCK; j++) {
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
    if (!(mn <= mx)) mn = mx = 0.0f; /* all NaN */
    *lo = mn;
    *hi = mx;
}

static void quant_block(vkg_dtype t, const float *x, unsigned char *b)
{
    const int H = VKG_QBLOCK / 2;
    switch (t) {
    case VKG_Q4_0:
    case VKG_Q5_0: {
        const int five = t == VKG_Q5_0;
        const float max = signed_absmax(x);
        const float d = max / (five ? -16.0f : -8.0f);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const float off = five ? 16.5f : 8.5f;
        const int hi = five ? 31 : 15;
        put16(b, vkg_f32_to_f16(d));
        unsigned char *qs = b + (five ? 6 : 2);
        uint32_t qh = 0;
        for (int j = 0; j < H; j++) {
            int q0 = trunc_clamp(x[j] * id + off, hi), q1 = trunc_clamp(x[j + H] * id + off, hi);
            qs[j] = (unsigned char)((q0 & 15) | (q1 & 15) << 4);
            qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + H);
        }
        if (five) put32(b + 2, qh);
        return;
    }
    case VKG_Q4_1:
    case VKG_Q5_1: {
        const int five = t == VKG_Q5_1;
        float mn, mx;
        minmax(x, &mn, &mx);
        const float d = (mx - mn) / (five ? 31.0f : 15.0f);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const int hi = five ? 31 : 15;
        put16(b, vkg_f32_to_f16(d));
        put16(b + 2, vkg_f32_to_f16(mn));
        unsigned char *qs = b + (five ? 8 : 4);
        uint32_t qh = 0;
        for (int j = 0; j < H; j++) {
            int q0 = trunc_clamp((x[j] - mn) * id + 0.5f, hi);
            int q1 = trunc_clamp((x[j + H] - mn) * id + 0.5f, hi);
            qs[j] = (unsigned char)((q0 & 15) | (q1 & 15) << 4);
            qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + H);
        }
        if (five) put32(b + 4, qh);
        return;
    }
    case VKG_Q8_0: {
        float amax = 0.0f;
        for (int j = 0; j < VKG_QBLOCK; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put16(b, vkg_f32_to_f16(d));
        for (int j = 0; j < VKG_QBLOCK; j++) {
            float v = roundf(x[j] * id);
            int q = !(v == v) ? 0 : v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
            b[2 + j] = (unsigned char)(int8_t)q;
        }
        return;
    }
    default: return;
    }
}

static void dequant_block(vkg_dtype t, const unsigned char *b, float *y)
{
    const int H = VKG_QBLOCK / 2;
    const float d = vkg_f16_to_f32(get16(b));
    switch (t) {
    case VKG_Q4_0:
        for (int j = 0; j < H; j++) {
            y[j] = (float)((b[2 + j] & 15) - 8) * d;
            y[j + H] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        return;
    case VKG_Q4_1: {
        const float m = vkg_f16_to_f32(get16(b + 2));
        for (int j = 0; j < H; j++) {
            y[j] = (float)(b[4 + j] & 15) * d + m;
            y[j + H] = (float)(b[4 + j] >> 4) * d + m;
        }
        return;
    }
    case VKG_Q5_0: {
        const uint32_t qh = get32(b + 2);
        for (int j = 0; j < H; j++) {
            int q0 = (b[6 + j] & 15) | (int)((qh >> j) & 1) << 4;
            int q1 = (b[6 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4;
            y[j] = (float)(q0 - 16) * d;
            y[j + H] = (float)(q1 - 16) * d;
        }
        return;
    }
    case VKG_Q5_1: {
        const float m = vkg_f16_to_f32(get16(b + 2));
        const uint32_t qh = get32(b + 4);
        for (int j = 0; j < H; j++) {
            int q0 = (b[8 + j] & 15) | (int)((qh >> j) & 1) << 4;
            int q1 = (b[8 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4;
            y[j] = (float)q0 * d + m;
            y[j + H] = (float)q1 * d + m;
        }
        return;
    }
    case VKG_Q8_0:
        for (int j = 0; j < VKG_QBLOCK; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        return;
    default: return;
    }
}

void vkg_quantize_row(vkg_dtype t, const float *x, void *blocks, size_t n)
{
    unsigned char *b = blocks;
    if (!vkg_dtype_is_quant(t)) {
        for (size_t i = 0; i < n; i++) {
            if (t == VKG_F32) {
                memcpy(b + 4 * i, &x[i], 4);
            } else {
                uint16_t h = t == VKG_F16 ? vkg_f32_to_f16(x[i]) : vkg_f32_to_bf16(x[i]);
                memcpy(b + 2 * i, &h, 2);
            }
        }
        return;
    }
    const size_t bb = vkg_dtype_block_bytes(t);
    for (size_t i = 0; i + VKG_QBLOCK <= n; i += VKG_QBLOCK, b += bb) quant_block(t, x + i, b);
}

void vkg_dequantize_row(vkg_dtype t, const void *blocks, float *y, size_t n)
{
    const unsigned char *b = blocks;
    if (!vkg_dtype_is_quant(t)) {
        for (size_t i = 0; i < n; i++) y[i] = vkg_load(b, t, i);
        return;
    }
    const size_t bb = vkg_dtype_block_bytes(t);
    for (size_t i = 0; i + VKG_QBLOCK <= n; i += VKG_QBLOCK, b += bb) dequant_block(t, b, y + i);
}

float vkg_load_any(const void *row, vkg_dtype t, size_t i)
{
    if (!vkg_dtype_is_quant(t)) return vkg_load(row, t, i);
    float y[VKG_QBLOCK];
    dequant_block(t, (const unsigned char *)row + i / VKG_QBLOCK * vkg_dtype_block_bytes(t), y);
    return y[i % VKG_QBLOCK];
}

/* ---- activations ---- */

void vkg_quantize_act_scalar(const float *x, vkg_q8a *y, size_t n)
{
    for (size_t b = 0; b < n / VKG_QBLOCK; b++, x += VKG_QBLOCK) {
        float amax = 0.0f;
        for (int j = 0; j < VKG_QBLOCK; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < VKG_QBLOCK; j++) {
            float v = nearbyintf(x[j] * id); /* round half to even, as the SIMD twins */
            int q = !(v == v) ? 0 : v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
            y[b].qs[j] = (int8_t)q;
            sum += q;
        }
        y[b].d = d;
        y[b].s = d * (float)sum;
    }
}

void vkg_quantize_act(const float *x, vkg_q8a *y, size_t n)
{
#if defined(__x86_64__)
    cpu_isa isa = cpu_isa_active();
    if (isa == CPU_ISA_AVX2 || isa == CPU_ISA_AVX512) {
        vkg_quantize_act_avx2(x, y, n);
        return;
    }
#endif
    vkg_quantize_act_scalar(x, y, n);
}

/* ---- scalar integer dot ---- */

/* The 32 integer weights of one block (before the offset/min), and its scale and min: w = q*d + m
 * for every format (q4_0: q in [-8, 7], m = 0). */
static inline void unpack_block(vkg_dtype t, const unsigned char *b, int8_t q[VKG_QBLOCK], float *d,
                                float *m)
{
    const int H = VKG_QBLOCK / 2;
    *d = vkg_f16_to_f32(get16(b));
    *m = 0.0f;
    switch (t) {
    case VKG_Q4_0:
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)((b[2 + j] & 15) - 8);
            q[j + H] = (int8_t)((b[2 + j] >> 4) - 8);
        }
        return;
    case VKG_Q4_1:
        *m = vkg_f16_to_f32(get16(b + 2));
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)(b[4 + j] & 15);
            q[j + H] = (int8_t)(b[4 + j] >> 4);
        }
        return;
    case VKG_Q5_0: {
        const uint32_t qh = get32(b + 2);
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)(((b[6 + j] & 15) | (int)((qh >> j) & 1) << 4) - 16);
            q[j + H] = (int8_t)(((b[6 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4) - 16);
        }
        return;
    }
    case VKG_Q5_1: {
        *m = vkg_f16_to_f32(get16(b + 2));
        const uint32_t qh = get32(b + 4);
        for (int j = 0; j < H; j++) {
            q[j] = (int8_t)((b[8 + j] & 15) | (int)((qh >> j) & 1) << 4);
            q[j + H] = (int8_t)((b[8 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4);
        }
        return;
    }
    case VKG_Q8_0:
        memcpy(q, b + 2, VKG_QBLOCK);
        return;
    default: memset(q, 0, VKG_QBLOCK); return;
    }
}

void vkg_qdot_scalar(float *out, const void *w, vkg_dtype wt, const vkg_q8a *x, size_t ldx, int nt,
                     int nb)
{
    const unsigned char *b = w;
    const size_t bb = vkg_dtype_block_bytes(wt);
    float acc[4] = {0, 0, 0, 0};
    for (int k = 0; k < nb; k++, b += bb) {
        int8_t q[VKG_QBLOCK];
        float d, m;
        unpack_block(wt, b, q, &d, &m);
        for (int t = 0; t < nt; t++) {
            const vkg_q8a *xb = x + t * ldx + k;
            int32_t s = 0;
            for (int j = 0; j < VKG_QBLOCK; j++) s += (int32_t)q[j] * xb->qs[j];
            acc[t] += d * xb->d * (float)s + m * xb->s;
        }
    }
    for (int t = 0; t < nt; t++) out[t] = acc[t];
}

vkg_qdot_fn vkg_qdot_pick(void)
{
    switch (cpu_isa_active()) {
#if defined(__x86_64__)
    case CPU_ISA_AVX512:
    case CPU_ISA_AVX2: return vkg_qdot_avx2;
#endif
    default: return vkg_qdot_scalar;
    }
}
