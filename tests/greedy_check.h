/* greedy_check.h - greedy decoding compared across backends without flaking on near-ties.
 *
 * A GPU rounds exp, rsqrt and sums differently from the CPU, so where the CPU's best two logits
 * are nearly equal the GPU may pick the other one; on random weights such near-ties happen. A
 * different pick is therefore accepted only where the CPU's logit of its own pick exceeds its
 * logit of the other pick by less than GREEDY_TIE_REL * (|best logit| + rms of the row): twice the
 * 1e-3 relative logits tolerance the Vulkan-vs-CPU tests apply (test_forward's max_rel_err), i.e.
 * a gap that two logits each within that tolerance could close. Any other difference fails.
 * Header-only, for test_forward.c and test_batch.c (Criterion).
 */
#ifndef VKG_TEST_GREEDY_CHECK_H
#define VKG_TEST_GREEDY_CHECK_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/backend.h"

#define GREEDY_TIE_REL 2e-3

/* The largest gap (CPU logits of a row of V) within which another pick counts as a near-tie. */
static inline double greedy_tie_eps(const float *logits, int V)
{
    double rms = 0, best = -INFINITY;
    for (int i = 0; i < V; i++) {
        rms += (double)logits[i] * logits[i];
        if (logits[i] > best) best = logits[i];
    }
    return GREEDY_TIE_REL * (fabs(best) + sqrt(rms / V));
}

/* Whether `other` instead of the CPU's `pick` is a near-tie of the CPU's row; the gap and the
 * limit go to *gap and *eps. */
static inline bool greedy_near_tie(const float *cpu_logits, int V, int32_t pick, int32_t other, double *gap,
                                   double *eps)
{
    *eps = greedy_tie_eps(cpu_logits, V);
    *gap = INFINITY; /* an id outside the row is never a near-tie (and is not read) */
    if (pick < 0 || pick >= V || other < 0 || other >= V) return false;
    *gap = (double)cpu_logits[pick] - (double)cpu_logits[other];
    return *gap >= 0 && *gap <= *eps;
}

/* Greedy decoding of n_gen tokens after seq[0..n_prompt) on the CPU backend `cpu` and another
 * backend `other`, step by step on the same context (the CPU's tokens, written to
 * seq[n_prompt..n_prompt + n_gen)): other's pick (its device argmax) must equal the CPU's at every
 * step except near-ties (greedy_near_tie). The prompt is one step (n_prompt <= both n_batch).
 * Returns the number of near-tie flips, each also logged. */
static inline int greedy_compare(gpt2_backend *cpu, gpt2_backend *other, int32_t *seq, int n_prompt,
                                 int n_gen)
{
    int V = cpu->model->hp.n_vocab, flips = 0;
    float *logits = malloc((size_t)V * sizeof *logits);
    cr_assert(logits);
    char err[256];
    for (int i = n_prompt; i < n_prompt + n_gen; i++) {
        /* the step that produces token i: the prompt first, then the token before i */
        const int32_t *in = i == n_prompt ? seq : &seq[i - 1];
        int n = i == n_prompt ? n_prompt : 1, past = i == n_prompt ? 0 : i - 1;
        int32_t pc, po;
        cr_assert_eq(
            gpt2_backend_eval_seq(cpu, 0, in, n, past, GPT2_STEP_LAST, logits, &pc, NULL, 0, err, sizeof err),
            0, "%s", err);
        cr_assert_eq(gpt2_backend_eval_seq(other, 0, in, n, past, GPT2_STEP_ARGMAX, NULL, &po, NULL, 0, err,
                                           sizeof err),
                     0, "%s", err);
        if (po != pc) {
            double gap, eps;
            cr_assert(greedy_near_tie(logits, V, pc, po, &gap, &eps),
                      "token %d: cpu %d, %s %d; the CPU's gap %.3g is not a near-tie (<= %.3g)", i, pc,
                      other->name, po, gap, eps);
            cr_log_info("token %d: cpu %d, %s %d: a near-tie (gap %.3g <= %.3g)\n", i, pc, other->name, po,
                        gap, eps);
            flips++;
        }
        seq[i] = pc;
    }
    free(logits);
    return flips;
}

#endif
