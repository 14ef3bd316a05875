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
typedef struct cpu_q8a {
    float d, s;
    int8_t qs[GPT2_QBLOCK];
} cpu_q8a;

/* x[0..n) (n a multiple of 32) -> n/32 activation blocks: d = amax/127, qs = round(x/d). */
void cpu_quantize_act(const float *x, cpu_q8a *y, size_t n);
void cpu_quantize_act_scalar(const float *x, cpu_q8a *y, size_t n);

/* out[t] = sum over nb blocks of dequant(w) . dequant(x + t*ldx) for t < nt (1..4).
 * w: one row of nb blocks of type wt (a block format); x: activation blocks, token t's at
 * x + t * ldx. */
typedef void (*cpu_qdot_fn)(float *out, const void *w, gpt2_dtype wt, const cpu_q8a *x, size_t ldx, int nt,
                            int nb);
void cpu_qdot_scalar(float *out, const void *w, gpt2_dtype wt, const cpu_q8a *x, size_t ldx, int nt, int nb);
void cpu_qdot_avx2(float *out, const void *w, gpt2_dtype wt, const cpu_q8a *x, size_t ldx, int nt, int nb);
void cpu_quantize_act_avx2(const float *x, cpu_q8a *y, size_t n);
/* The dot product the active ISA uses when the VNNI rows kernel does not apply (AVX-512 and AVX2
 * run the AVX2 twin; arm64 the scalar). */
cpu_qdot_fn cpu_qdot_pick(void);

/* ---- AVX-512 VNNI (quant_vnni.c) ----
 * One pair of activation blocks laid out for the VNNI kernel of one weight type: the 64 bytes in
 * the order that kernel unpacks a pair of weight blocks, and per int32 lane (4 bytes) its starting
 * sum, its block's scale and its share of s. A missing second block (odd block count) is zeros. */
typedef struct cpu_q8p {
    _Alignas(64) uint8_t qs[64]; /* activation bytes (q8_0: biased by +128, the unsigned side) */
    int32_t base[16];            /* lane start: -offset * sum of the lane's 4 bytes (q4_0, q5_0) */
    float d[16];                 /* lane: its block's activation scale */
    float s[16];                 /* lane: its block's s / 8 (q4_1, q5_1 add m_w times it) */
} cpu_q8p;

/* 1 if the CPU runs the VNNI kernel (AVX-512 F/BW/VL/VNNI/VBMI/BITALG). */
int cpu_has_vnni(void);
/* nb activation blocks -> (nb + 1) / 2 pairs for weights of type wt. */
void cpu_prepare_act_vnni(gpt2_dtype wt, const cpu_q8a *x, cpu_q8p *p, int nb);
/* out[t * ldo + r] = sum over nb blocks of dequant(row r) . dequant(token t) for r < nr, t < nt
 * (1..4); rows of wt blocks row_bytes apart, token t's pairs at x + t * ldx. x86-64 only. */
void cpu_qdot_rows_vnni(float *out, int ldo, const void *w, size_t row_bytes, int nr, gpt2_dtype wt,
                        const cpu_q8p *x, size_t ldx, int nt, int nb);

#endif
