/* sampler.c - see sampler.h. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

struct gpt2_sampler {
    gpt2_sampler_params p; /* settings */
    int n_vocab;           /* row length */
    int32_t *idx;          /* candidate ids */
    float *val;            /* candidate logits */
    double *prob;          /* candidate probabilities */
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double gpt2_rng_uniform(uint64_t seed, uint64_t step)
{
    uint64_t z = mix64(seed + 0x9e3779b97f4a7c15ull * (step + 1));
    z = mix64(z ^ 0xd1b54a32d192ed03ull);
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

gpt2_sampler *gpt2_sampler_create(const gpt2_sampler_params *p, int n_vocab)
{
    gpt2_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->idx = malloc((size_t)n_vocab * sizeof *s->idx);
    s->val = malloc((size_t)n_vocab * sizeof *s->val);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    if (!s->idx || !s->val || !s->prob) {
        gpt2_sampler_free(s);
        return NULL;
    }
    return s;
}

void gpt2_sampler_free(gpt2_sampler *s)
{
    if (!s) return;
    free(s->idx);
    free(s->val);
    free(s->prob);
    free(s);
}

int gpt2_sampler_needs_logits(const gpt2_sampler_params *p)
{
    return p->temp > 0 || (p->repeat_penalty != 1.0f && p->repeat_last_n != 0);
}

/* Larger value first; lower id first on ties, so results never depend on the sort's order. */
static int before(float va, int32_t ia, float vb, int32_t ib) { return va > vb || (va == vb && ia < ib); }

/* Min-heap on (val, idx) by `before` reversed: the root is the weakest kept candidate. */
static void sift_down(float *v, int32_t *id, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(v[m], id[m], v[l], id[l])) m = l;
        if (r < n && before(v[m], id[m], v[r], id[r])) m = r;
        if (m == i) return;
        float tv = v[i];
        v[i] = v[m];
        v[m] = tv;
        int32_t ti = id[i];
        id[i] = id[m];
        id[m] = ti;
        i = m;
    }
}

static int cmp_cand(const void *a, const void *b, void *ctx)
{
    const float *val = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (before(val[i], i, val[j], j)) return -1;
    if (before(val[j], j, val[i], i)) return 1;
    return 0;
}

/* Keeps the k best of logits in s->val/s->idx, sorted best first. Returns k. */
static int top_k(gpt2_sampler *s, const float *logits, int k)
{
    int n = s->n_vocab;
    if (k <= 0 || k > n) k = n;
    if (k == n) {
        for (int i = 0; i < n; i++) s->idx[i] = i;
        qsort_r(s->idx, (size_t)n, sizeof *s->idx, cmp_cand, (void *)logits);
        for (int i = 0; i < n; i++) s->val[i] = logits[s->idx[i]];
        return n;
    }
    for (int i = 0; i < k; i++) {
        s->val[i] = logits[i];
        s->idx[i] = i;
    }
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(s->val, s->idx, k, i);
    for (int i = k; i < n; i++) {
        if (before(logits[i], i, s->val[0], s->idx[0])) {
            s->val[0] = logits[i];
            s->idx[0] = i;
            sift_down(s->val, s->idx, k, 0);
        }
    }
    /* Heap sort in place: repeatedly move the weakest to the end. */
    for (int end = k - 1; end > 0; end--) {
        float tv = s->val[0];
        s->val[0] = s->val[end];
        s->val[end] = tv;
        int32_t ti = s->idx[0];
        s->idx[0] = s->idx[end];
        s->idx[end] = ti;
        sift_down(s->val, s->idx, end, 0);
    }
    return k;
}

int32_t gpt2_sampler_pick(gpt2_sampler *s, float *logits, const int32_t *history, int n_history,
                          uint64_t step)
{
    const gpt2_sampler_params *p = &s->p;
    int n = s->n_vocab;
    if (p->repeat_penalty != 1.0f && p->repeat_last_n != 0 && n_history > 0) {
        int from = p->repeat_last_n < 0 || p->repeat_last_n > n_history ? 0 : n_history - p->repeat_last_n;
        /* Each distinct id is penalised once, however often it occurred. */
        for (int i = from; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= n) continue;
            int seen = 0;
            for (int j = from; j < i && !seen; j++) seen = history[j] == t;
            if (seen) continue;
            logits[t] = logits[t] > 0 ? logits[t] / p->repeat_penalty : logits[t] * p->repeat_penalty;
        }
    }
    if (p->temp <= 0) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    int k = top_k(s, logits, p->top_k);
    double inv_t = 1.0 / p->temp, maxv = (double)s->val[0] * inv_t, sum = 0;
    double *prob = s->prob;
    for (int i = 0; i < k; i++) {
        prob[i] = exp((double)s->val[i] * inv_t - maxv);
        sum += prob[i];
    }
    int keep = k;
    if (p->top_p < 1) { /* top_p <= 0 keeps only the most likely candidate */
        double acc = 0;
        for (int i = 0; i < k; i++) {
            acc += prob[i] / sum;
            if (acc >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double mass = 0;
    for (int i = 0; i < keep; i++) mass += prob[i];
    double u = gpt2_rng_uniform(p->seed, step) * mass, acc = 0;
    int32_t pick = s->idx[keep - 1];
    for (int i = 0; i < keep; i++) {
        acc += prob[i];
        if (u < acc) {
            pick = s->idx[i];
            break;
        }
    }
    return pick;
}
