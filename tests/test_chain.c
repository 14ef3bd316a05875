/* test_chain.c - several tokens per submit (gpt2_step.n_chain, vkg_session_params.tokens_per_submit).
 *
 * Through the public API on the Vulkan device (lavapipe): greedy and seeded generation give exactly
 * the same tokens for K = 1, 2, 7 and 16 tokens per submit, with a repetition penalty (drawn on the
 * device), up to the end of the context, in batched generation (each sequence as generated alone at
 * every K), and after a device fault in the middle of a chain (the CPU goes on from the tokens
 * really produced, as the CPU alone would). At the backend: a chain that draws its stop id (the end
 * of sequence) leaves the later steps' picks empty, and generation goes on from there as if one
 * token had been evaluated per submit. Tests skip without a Vulkan device.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkgpt2.h"

#include "core/backend.h"
#include "core/synth.h"

#define N_GEN 40

static char dir[256];
static vkg_model *model;
static int32_t *prompt;
static size_t n_prompt;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static bool have_vulkan(void)
{
    char err[512];
    FILE *null = fopen("/dev/null", "w");
    int r = vkg_list_devices(null, err, sizeof err);
    fclose(null);
    return r == 0;
}

static void setup(void)
{
    char err[512];
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vkg-chain-XXXXXX", t && *t ? t : "/tmp");
    cr_assert(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/tiny", dir);
    vkg_synth_params sp = {.size = "tiny", .format = "hf", .type = "f32", .seed = 11};
    cr_assert(vkg_synth(path, &sp, 0, err, sizeof err) == 0, "%s", err);
    model = vkg_model_load(path, err, sizeof err);
    cr_assert(model, "%s", err);
    static const char text[] = "A quiet morning on the river, and the boats";
    cr_assert(vkg_tokenize(model, text, sizeof text - 1, &prompt, &n_prompt, err, sizeof err) == 0, "%s",
              err);
    unsetenv("VKGPT2_FAULT");
}

static void teardown(void)
{
    unsetenv("VKGPT2_FAULT");
    vkg_free(prompt);
    vkg_model_free(model);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(chain, .init = setup, .fini = teardown, .timeout = 240);

typedef struct gen {
    int32_t ids[1024];
    size_t n;
    vkg_stats st;
    char backend[16];
} gen;

/* Generates n tokens after the first n_p prompt tokens (n_p 0: the whole prompt, or a long
 * prompt of `long_prompt` tokens) with K tokens per submit. */
static gen run(vkg_backend be, int K, const vkg_sample_params *gp, const int32_t *p, size_t n_p)
{
    gen g = {0};
    char err[512];
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = be;
    sp.device = be == VKG_BACKEND_CPU ? -1 : 0;
    sp.kv = VKG_KV_F32;
    sp.n_batch = 16;
    sp.tokens_per_submit = K;
    vkg_session *s = vkg_session_create(model, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    int32_t *ids = NULL;
    cr_assert(vkg_generate(s, p, n_p, gp, NULL, NULL, &ids, &g.n, &g.st, err, sizeof err) == 0, "%s", err);
    cr_assert(g.n <= sizeof g.ids / sizeof *g.ids);
    memcpy(g.ids, ids, g.n * sizeof *ids);
    snprintf(g.backend, sizeof g.backend, "%s", vkg_session_backend(s));
    vkg_free(ids);
    vkg_session_free(s);
    return g;
}

static void same(const gen *a, const gen *b, const char *what)
{
    cr_assert_eq(a->n, b->n, "%s: %zu tokens vs %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        cr_assert_eq(a->ids[i], b->ids[i], "%s: token %zu: %d vs %d", what, i, a->ids[i], b->ids[i]);
}

static const int Ks[] = {1, 2, 7, 16};

/* Every K gives K = 1's tokens; K > 1 takes fewer submits. */
static void every_k_same(const vkg_sample_params *gp, const int32_t *p, size_t n_p, const char *what)
{
    gen ref = run(VKG_BACKEND_VULKAN, 1, gp, p, n_p);
    cr_assert_str_eq(ref.backend, "vulkan");
    for (size_t k = 1; k < sizeof Ks / sizeof *Ks; k++) {
        gen g = run(VKG_BACKEND_VULKAN, Ks[k], gp, p, n_p);
        char w[128];
        snprintf(w, sizeof w, "%s, K = %d vs 1", what, Ks[k]);
        same(&g, &ref, w);
        cr_expect_eq(g.st.hit_context_end, ref.st.hit_context_end, "%s", w);
        /* A chained step is lowered as a single one is (the fused kernels): at most the link's one
         * dispatch more per token (where K = 1 counted its dispatches). */
        if (ref.st.dispatches_per_token)
            cr_expect_leq(g.st.dispatches_per_token, ref.st.dispatches_per_token + 1,
                          "%s: %llu dispatches per token, K = 1 took %llu", w,
                          (unsigned long long)g.st.dispatches_per_token,
                          (unsigned long long)ref.st.dispatches_per_token);
        if (g.st.decode_tokens > Ks[k])
            cr_expect_lt(g.st.decode_submits, ref.st.decode_submits, "%s: %d submits, K = 1 took %d", w,
                         g.st.decode_submits, ref.st.decode_submits);
    }
}

Test(chain, greedy_same_tokens_every_k)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    vkg_sample_params gp = vkg_sample_defaults();
    gp.temp = 0;
    gp.n_predict = N_GEN;
    gp.ignore_eos = true;
    every_k_same(&gp, prompt, n_prompt, "greedy");
    /* And the device's greedy tokens are the CPU's. */
    gen cpu = run(VKG_BACKEND_CPU, 1, &gp, prompt, n_prompt),
        vk = run(VKG_BACKEND_VULKAN, 16, &gp, prompt, n_prompt);
    same(&vk, &cpu, "greedy, Vulkan K = 16 vs the CPU");
}

Test(chain, seeded_same_tokens_every_k)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    vkg_sample_params gp = vkg_sample_defaults();
    gp.seed = 1234;
    gp.n_predict = N_GEN;
    gp.ignore_eos = true;
    every_k_same(&gp, prompt, n_prompt, "seeded");
}

Test(chain, repetition_penalty_same_tokens_every_k)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    vkg_sample_params gp = vkg_sample_defaults();
    gp.seed = 99;
    gp.n_predict = N_GEN;
    gp.ignore_eos = true;
    gp.repeat_penalty = 1.4f;
    gp.repeat_last_n = 12;
    every_k_same(&gp, prompt, n_prompt, "seeded with a penalty");
    gen g = run(VKG_BACKEND_VULKAN, 7, &gp, prompt, n_prompt);
    cr_expect_leq(g.st.readback_bytes_per_token, 16 * 4,
                  "the penalty no longer brings logits back (%llu bytes)",
                  (unsigned long long)g.st.readback_bytes_per_token);
    /* Greedy with a penalty: the device's penalty is the host sampler's. */
    gp.temp = 0;
    every_k_same(&gp, prompt, n_prompt, "greedy with a penalty");
    gen cpu = run(VKG_BACKEND_CPU, 1, &gp, prompt, n_prompt),
        vk = run(VKG_BACKEND_VULKAN, 16, &gp, prompt, n_prompt);
    same(&vk, &cpu, "greedy with a penalty, Vulkan K = 16 vs the host sampler");
}

Test(chain, context_end_same_tokens_every_k)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    int n_ctx = vkg_model_get_info(model).n_ctx;
    /* A prompt that leaves 11 positions: the chains meet the end of the context mid-submit. */
    size_t n_p = (size_t)n_ctx - 11;
    int32_t *p = malloc(n_p * sizeof *p);
    for (size_t i = 0; i < n_p; i++) p[i] = prompt[i % n_prompt];
    vkg_sample_params gp = vkg_sample_defaults();
    gp.n_predict = 40;
    gp.seed = 5;
    gp.ignore_eos = true;
    every_k_same(&gp, p, n_p, "seeded to the context end");
    gen g = run(VKG_BACKEND_VULKAN, 16, &gp, p, n_p);
    cr_expect(g.st.hit_context_end);
    cr_expect_eq(g.n, 12, "11 positions evaluate 11 tokens, whose picks are 12 tokens");
    free(p);
}

Test(chain, batched_generation_equals_alone_every_k)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    char err[512];
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = VKG_BACKEND_VULKAN;
    sp.device = 0;
    sp.kv = VKG_KV_F32;
    sp.n_batch = 16;
    sp.n_seq = 3;
    vkg_session *s = vkg_session_create(model, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    vkg_batch_seq seqs[3];
    for (int i = 0; i < 3; i++) {
        seqs[i] = (vkg_batch_seq){
            .prompt = prompt, .n_prompt = n_prompt - (size_t)i, .params = vkg_sample_defaults()};
        seqs[i].params.n_predict = 20 + 3 * i;
        seqs[i].params.seed = 40 + (uint64_t)i;
        seqs[i].params.ignore_eos = true;
        if (i == 2) {
            seqs[i].params.repeat_penalty = 1.3f;
            seqs[i].params.repeat_last_n = 6;
        }
    }
    vkg_batch_result res[3];
    cr_assert(vkg_generate_batch(s, seqs, 3, 3, NULL, NULL, res, NULL, err, sizeof err) == 0, "%s", err);
    vkg_session_free(s);
    for (int i = 0; i < 3; i++)
        for (size_t k = 0; k < sizeof Ks / sizeof *Ks; k++) {
            gen g = run(VKG_BACKEND_VULKAN, Ks[k], &seqs[i].params, seqs[i].prompt, seqs[i].n_prompt);
            cr_assert_eq(g.n, res[i].n_ids, "sequence %d, K = %d", i, Ks[k]);
            for (size_t j = 0; j < g.n; j++)
                cr_assert_eq(g.ids[j], res[i].ids[j], "sequence %d, K = %d, token %zu", i, Ks[k], j);
        }
    vkg_batch_results_free(res, 3);
}

Test(chain, device_fault_mid_submit_continues_on_cpu)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    vkg_sample_params gp = vkg_sample_defaults();
    gp.temp = 0;
    gp.n_predict = N_GEN;
    gp.ignore_eos = true;
    gen want = run(VKG_BACKEND_CPU, 1, &gp, prompt, n_prompt);
    /* submit 1 is the prompt; 2, 3, 5: chains of 7 (the third ends at token 21). */
    static const int at[] = {2, 3, 5};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        char v[32], what[64];
        snprintf(v, sizeof v, "submit:%d", at[i]);
        setenv("VKGPT2_FAULT", v, 1);
        gen g = run(VKG_BACKEND_AUTO, 7, &gp, prompt, n_prompt);
        unsetenv("VKGPT2_FAULT");
        snprintf(what, sizeof what, "VKGPT2_FAULT=%s with K = 7", v);
        cr_assert_str_eq(g.backend, "cpu", "%s: still on %s", what, g.backend);
        same(&g, &want, what);
    }
}

/* At the backend: a chain whose stop id is drawn at step j brings back j + 1 picks, the later
 * ones -1 (their steps did no work); the sequence then goes on from its real length as with one
 * token per step. */
Test(chain, stop_id_inside_a_chain)
{
    if (!have_vulkan()) cr_skip_test("no Vulkan device");
    gpt2_model m;
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[512];
    cr_assert_eq(gpt2_synth_parse_size(&p, "2x64x4", err, sizeof err), 0, "%s", err);
    p.n_ctx = 64;
    p.seed = 21;
    cr_assert_eq(gpt2_synth(&m, &p, err, sizeof err), 0, "%s", err);
    gpt2_backend_params bp = {.n_threads = 2, .n_batch = 8, .kv_type = GPT2_F32, .device = 0};
    gpt2_backend *b = gpt2_backend_vk_create(&m, &bp, NULL, err, sizeof err);
    cr_assert(b, "%s", err);
    cr_assert_eq(b->max_chain, 16);
    int32_t ids[4] = {3, 1, 4, 1};
    /* One token per step: the reference continuation. */
    int32_t ref[20], pick;
    cr_assert_eq(
        gpt2_backend_eval_seq(b, 0, ids, 4, 0, GPT2_STEP_ARGMAX, NULL, &pick, NULL, 0, err, sizeof err), 0,
        "%s", err);
    for (int k = 0; k < 20; k++) {
        ref[k] = pick;
        cr_assert_eq(gpt2_backend_eval_seq(b, 0, &ref[k], 1, 4 + k, GPT2_STEP_ARGMAX, NULL, &pick, NULL, 0,
                                           err, sizeof err),
                     0, "%s", err);
    }
    /* A chain of 16 after the prompt, stopping at the id drawn at step 5 (its first occurrence). */
    int j = 5;
    for (int k = 0; k < j; k++)
        if (ref[k + 1] == ref[j + 1]) {
            j = k;
            break;
        }
    gpt2_row row = {0, 4};
    int32_t picks[16];
    gpt2_step st = {.n = 1,
                    .ids = &ref[0],
                    .rows = &row,
                    .out = GPT2_STEP_ARGMAX,
                    .picks = picks,
                    .n_chain = 16,
                    .stop_id = ref[j + 1]};
    cr_assert_eq(b->eval(b, &st, err, sizeof err), 0, "%s", err);
    for (int k = 0; k < 16; k++)
        cr_assert_eq(picks[k], k <= j ? ref[k + 1] : -1, "step %d (stop after %d): %d", k, j, picks[k]);
    /* Go on from the real length: positions 4 .. 4 + j hold ref[0 .. j]; feed ref[j + 1]. */
    st.ids = &ref[j + 1];
    row.pos = 5 + j;
    st.stop_id = -1;
    cr_assert_eq(b->eval(b, &st, err, sizeof err), 0, "%s", err);
    for (int k = 0; k + j + 2 < 20 && k < 16; k++)
        cr_assert_eq(picks[k], ref[j + 2 + k], "after the stop, step %d: %d vs %d", k, picks[k],
                     ref[j + 2 + k]);
    cr_expect_eq(b->counters.validation_messages, 0);
    b->destroy(b);
    gpt2_model_free(&m);
}
