/* test_step.c - the backend step contract (core/backend.h): one step description, one eval, shared
 * validation, creation reasons.
 *
 * Every backend refuses the same malformed steps with a one-line error (rows neither one sequence
 * nor a batch, a slot outside the cache, an output without its buffer, a draw it cannot make); a
 * prompt given as one step and as single-token steps fills the cache alike; creation failures
 * come with a reason code (an unknown VKGPT2_CPU_OPS op, a CPU-type device under skip_cpu_device),
 * and the backend kind is an enum. Vulkan cases skip without a Vulkan device.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/synth.h"
#include "vkengine/vk_engine.h"

static void make_model(gpt2_model *m)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[256];
    cr_assert_eq(gpt2_synth_parse_size(&p, "2x64x4", err, sizeof err), 0, "%s", err);
    p.n_ctx = 48;
    p.seed = 99;
    cr_assert_eq(gpt2_synth(m, &p, err, sizeof err), 0, "%s", err);
}

static bool have_vulkan(void)
{
    char err[256];
    return vk_count_devices(err, sizeof err) > 0;
}

static gpt2_backend *make(const gpt2_model *m, bool vulkan)
{
    gpt2_backend_params bp = {.n_threads = 2, .n_batch = 8, .kv_type = GPT2_F32, .device = -1, .n_slots = 3};
    char err[512];
    gpt2_backend_why why = GPT2_WHY_NO_DEVICE;
    gpt2_backend *b = vulkan ? gpt2_backend_vk_create(m, &bp, &why, err, sizeof err)
                             : gpt2_backend_cpu_create(m, &bp, &why, err, sizeof err);
    cr_assert_not_null(b, "backend: %s", err);
    cr_assert_eq(why, GPT2_WHY_NONE);
    cr_assert_eq(b->kind, vulkan ? GPT2_BACKEND_VULKAN : GPT2_BACKEND_CPU);
    return b;
}

/* eval must fail with a one-line message containing `want`. */
static void refuse(gpt2_backend *b, const gpt2_step *st, const char *want)
{
    char err[512] = "";
    cr_assert_eq(b->eval(b, st, err, sizeof err), -1, "%s: a malformed step (%s) was run", b->name, want);
    cr_assert(err[0] && !strchr(err, '\n'), "%s: not one line: '%s'", b->name, err);
    cr_assert(strstr(err, want), "%s: '%s' not in '%s'", b->name, want, err);
}

static void malformed_steps(bool vulkan)
{
    gpt2_model m;
    make_model(&m);
    gpt2_backend *b = make(&m, vulkan);
    int32_t ids[4] = {1, 2, 3, 4}, picks[4];
    float *logits = malloc((size_t)4 * m.hp.n_vocab * sizeof *logits);
    /* Two rows of one slot at non-consecutive positions: neither one sequence nor a batch. */
    gpt2_row gap[2] = {{0, 0}, {0, 2}};
    refuse(b, &(gpt2_step){.n = 2, .ids = ids, .rows = gap, .out = GPT2_STEP_ARGMAX, .picks = picks},
           "both use slot 0");
    gpt2_row far[1] = {{3, 0}};
    refuse(b, &(gpt2_step){.n = 1, .ids = ids, .rows = far, .out = GPT2_STEP_ARGMAX, .picks = picks},
           "slot 3 does not exist");
    gpt2_row end[2] = {{0, 47}, {0, 48}};
    refuse(b, &(gpt2_step){.n = 2, .ids = ids, .rows = end, .out = GPT2_STEP_NONE}, "does not fit");
    gpt2_row ok[1] = {{1, 0}};
    refuse(b, &(gpt2_step){.n = 1, .ids = ids, .rows = ok, .out = GPT2_STEP_ARGMAX}, "without a place");
    refuse(b, &(gpt2_step){.n = 1, .ids = ids, .rows = ok, .out = GPT2_STEP_LAST}, "without a place");
    int32_t bad = m.hp.n_vocab;
    refuse(b, &(gpt2_step){.n = 1, .ids = &bad, .rows = ok, .out = GPT2_STEP_NONE}, "outside the vocabulary");
    /* A draw the backend cannot make itself (the CPU draws only greedily): refused, not replaced. */
    gpt2_sampler_params sp = {.temp = 0.8f, .top_k = 0, .top_p = 1, .repeat_penalty = 1, .seed = 1};
    const gpt2_sampler_params *sps[1] = {&sp};
    cr_assert(!b->can_draw(b, &sp), "top_k 0 (the whole vocabulary) is beyond every device sampler");
    refuse(
        b,
        &(gpt2_step){.n = 1, .ids = ids, .rows = ok, .out = GPT2_STEP_SAMPLE, .sample = sps, .picks = picks},
        "host sampler");
    cr_assert(b->can_draw(b, NULL) && b->can_draw(b, &(gpt2_sampler_params){.temp = 0}),
              "greedy is always drawable");

    /* A well-formed step still runs after the refusals; a prompt as one step equals it as
     * single-token steps (in another slot). */
    char err[512];
    cr_assert_eq(
        gpt2_backend_eval_seq(b, 1, ids, 4, 0, GPT2_STEP_LAST, logits, NULL, NULL, 0, err, sizeof err), 0,
        "%s", err);
    float *one = malloc((size_t)m.hp.n_vocab * sizeof *one);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(gpt2_backend_eval_seq(b, 2, ids + i, 1, i, i == 3 ? GPT2_STEP_LAST : GPT2_STEP_NONE, one,
                                           NULL, NULL, 0, err, sizeof err),
                     0, "%s", err);
    double worst = 0, scale = 0;
    for (int v = 0; v < m.hp.n_vocab; v++) {
        double d = fabs((double)one[v] - logits[v]);
        if (d > worst) worst = d;
        if (fabs((double)logits[v]) > scale) scale = fabs((double)logits[v]);
    }
    /* Relative to the row's largest logit (the kernels for 4 rows and 1 row sum differently). */
    cr_expect_lt(worst / scale, 1e-5, "%s: one step vs single-token steps: %.3g", b->name, worst / scale);
    free(one);
    free(logits);
    b->destroy(b);
    gpt2_model_free(&m);
}

Test(step, cpu_refuses_malformed_steps) { malformed_steps(false); }

Test(step, vulkan_refuses_malformed_steps, .timeout = 60)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    malformed_steps(true);
}

Test(step, creation_reasons, .timeout = 60)
{
    gpt2_model m;
    make_model(&m);
    char err[512];
    gpt2_backend_why why = GPT2_WHY_NONE;
    gpt2_backend_params bp = {.n_batch = 8, .device = -1, .cpu_ops = "layernorm,frobnicate"};
    cr_assert_null(gpt2_backend_vk_create(&m, &bp, &why, err, sizeof err));
    cr_assert_eq(why, GPT2_WHY_BAD_PARAMS, "an unknown op is the caller's error (%d: %s)", why, err);
    cr_assert(strstr(err, "frobnicate"), "%s", err);
    if (have_vulkan()) {
        bp.cpu_ops = NULL;
        bp.skip_cpu_device = true;
        gpt2_backend *b = gpt2_backend_vk_create(&m, &bp, &why, err, sizeof err);
        if (b) { /* a real GPU: it is used */
            cr_assert_eq(why, GPT2_WHY_NONE);
            b->destroy(b);
        } else {
            cr_assert_eq(why, GPT2_WHY_CPU_DEVICE, "lavapipe under skip_cpu_device (%d: %s)", why, err);
        }
    }
    gpt2_model_free(&m);
}
