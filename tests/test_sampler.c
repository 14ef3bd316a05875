/* test_sampler.c - the host sampler (core/sampler.c) against a slow reference on fixed logits.
 *
 * The reference does each step the plain way: the repetition penalty by scanning the window for
 * every id, the candidates by a full selection sort on (logit desc, id asc), float64 softmax over
 * them, the top-p prefix, and the draw from gpt2_rng_uniform. Its pick must be the sampler's for
 * every step and every setting (temperature, top-k, top-p, penalty and window, greedy), and over many
 * draws the sampler's frequencies must follow the reference's probabilities. Logits are fresh
 * random values (never zeros), with deliberate ties.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sampler.h"
#include "test_rng.h"

/* ---- the reference ---- */

/* The penalty as sampler.h says: over the last `last` tokens of hist (last < 0 or past the start:
 * all), each distinct id once, positive logits divided by pen, negative ones multiplied. */
static void ref_penalty(float *x, int n, const int32_t *hist, int nh, float pen, int last)
{
    if (pen == 1.0f || last == 0) return;
    int from = last < 0 || last > nh ? 0 : nh - last;
    for (int id = 0; id < n; id++) {
        int in_window = 0;
        for (int i = from; i < nh; i++) in_window |= hist[i] == id;
        if (in_window) x[id] = x[id] > 0 ? x[id] / pen : x[id] * pen;
    }
}

/* The probability of every id (0 for those not kept) and the id drawn at `step`. */
static int32_t ref_pick(const float *logits, int n, const int32_t *hist, int nh, const gpt2_sampler_params *p,
                        uint64_t step, double *prob_out)
{
    float *x = malloc((size_t)n * sizeof *x);
    int32_t *order = malloc((size_t)n * sizeof *order);
    double *pr = malloc((size_t)n * sizeof *pr);
    cr_assert(x && order && pr);
    memcpy(x, logits, (size_t)n * sizeof *x);
    ref_penalty(x, n, hist, nh, p->repeat_penalty, p->repeat_last_n);
    for (int i = 0; i < n; i++) prob_out[i] = 0;
    int32_t pick;
    if (p->temp <= 0) {
        pick = 0;
        for (int i = 1; i < n; i++)
            if (x[i] > x[pick]) pick = i;
        prob_out[pick] = 1;
        goto out;
    }
    /* selection sort: the best remaining (largest logit, then lowest id) goes next */
    bool *used = calloc((size_t)n, sizeof *used);
    cr_assert(used);
    for (int r = 0; r < n; r++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!used[i] && (best < 0 || x[i] > x[best])) best = i;
        used[best] = true;
        order[r] = best;
    }
    free(used);
    int k = p->top_k <= 0 || p->top_k > n ? n : p->top_k;
    double inv_t = 1.0 / p->temp, maxv = (double)x[order[0]] * inv_t, sum = 0;
    for (int r = 0; r < k; r++) sum += pr[r] = exp((double)x[order[r]] * inv_t - maxv);
    int keep = k;
    if (p->top_p < 1) {
        double acc = 0;
        for (int r = 0; r < k; r++) {
            acc += pr[r] / sum;
            if (acc >= p->top_p) {
                keep = r + 1;
                break;
            }
        }
    }
    double mass = 0;
    for (int r = 0; r < keep; r++) mass += pr[r];
    for (int r = 0; r < keep; r++) prob_out[order[r]] = pr[r] / mass;
    double u = gpt2_rng_uniform(p->seed, step) * mass, acc = 0;
    pick = order[keep - 1];
    for (int r = 0; r < keep; r++) {
        acc += pr[r];
        if (u < acc) {
            pick = order[r];
            break;
        }
    }
out:
    free(x);
    free(order);
    free(pr);
    return pick;
}

/* ---- fixed inputs ---- */

#define N 500

/* Logits in [-6, 6) with a few exact ties and no zeros, and a history with repeats. */
static void make_inputs(float *logits, int32_t *hist, int nh, uint64_t seed)
{
    rng_seed(seed);
    for (int i = 0; i < N; i++) {
        float v = rnd(-6.0f, 6.0f);
        logits[i] = v == 0.0f ? 0.25f : v;
    }
    for (int i = 0; i < N; i += 37) logits[i + 1 < N ? i + 1 : i] = logits[i]; /* ties */
    for (int i = 0; i < nh; i++) hist[i] = (int32_t)(rng_unif() * N);
    hist[nh - 1] = hist[0]; /* an id that occurs twice is penalised once */
}

static const gpt2_sampler_params settings[] = {
    {.temp = 0.9f, .top_k = 40, .top_p = 0.9f, .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 42},
    {.temp = 1.0f, .top_k = 0, .top_p = 1.0f, .repeat_penalty = 1.0f, .repeat_last_n = 0, .seed = 7},
    {.temp = 0.5f, .top_k = 1, .top_p = 1.0f, .repeat_penalty = 1.0f, .repeat_last_n = 0, .seed = 1},
    {.temp = 1.7f, .top_k = 200, .top_p = 0.5f, .repeat_penalty = 1.3f, .repeat_last_n = 16, .seed = 99},
    {.temp = 0.8f, .top_k = 0, .top_p = 0.3f, .repeat_penalty = 1.1f, .repeat_last_n = -1, .seed = 3},
    {.temp = 1.2f, .top_k = 5, .top_p = 0.0f, .repeat_penalty = 2.0f, .repeat_last_n = 1000, .seed = 11},
    {.temp = 0.0f, .top_k = 40, .top_p = 0.9f, .repeat_penalty = 1.5f, .repeat_last_n = 32, .seed = 5},
    {.temp = -1.0f, .top_k = 0, .top_p = 1.0f, .repeat_penalty = 1.0f, .repeat_last_n = 0, .seed = 5},
};
#define N_SETTINGS ((int)(sizeof settings / sizeof settings[0]))

Test(sampler, every_pick_is_the_reference_pick)
{
    float logits[N], work[N];
    int32_t hist[48];
    double prob[N];
    for (int c = 0; c < N_SETTINGS; c++) {
        make_inputs(logits, hist, 48, 1000 + (uint64_t)c);
        gpt2_sampler *s = gpt2_sampler_create(&settings[c], N);
        cr_assert(s);
        for (uint64_t step = 0; step < 200; step++) {
            memcpy(work, logits, sizeof work);
            int32_t got = gpt2_sampler_pick(s, work, hist, 48, step);
            int32_t want = ref_pick(logits, N, hist, 48, &settings[c], step, prob);
            cr_assert_eq(got, want, "setting %d step %llu: sampler %d, reference %d", c,
                         (unsigned long long)step, got, want);
            cr_assert(prob[got] > 0, "setting %d: id %d drawn outside the kept candidates", c, got);
        }
        gpt2_sampler_free(s);
    }
}

Test(sampler, the_penalty_changes_the_logits_as_the_reference)
{
    float logits[N], got[N], want[N];
    int32_t hist[48];
    for (int c = 0; c < N_SETTINGS; c++) {
        make_inputs(logits, hist, 48, 2000 + (uint64_t)c);
        memcpy(got, logits, sizeof got);
        memcpy(want, logits, sizeof want);
        gpt2_sampler *s = gpt2_sampler_create(&settings[c], N);
        cr_assert(s);
        gpt2_sampler_pick(s, got, hist, 48, 0); /* the penalty is applied in place */
        ref_penalty(want, N, hist, 48, settings[c].repeat_penalty, settings[c].repeat_last_n);
        for (int i = 0; i < N; i++)
            cr_assert(got[i] == want[i], "setting %d id %d: %g, reference %g", c, i, got[i], want[i]);
        gpt2_sampler_free(s);
    }
}

Test(sampler, draws_follow_the_reference_distribution)
{
    /* few candidates with sizeable probabilities, so frequencies over many draws are sharp */
    enum { DRAWS = 40000 };
    float logits[N];
    int32_t hist[48];
    double prob[N];
    gpt2_sampler_params p = {
        .temp = 1.5f, .top_k = 12, .top_p = 0.8f, .repeat_penalty = 1.2f, .repeat_last_n = 8, .seed = 2024};
    make_inputs(logits, hist, 48, 77);
    int *count = calloc(N, sizeof *count);
    cr_assert(count);
    gpt2_sampler *s = gpt2_sampler_create(&p, N);
    cr_assert(s);
    for (uint64_t step = 0; step < DRAWS; step++) {
        float work[N];
        memcpy(work, logits, sizeof work);
        count[gpt2_sampler_pick(s, work, hist, 48, step)]++;
    }
    ref_pick(logits, N, hist, 48, &p, 0, prob);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        double f = (double)count[i] / DRAWS, sd = sqrt(prob[i] * (1 - prob[i]) / DRAWS);
        if (prob[i] == 0)
            cr_assert_eq(count[i], 0, "id %d drawn %d times, probability 0", i, count[i]);
        else
            kept++;
        cr_assert(fabs(f - prob[i]) <= 5 * sd + 1e-9, "id %d: frequency %.4f, probability %.4f", i, f,
                  prob[i]);
    }
    cr_assert(kept >= 2 && kept <= 12, "%d candidates kept", kept);
    gpt2_sampler_free(s);
    free(count);
}

Test(sampler, greedy_takes_the_lowest_id_of_a_tie)
{
    float logits[N];
    int32_t hist[1] = {0};
    make_inputs(logits, hist, 1, 5);
    for (int i = 0; i < N; i++) logits[i] = logits[i] > 5.0f ? 4.0f : logits[i];
    logits[300] = logits[123] = 5.5f;
    gpt2_sampler_params p = {.temp = 0.0f, .top_k = 40, .top_p = 0.9f, .repeat_penalty = 1.0f, .seed = 1};
    gpt2_sampler *s = gpt2_sampler_create(&p, N);
    cr_assert(s);
    cr_assert_eq(gpt2_sampler_pick(s, logits, NULL, 0, 0), 123);
    gpt2_sampler_free(s);
}

Test(sampler, which_settings_need_the_logits)
{
    gpt2_sampler_params p = {.temp = 0.0f, .repeat_penalty = 1.0f, .repeat_last_n = 64};
    cr_assert(!gpt2_sampler_needs_logits(&p), "plain greedy runs on the device");
    p.repeat_penalty = 1.1f;
    cr_assert(gpt2_sampler_needs_logits(&p), "a penalty needs the row");
    p.repeat_last_n = 0;
    cr_assert(!gpt2_sampler_needs_logits(&p), "a penalty over no tokens is off");
    p.temp = 0.7f;
    cr_assert(gpt2_sampler_needs_logits(&p), "a draw needs the row");
}
