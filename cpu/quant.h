/* quant.h - the integer dot products the CPU matmul runs on ggml's block formats (q4_0, q4_1,
 * q5_0, q5_1, q8_0), and the activation blocks they take. The block layouts and the reference
 * quantize / dequantize are core's (core/dtype.h); this header re-exports them for the kernels.
 */
#ifndef VKG_QUANT_H
#define VKG_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

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
