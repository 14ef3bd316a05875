/* sampler.h - picking the next token from a row of logits.
 *
 * Order of operations (as in ggml's gpt-2 example, plus a repetition penalty):
 *   1. repetition penalty over the last repeat_last_n tokens (positive logits divided by it,
 *      negative ones multiplied);
 *   2. temp <= 0: greedy (argmax, lowest id on ties);
 *   3. logits / temp, keep the top_k largest (top_k <= 0: all), softmax, keep the smallest prefix
 *      whose probability reaches top_p, renormalise, draw.
 * The draw uses a counter-based generator: the uniform number of step i is a hash of (seed, i), so a
 * run is reproducible from its seed and any step can be redone alone (the GPU sampler uses the same
 * function).
 */
#ifndef VKG_SAMPLER_H
#define VKG_SAMPLER_H

#include <stdint.h>

typedef struct gpt2_sampler_params {
    float temp;           /* <= 0: greedy */
    int top_k;            /* keep this many candidates (<= 0: all) */
    float top_p;          /* nucleus mass in (0, 1] */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;        /* stream of the draws */
} gpt2_sampler_params;

typedef struct gpt2_sampler gpt2_sampler;

gpt2_sampler *gpt2_sampler_create(const gpt2_sampler_params *p, int n_vocab);
void gpt2_sampler_free(gpt2_sampler *s);
/* Chooses a token from logits (modified in place). history: tokens so far (prompt and generated),
 * step: index of the draw (0 for the first generated token). */
int32_t gpt2_sampler_pick(gpt2_sampler *s, float *logits, const int32_t *history, int n_history,
                          uint64_t step);
/* True when the choice needs the whole logits row on the host (anything but plain greedy). */
int gpt2_sampler_needs_logits(const gpt2_sampler_params *p);
/* The uniform number in [0, 1) of draw `step` under `seed`. */
double gpt2_rng_uniform(uint64_t seed, uint64_t step);

#endif
