/* ref64.h - float64 references of the engine's kernels, computed the slow and obvious way: what
 * `vkgpt2 selftest` (devtools/selftest.c) and the Criterion tests (tests/) hold the CPU and Vulkan
 * kernels against. Inputs are f32 as the kernels read them (weights already rounded to f16 or
 * dequantized); each reference can also give an error scale per output, the sum of the magnitudes
 * of the terms that made it, so that cancellation can neither hide nor fake an error. Nothing here
 * prints or aborts; the functions that allocate return NULL or -1 when out of memory. */
#ifndef VKG_REF64_H
#define VKG_REF64_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

/* ---- a seeded xorshift64 generator (the selftest's and the Vulkan tests' random inputs) ---- */

/* The state from a seed: the same stream for the same seed. */
uint64_t ref64_rng_seed(uint64_t seed);
/* Uniform in [0, 1), advancing *state. */
double ref64_unif(uint64_t *state);
/* Uniform in [lo, hi), never exactly zero. */
float ref64_rnd(uint64_t *state, float lo, float hi);

/* ---- weights as a kernel reads them ---- */

/* The device bytes of weights w [rows][cols] in type wt (f32 copied, f16 rounded, block formats
 * quantized row by row), malloc'ed, their size in *bytes; w becomes the values the bytes hold. */
void *ref64_weights(gpt2_dtype wt, float *w, int rows, int cols, size_t *bytes);

/* ---- elementwise ---- */

/* gelu, form 0 the tanh approximation (GPT-2's "gelu_new"), 1 the erf form. */
double ref64_gelu(double x, int form);

/* ---- rows ---- */

/* layernorm of n rows of d (row stride ldx): y [n][d] = x_hat * g + b, with x_hat [n][d] (NULL:
 * not wanted) the normalised inputs and spread [n] (NULL: not wanted) |mean| / std of each row,
 * the factor by which the inputs' own rounding grows in x_hat. */
void ref64_layernorm(double *y, double *x_hat, double *spread, const float *x, int ldx, const float *g,
                     const float *b, int n, int d, double eps);
/* softmax of n rows of d (contiguous): y [n][d]. */
void ref64_softmax(double *y, const float *x, int n, int d);
/* The index of the largest value of x [n] that is not NaN, the lowest of equal ones; 0 when every
 * value is NaN, -1 when n is 0. */
int ref64_argmax(const float *x, int n);
/* How many values of x [n] come before x[id] in the order a top-k takes them: larger, or equal
 * at a lower index. */
int ref64_rank(const float *x, int n, int id);

/* ---- embed ---- */

/* y [n][d] = wte[ids[k]] + wpe[pos0 + k], with scale (NULL: not wanted) |wte| + |wpe|. */
void ref64_embed(double *y, double *scale, const float *wte, const float *wpe, const int32_t *ids, int n,
                 int d, int pos0);

/* ---- matmul ---- */

/* How the error scale passes through the epilogue's gelu: scale * slope + floor. */
typedef struct ref64_gelu_scale {
    double slope; /* the bound on |gelu'| the scale is multiplied by (1: the caller widens its rtol) */
    double floor; /* added to the scale after the gelu */
} ref64_gelu_scale;

/* The epilogue (GPT2_EPI_* bits) on one output: *acc += bias, then gelu (form), then += y0; *scale
 * (the sum of |terms| so far) grows alike. */
void ref64_epilogue(double *acc, double *scale, int epi, double bias, double y0, int form,
                    ref64_gelu_scale gs);

/* y = epi(x . w^T + bias) (+ y0 with GPT2_EPI_RESIDUAL) for n rows of x (stride ldx) and w [rows]
 * [cols]: ref and scale hold n rows of ldy; the columns past `rows` keep y0 with scale 0 (y0 may
 * be NULL when there are none and no residual). */
void ref64_matmul(double *ref, double *scale, const float *x, int ldx, const float *w, const float *bias,
                  const float *y0, int ldy, int n, int rows, int cols, int epi, int form,
                  ref64_gelu_scale gs);

/* The same on x in float64 (n rows of stride ldx), each element's error scale in x_scale: the
 * scale of an output is sum |w| * x_scale (+ the epilogue's terms). */
void ref64_matmul_x64(double *ref, double *scale, const double *x, const double *x_scale, int ldx,
                      const float *w, const float *bias, const float *y0, int ldy, int n, int rows, int cols,
                      int epi, int form, ref64_gelu_scale gs);

/* ---- attention ---- */

/* Causal attention of n new tokens after n_past cached ones: token t's query q + t * ldq (heads
 * of hd one after another) attends to key/value rows 0 .. n_past + t of k and v (row stride ldkv,
 * heads likewise), softmax(q.k / sqrt(hd)) . v. out and scale hold n rows of n_head * hd, scale
 * being sum p * |v|. */
void ref64_attention(double *out, double *scale, const float *q, size_t ldq, const float *k, const float *v,
                     size_t ldkv, int n, int n_past, int n_head, int hd);

#endif
