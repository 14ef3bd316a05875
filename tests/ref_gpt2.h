/* ref_gpt2.h - a slow, obviously right GPT-2 forward pass in float64, for the end-to-end tests.
 *
 * The whole sequence at once: no KV cache, no batching, none of the engine's kernels. Weights are
 * read element by element from the model's tensors (f32, f16 or bf16).
 */
#ifndef VKG_TEST_REF_GPT2_H
#define VKG_TEST_REF_GPT2_H

#include <math.h>
#include <stdlib.h>

#include "core/model.h"

static inline double w_at(const gpt2_tensor *t, size_t row, size_t col)
{
    return gpt2_load((const char *)t->data + row * t->ne[0] * gpt2_dtype_size(t->type), t->type, col);
}

static inline void ref_layernorm(double *y, const double *x, const gpt2_tensor *g, const gpt2_tensor *b,
                                 int d, double eps)
{
    double mean = 0, var = 0;
    for (int i = 0; i < d; i++) mean += x[i];
    mean /= d;
    for (int i = 0; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= d;
    for (int i = 0; i < d; i++) y[i] = (x[i] - mean) / sqrt(var + eps) * w_at(g, 0, i) + w_at(b, 0, i);
}

/* y[o] = sum_i W[o][i] x[i] + b[o] */
static inline void ref_linear(double *y, const double *x, const gpt2_tensor *W, const gpt2_tensor *b)
{
    for (int64_t o = 0; o < W->ne[1]; o++) {
        double s = b ? w_at(b, 0, o) : 0;
        for (int64_t i = 0; i < W->ne[0]; i++) s += w_at(W, o, i) * x[i];
        y[o] = s;
    }
}

static inline double ref_gelu(double x, gpt2_gelu form)
{
    if (form == GPT2_GELU_ERF) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* logits[T][V] for ids[0..T). */
static inline double *ref_forward(const gpt2_model *m, const int32_t *ids, int T)
{
    const gpt2_hparams *hp = &m->hp;
    int E = hp->n_embd, H = hp->n_head, hd = E / H, V = hp->n_vocab;
    double *x = calloc((size_t)T * E, sizeof *x), *xn = malloc((size_t)T * E * sizeof *xn);
    double *qkv = malloc((size_t)T * 3 * E * sizeof *qkv), *att = malloc((size_t)T * E * sizeof *att);
    double *h = malloc((size_t)4 * E * sizeof *h), *tmp = malloc((size_t)E * sizeof *tmp);
    double *sc = malloc((size_t)T * sizeof *sc), *logits = malloc((size_t)T * V * sizeof *logits);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < E; i++) x[t * E + i] = w_at(&m->w.wte, ids[t], i) + w_at(&m->w.wpe, t, i);
    for (int l = 0; l < hp->n_layer; l++) {
        const gpt2_layer *L = &m->w.layers[l];
        for (int t = 0; t < T; t++) {
            ref_layernorm(xn + t * E, x + t * E, &L->ln1_g, &L->ln1_b, E, hp->ln_eps);
            ref_linear(qkv + (size_t)t * 3 * E, xn + t * E, &L->attn_w, &L->attn_b);
        }
        for (int t = 0; t < T; t++)
            for (int hh = 0; hh < H; hh++) {
                const double *q = qkv + (size_t)t * 3 * E + hh * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *k = qkv + (size_t)j * 3 * E + E + hh * hd;
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += q[i] * k[i];
                    sc[j] = s / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++)
                        o += sc[j] / sum * qkv[(size_t)j * 3 * E + 2 * E + hh * hd + i];
                    att[t * E + hh * hd + i] = o;
                }
            }
        for (int t = 0; t < T; t++) {
            ref_linear(tmp, att + t * E, &L->proj_w, &L->proj_b);
            for (int i = 0; i < E; i++) x[t * E + i] += tmp[i];
            ref_layernorm(xn + t * E, x + t * E, &L->ln2_g, &L->ln2_b, E, hp->ln_eps);
            ref_linear(h, xn + t * E, &L->fc_w, &L->fc_b);
            for (int i = 0; i < 4 * E; i++) h[i] = ref_gelu(h[i], hp->gelu);
            ref_linear(tmp, h, &L->fc2_w, &L->fc2_b);
            for (int i = 0; i < E; i++) x[t * E + i] += tmp[i];
        }
    }
    for (int t = 0; t < T; t++) {
        ref_layernorm(xn + t * E, x + t * E, &m->w.ln_f_g, &m->w.ln_f_b, E, hp->ln_eps);
        ref_linear(logits + (size_t)t * V, xn + t * E, &m->w.lm_head, NULL);
    }
    free(x);
    free(xn);
    free(qkv);
    free(att);
    free(h);
    free(tmp);
    free(sc);
    return logits;
}

/* Logits [V] of the last of ids[0..T) (freed by the caller). */
static inline double *ref_last_logits(const gpt2_model *m, const int32_t *ids, int T)
{
    double *all = ref_forward(m, ids, T);
    size_t V = (size_t)m->hp.n_vocab;
    double *last = malloc(V * sizeof *last);
    for (size_t i = 0; i < V; i++) last[i] = all[(size_t)(T - 1) * V + i];
    free(all);
    return last;
}

/* n pseudo-random token ids below n_vocab from seed (a fixed LCG: the same ids every run). */
static inline void make_ids(int32_t *ids, int n, int n_vocab, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 8) % (unsigned)n_vocab);
    }
}

/* Worst |a-b| / (|b| + floor) over the logits; floor = the rms of the reference. */
static inline double max_rel_err(const float *a, const double *ref, size_t n)
{
    double rms = 0, worst = 0;
    for (size_t i = 0; i < n; i++) rms += ref[i] * ref[i];
    rms = sqrt(rms / (double)n);
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - ref[i]) / (fabs(ref[i]) + rms);
        if (e > worst) worst = e;
    }
    return worst;
}

#endif
