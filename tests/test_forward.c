/* test_forward.c - the whole model, end to end, against a slow and obviously right reference.
 *
 * The reference below is a plain float64 GPT-2 forward pass over the full sequence (no KV cache,
 * no batching, no shared kernels). Every backend's logits must match it at several prompt lengths
 * and batch sizes, and the backends must agree with each other token for token under greedy
 * decoding, except at near-ties of the CPU's logits (greedy_check.h states the epsilon). Steps
 * that return every row's logits keep x in f32 on every device (no coopmat kernel), so the
 * logits tolerances below hold on GPUs with cooperative matrices too.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/synth.h"
#include "greedy_check.h"
#include "ref_gpt2.h"

/* ---- helpers ---- */

static void make_model(gpt2_model *m, gpt2_dtype wtype, gpt2_gelu gelu)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[256];
    cr_assert_eq(gpt2_synth_parse_size(&p, "3x64x4", err, sizeof err), 0, "%s", err);
    p.n_ctx = 160;
    p.wtype = wtype;
    p.gelu = gelu;
    p.seed = 1234;
    cr_assert_eq(gpt2_synth(m, &p, err, sizeof err), 0, "%s", err);
}

/* Runs ids through backend b in steps of nb tokens; returns all logits [T][V]. */
static float *backend_logits(gpt2_backend *b, const int32_t *ids, int T, int nb)
{
    int V = b->model->hp.n_vocab;
    float *out = malloc((size_t)T * V * sizeof *out);
    char err[256];
    for (int i = 0; i < T; i += nb) {
        int n = T - i < nb ? T - i : nb;
        cr_assert_eq(gpt2_backend_eval_seq(b, 0, ids + i, n, i, GPT2_STEP_ALL, out + (size_t)i * V, NULL,
                                           NULL, 0, err, sizeof err),
                     0, "%s", err);
    }
    return out;
}

static gpt2_backend *make_backend(const gpt2_model *m, bool vulkan, int nb, gpt2_dtype kv,
                                  const char *cpu_ops)
{
    gpt2_backend_params bp = {.n_threads = 2, .n_batch = nb, .kv_type = kv, .device = -1, .cpu_ops = cpu_ops};
    char err[512];
    gpt2_backend *b = vulkan ? gpt2_backend_vk_create(m, &bp, NULL, err, sizeof err)
                             : gpt2_backend_cpu_create(m, &bp, NULL, err, sizeof err);
    cr_assert_not_null(b, "backend: %s", err);
    return b;
}

static void check_against_reference(bool vulkan, gpt2_dtype wtype, gpt2_dtype kv, gpt2_gelu gelu, double tol,
                                    const char *cpu_ops)
{
    gpt2_model m;
    make_model(&m, wtype, gelu);
    const int lens[] = {1, 7, 40}, batches[] = {1, 8, 64};
    int32_t ids[40];
    make_ids(ids, 40, m.hp.n_vocab, 7);
    for (size_t li = 0; li < 3; li++) {
        double *ref = ref_forward(&m, ids, lens[li]);
        for (size_t bi = 0; bi < 3; bi++) {
            if (vulkan && batches[bi] == 1 && lens[li] == 40)
                continue; /* 40 one-token steps: slow on lavapipe */
            gpt2_backend *b = make_backend(&m, vulkan, batches[bi], kv, cpu_ops);
            float *got = backend_logits(b, ids, lens[li], batches[bi]);
            double e = max_rel_err(got, ref, (size_t)lens[li] * m.hp.n_vocab);
            cr_expect_lt(e, tol, "%s %s-weights kv %s: T=%d b=%d error %.3g > %.3g", b->name,
                         gpt2_dtype_name(wtype), gpt2_dtype_name(kv), lens[li], batches[bi], e, tol);
            cr_expect_eq(b->counters.validation_messages, 0, "validation messages");
            free(got);
            b->destroy(b);
        }
        free(ref);
    }
    gpt2_model_free(&m);
}

/* ---- tests ---- */

Test(forward, cpu_f32_matches_reference)
{
    check_against_reference(false, GPT2_F32, GPT2_F32, GPT2_GELU_TANH, 1e-5, NULL);
}
Test(forward, cpu_f16_weights_match_reference)
{
    check_against_reference(false, GPT2_F16, GPT2_F32, GPT2_GELU_TANH, 1e-5, NULL);
}
Test(forward, cpu_f16_kv_matches_reference)
{
    check_against_reference(false, GPT2_F32, GPT2_F16, GPT2_GELU_TANH, 1e-3, NULL);
}
Test(forward, cpu_erf_gelu_matches_reference)
{
    check_against_reference(false, GPT2_F32, GPT2_F32, GPT2_GELU_ERF, 1e-5, NULL);
}
Test(forward, vulkan_f32_matches_reference, .timeout = 300)
{
    check_against_reference(true, GPT2_F32, GPT2_F32, GPT2_GELU_TANH, 1e-4, NULL);
}
Test(forward, vulkan_f16_matches_reference, .timeout = 300)
{
    check_against_reference(true, GPT2_F16, GPT2_F16, GPT2_GELU_TANH, 1e-3, NULL);
}
Test(forward, vulkan_with_cpu_fallback_matches_reference, .timeout = 300)
{
    check_against_reference(true, GPT2_F32, GPT2_F32, GPT2_GELU_ERF, 1e-4, "gelu,attention");
    check_against_reference(true, GPT2_F16, GPT2_F16, GPT2_GELU_TANH, 1e-3, "embed,layernorm");
}

/* Greedy decoding: CPU and Vulkan pick the same 128 tokens, step by step on the same context,
 * except at near-ties of the CPU's logits (greedy_compare). */
Test(forward, greedy_cpu_equals_vulkan, .timeout = 300)
{
    gpt2_model m;
    make_model(&m, GPT2_F16, GPT2_GELU_TANH);
    gpt2_backend *be[2] = {make_backend(&m, false, 8, GPT2_F32, NULL),
                           make_backend(&m, true, 8, GPT2_F16, NULL)};
    int32_t seq[140];
    make_ids(seq, 5, m.hp.n_vocab, 99);
    int flips = greedy_compare(be[0], be[1], seq, 5, 128);
    cr_expect_leq(flips, 4, "%d near-tie flips in 128 tokens", flips);
    /* The one-token step was recorded once and replayed; greedy reads back only the id. */
    cr_expect_eq(be[1]->counters.decode_cmdbuf_records, 1);
    cr_expect_eq(be[1]->counters.readback_bytes_last, 4);
    cr_expect_eq(be[1]->counters.validation_messages, 0);
    be[0]->destroy(be[0]);
    be[1]->destroy(be[1]);
    gpt2_model_free(&m);
}

/* The acceptance check at full size: a synthetic GPT-2 124M (f16 weights, GPT-2's vocabulary size)
 * gives the same 128 greedy tokens on Vulkan (f16 KV cache) as on the CPU. */
Test(forward, greedy_124M_cpu_equals_vulkan, .timeout = 600)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[256];
    cr_assert_eq(gpt2_synth_parse_size(&p, "124M", err, sizeof err), 0, "%s", err);
    p.wtype = GPT2_F16;
    p.n_vocab = 50257;
    p.seed = 124;
    gpt2_model m;
    cr_assert_eq(gpt2_synth(&m, &p, err, sizeof err), 0, "%s", err);
    gpt2_backend *be[2] = {make_backend(&m, false, 16, GPT2_F32, NULL),
                           make_backend(&m, true, 16, GPT2_F16, NULL)};
    enum { PROMPT = 12, GEN = 128 };
    static int32_t seq[PROMPT + GEN];
    make_ids(seq, PROMPT, m.hp.n_vocab, 5);
    int flips = greedy_compare(be[0], be[1], seq, PROMPT, GEN);
    cr_expect_leq(flips, 4, "%d near-tie flips in %d tokens", flips, GEN);
    cr_expect_eq(be[1]->counters.decode_cmdbuf_records, 1);
    cr_expect_eq(be[1]->counters.validation_messages, 0);
    be[0]->destroy(be[0]);
    be[1]->destroy(be[1]);
    gpt2_model_free(&m);
}

/* Prompts of 1, 7, 64 and 200 tokens in batches of 8 and 64: the Vulkan logits (f16 KV cache) of
 * every position match the CPU backend's (f32 KV) within 1e-3 relative. */
Test(forward, vulkan_logits_match_cpu_by_prompt_length_and_batch, .timeout = 600)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[256];
    cr_assert_eq(gpt2_synth_parse_size(&p, "2x64x4", err, sizeof err), 0, "%s", err);
    p.n_ctx = 256;
    p.wtype = GPT2_F16;
    p.seed = 77;
    gpt2_model m;
    cr_assert_eq(gpt2_synth(&m, &p, err, sizeof err), 0, "%s", err);
    const int lens[] = {1, 7, 64, 200}, batches[] = {8, 64};
    int32_t ids[200];
    make_ids(ids, 200, m.hp.n_vocab, 3);
    gpt2_backend *cpu = make_backend(&m, false, 64, GPT2_F32, NULL);
    for (size_t li = 0; li < 4; li++) {
        float *want = backend_logits(cpu, ids, lens[li], 64);
        size_t count = (size_t)lens[li] * m.hp.n_vocab;
        double *ref = malloc(count * sizeof *ref);
        for (size_t i = 0; i < count; i++) ref[i] = want[i];
        for (size_t bi = 0; bi < 2; bi++) {
            gpt2_backend *vk = make_backend(&m, true, batches[bi], GPT2_F16, NULL);
            float *got = backend_logits(vk, ids, lens[li], batches[bi]);
            double e = max_rel_err(got, ref, count);
            cr_expect_lt(e, 1e-3, "T=%d b=%d: vulkan vs cpu error %.3g", lens[li], batches[bi], e);
            cr_expect_eq(vk->counters.validation_messages, 0);
            free(got);
            vk->destroy(vk);
        }
        free(ref);
        free(want);
    }
    cpu->destroy(cpu);
    gpt2_model_free(&m);
}

/* The near-tie rule of greedy_check.h on made-up logits: a flip is accepted within
 * GREEDY_TIE_REL * (|best| + rms) of the CPU's best, not beyond, and never towards a better one. */
Test(forward, greedy_near_tie_rule)
{
    float row[4] = {10.0f, 9.99f, 3.0f, -2.0f};
    double rms = sqrt((100.0 + 9.99 * 9.99 + 9.0 + 4.0) / 4), eps_want = GREEDY_TIE_REL * (10.0 + rms);
    double gap, eps;
    cr_assert(greedy_near_tie(row, 4, 0, 1, &gap, &eps), "gap %g eps %g", gap, eps);
    cr_assert_float_eq(eps, eps_want, 1e-9);
    cr_assert(!greedy_near_tie(row, 4, 0, 2, &gap, &eps));
    cr_assert(!greedy_near_tie(row, 4, 1, 0, &gap, &eps), "the other pick is better: not the CPU's argmax");
    cr_assert(!greedy_near_tie(row, 4, 0, 7, &gap, &eps), "out of range");
    row[1] = 9.9f; /* gap 0.1 > 2e-3 * (10 + 8.7) */
    cr_assert(!greedy_near_tie(row, 4, 0, 1, &gap, &eps));
}
