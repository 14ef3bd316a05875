/* quant.h - ggml's block formats (q4_0, q4_1, q5_0, q5_1, q8_0): quantize, dequantize, and the
 * integer dot products the CPU matmul runs on quantized weights.
 *
 * Byte layouts are ggml's, little-endian, 32 weights per block (tensor.h lists them):
 *   q4_0 {f16 d; u8 qs[16]}           w[j] = ((qs[j] & 15) - 8) * d,  w[j+16] = ((qs[j] >> 4) - 8) * d
 *   q4_1 {f16 d, m; u8 qs[16]}        w[j] = (qs[j] & 15) * d + m,    w[j+16] = (qs[j] >> 4) * d + m
 *   q5_0 {f16 d; u32 qh; u8 qs[16]}   as q4_0 with bit j of qh the 5th bit of element j, offset 16
 *   q5_1 {f16 d, m; u32 qh; u8 qs[16]} as q4_1 with the 5th bit from qh
 *   q8_0 {f16 d; i8 qs[32]}           w[j] = qs[j] * d
 * Quantization follows ggml's reference rounding (q4_0/q5_0: d from the signed value of largest
 * magnitude, d = max / -8 or / -16; q4_1/q5_1: min/max; q8_0: amax / 127, round to nearest).
 */
#ifndef VKG_QUANT_H
#define VKG_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* x[0..n) -> blocks of type t (n a multiple of VKG_QBLOCK for block formats). f32, f16 and bf16
 * are accepted too (a plain conversion), so callers can treat every dtype alike. */
void vkg_quantize_row(vkg_dtype t, const float *x, void *blocks, size_t n);
/* blocks of type t -> y[0..n). Any dtype. */
void vkg_dequantize_row(vkg_dtype t, const void *blocks, float *y, size_t n);
/* Element i of a row of any dtype (block formats decode one block; slow, for tests and tools). */
float vkg_load_any(const void *row, vkg_dtype t, size_t i);

/* ---- activations for the integer dot products ----
 * One row of activations is quantized per matmul into blocks of 32 int8 with an f32 scale d and
 * s = d * sum(qs) (used by the formats with a min, q4_1 and q5_1). Scratch only; no file has it. */
typedef struct vkg_q8a {
    float d, s;
    int8_t qs[VKG_QBLOCK];
} vkg_q8a;

/* x[0..n) (n a multiple of 32) -> n/32 activation blocks: d = amax/127, qs = round(x/d). */
void vkg_quantize_act(const float *x, vkg_q8a *y, size_t n);
void vkg_quantize_act_scalar(const float *x, vkg_q8a *y, size_t n);

/* out[t] = sum over nb blocks of dequant(w) . dequant(x + t*ldx) for t < nt (1..4).
 * w: one row of nb blocks of type wt (a block format); x: activation blocks, token t's at
 * x + t * ldx. */
typedef void (*vkg_qdot_fn)(float *out, const void *w, vkg_dtype wt, const vkg_q8a *x, size_t ldx,
                            int nt, int nb);
void vkg_qdot_scalar(float *out, const void *w, vkg_dtype wt, const vkg_q8a *x, size_t ldx, int nt,
                     int nb);
void vkg_qdot_avx2(float *out, const void *w, vkg_dtype wt, const vkg_q8a *x, size_t ldx, int nt,
                   int nb);
void vkg_quantize_act_avx2(const float *x, vkg_q8a *y, size_t n);
/* The dot product the active ISA uses (AVX-512 machines run the AVX2 twin; arm64 the scalar). */
vkg_qdot_fn vkg_qdot_pick(void);

#endif
