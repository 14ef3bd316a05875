/* ref64.c - the float64 references of ref64.h: plain loops in double, one output at a time, with
 * the error scale of each output alongside. */
#include "ref64.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/epilogue.h"
#include "core/tensor.h"

uint64_t ref64_rng_seed(uint64_t seed) { return seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull; }

double ref64_unif(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (double)(*state >> 11) * (1.0 / 9007199254740992.0);
}

float ref64_rnd(uint64_t *state, float lo, float hi)
{
    float v;
    do v = lo + (hi - lo) * (float)ref64_unif(state);
    while (v == 0.0f);
    return v;
}

void *ref64_weights(gpt2_dtype wt, float *w, int rows, int cols, size_t *bytes)
{
    size_t rb = gpt2_row_bytes(wt, (size_t)cols);
    unsigned char *out = malloc(rb * (size_t)rows + 16);
    if (!out) return NULL;
    for (int r = 0; r < rows; r++) {
        float *src = w + (size_t)r * cols;
        unsigned char *dst = out + (size_t)r * rb;
        if (wt == GPT2_F32) {
            memcpy(dst, src, (size_t)cols * sizeof *src);
        } else if (wt == GPT2_F16) {
            for (int c = 0; c < cols; c++) {
                uint16_t h = gpt2_f32_to_f16(src[c]);
                memcpy(dst + 2 * (size_t)c, &h, 2);
                src[c] = gpt2_f16_to_f32(h);
            }
        } else {
            gpt2_quantize_row(wt, src, dst, (size_t)cols);
            gpt2_dequantize_row(wt, dst, src, (size_t)cols);
        }
    }
    *bytes = rb * (size_t)rows;
    return out;
}

double ref64_gelu(double x, int form)
{
    if (form == 1) return 0.5 * x * erfc(-x / sqrt(2.0));
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

void ref64_layernorm(double *y, double *x_hat, double *spread, const float *x, int ldx, const float *g,
                     const float *b, int n, int d, double eps)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * ldx;
        double mean = 0, var = 0;
        for (int i = 0; i < d; i++) mean += xr[i];
        mean /= d;
        for (int i = 0; i < d; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= d;
        double inv = 1.0 / sqrt(var + eps);
        if (spread) spread[r] = fabs(mean) * inv;
        for (int i = 0; i < d; i++) {
            double z = (xr[i] - mean) * inv;
            if (x_hat) x_hat[(size_t)r * d + i] = z;
            y[(size_t)r * d + i] = z * g[i] + b[i];
        }
    }
}

void ref64_softmax(double *y, const float *x, int n, int d)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d;
        double m = -INFINITY, l = 0;
        for (int i = 0; i < d; i++) m = fmax(m, xr[i]);
        for (int i = 0; i < d; i++) l += exp(xr[i] - m);
        for (int i = 0; i < d; i++) y[(size_t)r * d + i] = exp(xr[i] - m) / l;
    }
}

int ref64_argmax(const float *x, int n)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i]) && (best < 0 || x[i] > x[best])) best = i;
    return best < 0 && n > 0 ? 0 : best;
}

int ref64_rank(const float *x, int n, int id)
{
    int r = 0;
    for (int i = 0; i < n; i++) r += x[i] > x[id] || (x[i] == x[id] && i < id);
    return r;
}

void ref64_embed(double *y, double *scale, const float *wte, const float *wpe, const int32_t *ids, int n,
                 int d, int pos0)
{
    for (int k = 0; k < n; k++)
        for (int i = 0; i < d; i++) {
            double a = wte[(size_t)ids[k] * d + i], b = wpe[(size_t)(pos0 + k) * d + i];
            y[(size_t)k * d + i] = a + b;
            if (scale) scale[(size_t)k * d + i] = fabs(a) + fabs(b);
        }
}

void ref64_epilogue(double *acc, double *scale, int epi, double bias, double y0, int form,
                    ref64_gelu_scale gs)
{
    if (epi & GPT2_EPI_BIAS) {
        *acc += bias;
        *scale += fabs(bias);
    }
    if (epi & GPT2_EPI_GELU) {
        *acc = ref64_gelu(*acc, form);
        *scale = *scale * gs.slope + gs.floor;
    }
    if (epi & GPT2_EPI_RESIDUAL) {
        *acc += y0;
        *scale += fabs(y0);
    }
}

/* ref64_matmul and ref64_matmul_x64 in one: x in f32 (xf) or in float64 (xd, with the scale of
 * each element in xs). */
static void matmul_any(double *ref, double *scale, const float *xf, const double *xd, const double *xs,
                       int ldx, const float *w, const float *bias, const float *y0, int ldy, int n, int rows,
                       int cols, int epi, int form, ref64_gelu_scale gs)
{
    for (int t = 0; t < n; t++)
        for (int o = 0; o < ldy; o++) {
            size_t yi = (size_t)t * ldy + o;
            if (o >= rows) {
                ref[yi] = y0[yi];
                scale[yi] = 0;
                continue;
            }
            const size_t xr = (size_t)t * ldx;
            const float *wr = w + (size_t)o * cols;
            double acc = 0, s = 0;
            for (int i = 0; i < cols; i++) {
                double p = (xf ? (double)xf[xr + i] : xd[xr + i]) * wr[i];
                acc += p;
                s += xs ? fabs((double)wr[i]) * xs[xr + i] : fabs(p);
            }
            ref64_epilogue(&acc, &s, epi, bias ? bias[o] : 0, y0 ? y0[yi] : 0, form, gs);
            ref[yi] = acc;
            scale[yi] = s;
        }
}

void ref64_matmul(double *ref, double *scale, const float *x, int ldx, const float *w, const float *bias,
                  const float *y0, int ldy, int n, int rows, int cols, int epi, int form, ref64_gelu_scale gs)
{
    matmul_any(ref, scale, x, NULL, NULL, ldx, w, bias, y0, ldy, n, rows, cols, epi, form, gs);
}

void ref64_matmul_x64(double *ref, double *scale, const double *x, const double *x_scale, int ldx,
                      const float *w, const float *bias, const float *y0, int ldy, int n, int rows, int cols,
                      int epi, int form, ref64_gelu_scale gs)
{
    matmul_any(ref, scale, NULL, x, x_scale, ldx, w, bias, y0, ldy, n, rows, cols, epi, form, gs);
}

void ref64_attention(double *out, double *scale, const float *q, size_t ldq, const float *k, const float *v,
                     size_t ldkv, int n, int n_past, int n_head, int hd)
{
    const size_t E = (size_t)n_head * hd;
    const double rs = 1.0 / sqrt((double)hd);
    for (int t = 0; t < n; t++)
        for (int h = 0; h < n_head; h++) {
            const float *qh = q + (size_t)t * ldq + (size_t)h * hd;
            double *o = out + (size_t)t * E + (size_t)h * hd, *sc = scale + (size_t)t * E + (size_t)h * hd;
            const int len = n_past + t + 1;
            /* the scores' maximum first, then the weights exp(s - max) */
            double m = -INFINITY, l = 0;
            for (int j = 0; j < len; j++) {
                double s = 0;
                for (int i = 0; i < hd; i++) s += (double)qh[i] * k[(size_t)j * ldkv + (size_t)h * hd + i];
                m = fmax(m, s * rs);
            }
            for (int i = 0; i < hd; i++) o[i] = sc[i] = 0;
            for (int j = 0; j < len; j++) {
                const float *kj = k + (size_t)j * ldkv + (size_t)h * hd,
                            *vj = v + (size_t)j * ldkv + (size_t)h * hd;
                double s = 0;
                for (int i = 0; i < hd; i++) s += (double)qh[i] * kj[i];
                double p = exp(s * rs - m);
                l += p;
                for (int i = 0; i < hd; i++) {
                    o[i] += p * vj[i];
                    sc[i] += p * fabs(vj[i]);
                }
            }
            for (int i = 0; i < hd; i++) {
                o[i] /= l;
                sc[i] /= l;
            }
        }
}
