/* dtype.c - the dtype table, ggml's block formats (reference quantize / dequantize), and element
 * conversion between dtypes. */
#include "dtype.h"

#include <math.h>
#include <string.h>

/* ggml_type ids: f32 0, f16 1, q4_0 2, q4_1 3, q5_0 6, q5_1 7, q8_0 8, bf16 30. File types (llama.cpp's
 * llama_ftype, the same numbers as ggml's ggml_ftype for these): f32 0, f16 1, q4_0 2, q4_1 3,
 * q8_0 7, q5_0 8, q5_1 9, bf16 32. */
const gpt2_dtype_info gpt2_dtype_table[GPT2_DTYPE_COUNT] = {
    [GPT2_F32] = {"f32", 1, 4, 0, 0},
    [GPT2_F16] = {"f16", 1, 2, 1, 1},
    [GPT2_BF16] = {"bf16", 1, 2, 30, 32},
    [GPT2_Q4_0] = {"q4_0", GPT2_QBLOCK, 18, 2, 2},
    [GPT2_Q4_1] = {"q4_1", GPT2_QBLOCK, 20, 3, 3},
    [GPT2_Q5_0] = {"q5_0", GPT2_QBLOCK, 22, 6, 8},
    [GPT2_Q5_1] = {"q5_1", GPT2_QBLOCK, 24, 7, 9},
    [GPT2_Q8_0] = {"q8_0", GPT2_QBLOCK, 34, 8, 7},
};

int gpt2_dtype_from_ggml_type(uint32_t ggml_type)
{
    for (int t = 0; t < GPT2_DTYPE_COUNT; t++)
        if (gpt2_dtype_table[t].ggml_type == ggml_type) return t;
    return -1;
}

int gpt2_dtype_from_ftype(int32_t ftype)
{
    for (int t = 0; t < GPT2_DTYPE_COUNT; t++)
        if (gpt2_dtype_table[t].ftype == ftype) return t;
    return -1;
}

/* ---------------------------------------------------------------- block formats */

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
    for (int j = 0; j < GPT2_QBLOCK; j++) {
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
    for (int j = 0; j < GPT2_QBLOCK; j++) {
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
    if (!(mn <= mx)) mn = mx = 0.0f; /* all NaN */
    *lo = mn;
    *hi = mx;
}

static void quant_block(gpt2_dtype t, const float *x, unsigned char *b)
{
    const int H = GPT2_QBLOCK / 2;
    switch (t) {
    case GPT2_Q4_0:
    case GPT2_Q5_0: {
        const int five = t == GPT2_Q5_0;
        const float max = signed_absmax(x);
        const float d = max / (five ? -16.0f : -8.0f);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const float off = five ? 16.5f : 8.5f;
        const int hi = five ? 31 : 15;
        put16(b, gpt2_f32_to_f16(d));
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
    case GPT2_Q4_1:
    case GPT2_Q5_1: {
        const int five = t == GPT2_Q5_1;
        float mn, mx;
        minmax(x, &mn, &mx);
        const float d = (mx - mn) / (five ? 31.0f : 15.0f);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const int hi = five ? 31 : 15;
        put16(b, gpt2_f32_to_f16(d));
        put16(b + 2, gpt2_f32_to_f16(mn));
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
    case GPT2_Q8_0: {
        float amax = 0.0f;
        for (int j = 0; j < GPT2_QBLOCK; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put16(b, gpt2_f32_to_f16(d));
        for (int j = 0; j < GPT2_QBLOCK; j++) {
            float v = roundf(x[j] * id);
            int q = !(v == v) ? 0 : v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
            b[2 + j] = (unsigned char)(int8_t)q;
        }
        return;
    }
    default: return;
    }
}

static void dequant_block(gpt2_dtype t, const unsigned char *b, float *y)
{
    const int H = GPT2_QBLOCK / 2;
    const float d = gpt2_f16_to_f32(get16(b));
    switch (t) {
    case GPT2_Q4_0:
        for (int j = 0; j < H; j++) {
            y[j] = (float)((b[2 + j] & 15) - 8) * d;
            y[j + H] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        return;
    case GPT2_Q4_1: {
        const float m = gpt2_f16_to_f32(get16(b + 2));
        for (int j = 0; j < H; j++) {
            y[j] = (float)(b[4 + j] & 15) * d + m;
            y[j + H] = (float)(b[4 + j] >> 4) * d + m;
        }
        return;
    }
    case GPT2_Q5_0: {
        const uint32_t qh = get32(b + 2);
        for (int j = 0; j < H; j++) {
            int q0 = (b[6 + j] & 15) | (int)((qh >> j) & 1) << 4;
            int q1 = (b[6 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4;
            y[j] = (float)(q0 - 16) * d;
            y[j + H] = (float)(q1 - 16) * d;
        }
        return;
    }
    case GPT2_Q5_1: {
        const float m = gpt2_f16_to_f32(get16(b + 2));
        const uint32_t qh = get32(b + 4);
        for (int j = 0; j < H; j++) {
            int q0 = (b[8 + j] & 15) | (int)((qh >> j) & 1) << 4;
            int q1 = (b[8 + j] >> 4) | (int)((qh >> (j + H)) & 1) << 4;
            y[j] = (float)q0 * d + m;
            y[j + H] = (float)q1 * d + m;
        }
        return;
    }
    case GPT2_Q8_0:
        for (int j = 0; j < GPT2_QBLOCK; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        return;
    default: return;
    }
}

void gpt2_quantize_row(gpt2_dtype t, const float *x, void *blocks, size_t n)
{
    unsigned char *b = blocks;
    if (!gpt2_dtype_is_quant(t)) {
        for (size_t i = 0; i < n; i++) {
            if (t == GPT2_F32) {
                memcpy(b + 4 * i, &x[i], 4);
            } else {
                uint16_t h = t == GPT2_F16 ? gpt2_f32_to_f16(x[i]) : gpt2_f32_to_bf16(x[i]);
                memcpy(b + 2 * i, &h, 2);
            }
        }
        return;
    }
    const size_t bb = gpt2_dtype_block_bytes(t);
    for (size_t i = 0; i + GPT2_QBLOCK <= n; i += GPT2_QBLOCK, b += bb) quant_block(t, x + i, b);
}

void gpt2_dequantize_row(gpt2_dtype t, const void *blocks, float *y, size_t n)
{
    const unsigned char *b = blocks;
    if (!gpt2_dtype_is_quant(t)) {
        for (size_t i = 0; i < n; i++) y[i] = gpt2_load(b, t, i);
        return;
    }
    const size_t bb = gpt2_dtype_block_bytes(t);
    for (size_t i = 0; i + GPT2_QBLOCK <= n; i += GPT2_QBLOCK, b += bb) dequant_block(t, b, y + i);
}

float gpt2_load_any(const void *row, gpt2_dtype t, size_t i)
{
    if (!gpt2_dtype_is_quant(t)) return gpt2_load(row, t, i);
    float y[GPT2_QBLOCK];
    dequant_block(t, (const unsigned char *)row + i / GPT2_QBLOCK * gpt2_dtype_block_bytes(t), y);
    return y[i % GPT2_QBLOCK];
}

/* ---------------------------------------------------------------- conversion */

static inline void store_elem(void *dst, gpt2_dtype dt, size_t i, float v)
{
    if (dt == GPT2_F32)
        ((float *)dst)[i] = v;
    else if (dt == GPT2_F16)
        ((uint16_t *)dst)[i] = gpt2_f32_to_f16(v);
    else
        ((uint16_t *)dst)[i] = gpt2_f32_to_bf16(v);
}

void gpt2_convert(void *dst, gpt2_dtype dt, const void *src, gpt2_dtype st, size_t n)
{
    if (dt == st) {
        memcpy(dst, src, gpt2_row_bytes(dt, n));
        return;
    }
    if (gpt2_dtype_is_quant(dt) || gpt2_dtype_is_quant(st)) { /* through f32, a block at a time */
        float tmp[GPT2_QBLOCK];
        for (size_t i = 0; i + GPT2_QBLOCK <= n; i += GPT2_QBLOCK) {
            gpt2_dequantize_row(st, (const char *)src + gpt2_row_bytes(st, i), tmp, GPT2_QBLOCK);
            gpt2_quantize_row(dt, tmp, (char *)dst + gpt2_row_bytes(dt, i), GPT2_QBLOCK);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) store_elem(dst, dt, i, gpt2_load(src, st, i));
}

void gpt2_transpose(void *dst, gpt2_dtype dt, const void *src, gpt2_dtype st, size_t rows, size_t cols)
{
    const size_t B = 32;
    for (size_t r0 = 0; r0 < rows; r0 += B) {
        size_t r1 = r0 + B < rows ? r0 + B : rows;
        for (size_t c0 = 0; c0 < cols; c0 += B) {
            size_t c1 = c0 + B < cols ? c0 + B : cols;
            if (dt == st && dt == GPT2_F32) {
                const float *s = src;
                float *d = dst;
                for (size_t r = r0; r < r1; r++)
                    for (size_t c = c0; c < c1; c++) d[c * rows + r] = s[r * cols + c];
            } else if (dt == st) {
                const uint16_t *s = src;
                uint16_t *d = dst;
                for (size_t r = r0; r < r1; r++)
                    for (size_t c = c0; c < c1; c++) d[c * rows + r] = s[r * cols + c];
            } else {
                for (size_t r = r0; r < r1; r++)
                    for (size_t c = c0; c < c1; c++)
                        store_elem(dst, dt, c * rows + r, gpt2_load(src, st, r * cols + c));
            }
        }
    }
}
