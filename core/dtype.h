/* dtype.h - the element types of vkgpt2: one table of their sizes, names and ggml ids, exact
 * half/bfloat16 conversion, and the reference (de)quantizers of ggml's block formats.
 *
 * Block byte layouts are ggml's, little-endian, 32 weights per block:
 *   q4_0 {f16 d; u8 qs[16]}           w[j] = ((qs[j] & 15) - 8) * d,  w[j+16] = ((qs[j] >> 4) - 8) * d
 *   q4_1 {f16 d, m; u8 qs[16]}        w[j] = (qs[j] & 15) * d + m,    w[j+16] = (qs[j] >> 4) * d + m
 *   q5_0 {f16 d; u32 qh; u8 qs[16]}   as q4_0 with bit j of qh the 5th bit of element j, offset 16
 *   q5_1 {f16 d, m; u32 qh; u8 qs[16]} as q4_1 with the 5th bit from qh
 *   q8_0 {f16 d; i8 qs[32]}           w[j] = qs[j] * d
 * Quantization follows ggml's reference rounding (q4_0/q5_0: d from the signed value of largest
 * magnitude, d = max / -8 or / -16; q4_1/q5_1: min/max; q8_0: amax / 127, round to nearest).
 * These are the reference twins every backend's kernels are checked against; the file formats
 * use them to convert and quantize.
 */
#ifndef VKG_DTYPE_H
#define VKG_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum gpt2_dtype {
    GPT2_F32 = 0,  /* IEEE binary32 */
    GPT2_F16 = 1,  /* IEEE binary16 */
    GPT2_BF16 = 2, /* bfloat16 (only seen in files; loaders widen it to f32) */
    /* ggml block formats: 32 weights per block, f16 scale (and min), ggml's exact byte layouts. */
    GPT2_Q4_0 = 3, /* {f16 d; u8 qs[16]}: w = (nibble - 8) * d; 18 bytes */
    GPT2_Q4_1 = 4, /* {f16 d, m; u8 qs[16]}: w = nibble * d + m; 20 bytes */
    GPT2_Q5_0 = 5, /* {f16 d; u8 qh[4]; u8 qs[16]}: w = (5-bit q - 16) * d; 22 bytes */
    GPT2_Q5_1 = 6, /* {f16 d, m; u8 qh[4]; u8 qs[16]}: w = q * d + m; 24 bytes */
    GPT2_Q8_0 = 7, /* {f16 d; i8 qs[32]}: w = q * d; 34 bytes */
    GPT2_DTYPE_COUNT
} gpt2_dtype;

#define GPT2_QBLOCK 32 /* weights per quantized block */

/* What vkgpt2 knows of a dtype, in one row per type (dtype.c holds the table). */
typedef struct gpt2_dtype_info {
    const char *name;    /* "f32", "q4_0", ... as in messages and on the command line */
    uint8_t block_elems; /* elements per block: 1 for the float types, GPT2_QBLOCK for block formats */
    uint8_t block_bytes; /* bytes of one block (one element for the float types) */
    uint32_t ggml_type;  /* ggml's enum ggml_type: the tensor type id of GGUF and ggml legacy files */
    int32_t ftype;       /* llama.cpp's file type (GGUF general.file_type, ggml legacy ftype) of a
                           * model whose matrices are this type */
} gpt2_dtype_info;

extern const gpt2_dtype_info gpt2_dtype_table[GPT2_DTYPE_COUNT];

static inline int gpt2_dtype_is_quant(gpt2_dtype t) { return t >= GPT2_Q4_0 && t <= GPT2_Q8_0; }
/* Bytes of one block (quantized) or one element (f32, f16, bf16); 0 for an unknown type. */
static inline size_t gpt2_dtype_block_bytes(gpt2_dtype t)
{
    return (unsigned)t < GPT2_DTYPE_COUNT ? gpt2_dtype_table[t].block_bytes : 0;
}
/* Bytes of a row of n elements (n a multiple of GPT2_QBLOCK for block formats). */
static inline size_t gpt2_row_bytes(gpt2_dtype t, size_t n)
{
    return gpt2_dtype_is_quant(t) ? n / GPT2_QBLOCK * gpt2_dtype_block_bytes(t)
                                  : n * gpt2_dtype_block_bytes(t);
}
/* Element size of the float types (f32, f16, bf16); block formats use gpt2_row_bytes. */
static inline size_t gpt2_dtype_size(gpt2_dtype t) { return t == GPT2_F32 ? 4 : 2; }
static inline const char *gpt2_dtype_name(gpt2_dtype t)
{
    return (unsigned)t < GPT2_DTYPE_COUNT ? gpt2_dtype_table[t].name : "?";
}
/* The dtype of a ggml type id / of a file type; -1 for one vkgpt2 does not read. */
int gpt2_dtype_from_ggml_type(uint32_t ggml_type);
int gpt2_dtype_from_ftype(int32_t ftype);

/* ---- half and bfloat16 conversion (exact, round-to-nearest-even) ---- */

static inline float gpt2_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400u));
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

static inline uint16_t gpt2_f32_to_f16(float f)
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

static inline float gpt2_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t gpt2_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* Element i of a row of type t, widened to float. */
static inline float gpt2_load(const void *row, gpt2_dtype t, size_t i)
{
    /* memcpy: rows inside a mapped file need not be aligned (ggml files have no padding). */
    if (t == GPT2_F32) {
        float f;
        memcpy(&f, (const char *)row + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)row + 2 * i, 2);
    return t == GPT2_F16 ? gpt2_f16_to_f32(h) : gpt2_bf16_to_f32(h);
}

/* ---- reference conversion and (de)quantization (dtype.c) ---- */

/* x[0..n) -> blocks of type t (n a multiple of GPT2_QBLOCK for block formats). f32, f16 and bf16
 * are accepted too (a plain conversion), so callers can treat every dtype alike. */
void gpt2_quantize_row(gpt2_dtype t, const float *x, void *blocks, size_t n);
/* blocks of type t -> y[0..n). Any dtype. */
void gpt2_dequantize_row(gpt2_dtype t, const void *blocks, float *y, size_t n);
/* Element i of a row of any dtype (block formats decode one block; slow, for tests and tools). */
float gpt2_load_any(const void *row, gpt2_dtype t, size_t i);

/* Converts n elements of type st to type dt (same type: plain copy; block formats go through f32
 * a block at a time, n a multiple of GPT2_QBLOCK). */
void gpt2_convert(void *dst, gpt2_dtype dt, const void *src, gpt2_dtype st, size_t n);
/* Transposes src [rows][cols] of float type st into dst [cols][rows] of float type dt. */
void gpt2_transpose(void *dst, gpt2_dtype dt, const void *src, gpt2_dtype st, size_t rows, size_t cols);

#endif
