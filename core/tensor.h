/* tensor.h - the one tensor type every part of vkgpt2 shares.
 *
 * A tensor is at most 2-D. ne[0] is the number of columns (the contiguous dimension), ne[1] the
 * number of rows, as in ggml. Weight matrices are stored [out][in]: ne[0] = in, ne[1] = out, so
 * y[o] = sum_i W[o][i] * x[i] reads one contiguous row per output. Loaders that meet another layout
 * (Hugging Face Conv1D stores [in][out]) transpose into memory the model owns.
 */
#ifndef VKG_TENSOR_H
#define VKG_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum vkg_dtype {
    VKG_F32 = 0,  /* IEEE binary32 */
    VKG_F16 = 1,  /* IEEE binary16 */
    VKG_BF16 = 2, /* bfloat16 (only seen in files; loaders widen it to f32) */
    /* ggml block formats: 32 weights per block, f16 scale (and min), ggml's exact byte layouts. */
    VKG_Q4_0 = 3, /* {f16 d; u8 qs[16]}: w = (nibble - 8) * d; 18 bytes */
    VKG_Q4_1 = 4, /* {f16 d, m; u8 qs[16]}: w = nibble * d + m; 20 bytes */
    VKG_Q5_0 = 5, /* {f16 d; u8 qh[4]; u8 qs[16]}: w = (5-bit q - 16) * d; 22 bytes */
    VKG_Q5_1 = 6, /* {f16 d, m; u8 qh[4]; u8 qs[16]}: w = q * d + m; 24 bytes */
    VKG_Q8_0 = 7, /* {f16 d; i8 qs[32]}: w = q * d; 34 bytes */
    VKG_DTYPE_COUNT
} vkg_dtype;

#define VKG_QBLOCK 32 /* weights per quantized block */

static inline int vkg_dtype_is_quant(vkg_dtype t) { return t >= VKG_Q4_0 && t <= VKG_Q8_0; }
/* Bytes of one block (quantized) or one element (f32, f16, bf16). */
static inline size_t vkg_dtype_block_bytes(vkg_dtype t)
{
    static const unsigned char b[] = {4, 2, 2, 18, 20, 22, 24, 34};
    return t < VKG_DTYPE_COUNT ? b[t] : 0;
}
/* Bytes of a row of n elements (n a multiple of VKG_QBLOCK for block formats). */
static inline size_t vkg_row_bytes(vkg_dtype t, size_t n)
{
    return vkg_dtype_is_quant(t) ? n / VKG_QBLOCK * vkg_dtype_block_bytes(t) : n * vkg_dtype_block_bytes(t);
}

typedef struct vkg_tensor {
    vkg_dtype type;   /* element type */
    int64_t ne[2];    /* ne[0] = columns (contiguous), ne[1] = rows (1 for vectors) */
    void *data;       /* first element; points into a mapping or model-owned memory */
    size_t nbytes;    /* ne[0] * ne[1] * element size */
} vkg_tensor;

/* Element size of the float types (f32, f16, bf16); block formats use vkg_row_bytes. */
static inline size_t vkg_dtype_size(vkg_dtype t) { return t == VKG_F32 ? 4 : 2; }
static inline const char *vkg_dtype_name(vkg_dtype t)
{
    static const char *n[] = {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"};
    return t < VKG_DTYPE_COUNT ? n[t] : "?";
}

/* ---- half and bfloat16 conversion (exact, round-to-nearest-even) ---- */

static inline float vkg_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 112) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t vkg_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* result is subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t man = (ax & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(ax >> 23); /* 14..24 */
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float vkg_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t vkg_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* Element i of a row of type t, widened to float. */
static inline float vkg_load(const void *row, vkg_dtype t, size_t i)
{
    /* memcpy: rows inside a mapped file need not be aligned (ggml files have no padding). */
    if (t == VKG_F32) {
        float f;
        memcpy(&f, (const char *)row + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)row + 2 * i, 2);
    return t == VKG_F16 ? vkg_f16_to_f32(h) : vkg_bf16_to_f32(h);
}

#endif
