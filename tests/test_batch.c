/* test_batch.c - batched generation: many sequences at once, each in its own KV cache slot.
 *
 * Backend level: a batched decode step (a gpt2_step of one token of a different sequence per row, each
 * at its own position in its own slot) gives every row the logits of a float64 replay of that
 * sequence alone and of the single-sequence step; a prompt's KV cache copied into another slot
 * gives the same logits as computing it there. API level: every sequence of vkg_generate_batch
 * produces what vkg_generate produces for it alone (greedy, device draws, host draws with a
 * repetition penalty), with sequences of different lengths and more sequences than slots; the
 * batched step is recorded once per width and replayed. CLI: -np and --prompts with --json, and a
 * device fault in the middle of a batch (the CPU takes over).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vkgpt2.h"

#include "core/backend.h"
#include "core/synth.h"
#include "greedy_check.h"
#include "ref_gpt2.h"

/* ---- helpers ---- */

static void make_model(gpt2_model *m, gpt2_dtype wtype)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[256];
    cr_assert_eq(gpt2_synth_parse_size(&p, "3x64x4", err, sizeof err), 0, "%s", err);
    p.n_ctx = 96;
    p.wtype = wtype;
    p.seed = 4321;
    cr_assert_eq(gpt2_synth(m, &p, err, sizeof err), 0, "%s", err);
}

/* cpu_ops: the Vulkan backend's nodes to run on the CPU (VKGPT2_CPU_OPS's syntax), or NULL. */
static gpt2_backend *make_backend_ops(const gpt2_model *m, bool vulkan, int nb, int slots, gpt2_dtype kv,
                                      const char *cpu_ops)
{
    gpt2_backend_params bp = {
        .n_threads = 2, .n_batch = nb, .kv_type = kv, .device = -1, .n_slots = slots, .cpu_ops = cpu_ops};
    char err[512];
    gpt2_backend *b = vulkan ? gpt2_backend_vk_create(m, &bp, NULL, err, sizeof err)
                             : gpt2_backend_cpu_create(m, &bp, NULL, err, sizeof err);
    cr_assert_not_null(b, "backend: %s", err);
    return b;
}

static gpt2_backend *make_backend(const gpt2_model *m, bool vulkan, int nb, int slots, gpt2_dtype kv)
{
    return make_backend_ops(m, vulkan, nb, slots, kv, NULL);
}

/* A batched decode step: row r feeds ids[r] at position pos[r] of slot slot[r]; every row's logits
 * when logits is not NULL, else each row's argmax into picks. */
static int eval_rows(gpt2_backend *b, const int32_t *ids, const int *slot, const int *pos, int n,
                     float *logits, int32_t *picks, char *err, size_t errlen)
{
    gpt2_row rows[n];
    for (int r = 0; r < n; r++) rows[r] = (gpt2_row){.slot = slot[r], .pos = pos[r]};
    gpt2_step st = {.n = n,
                    .ids = ids,
                    .rows = rows,
                    .out = logits ? GPT2_STEP_ALL : GPT2_STEP_ARGMAX,
                    .logits = logits,
                    .picks = picks};
    return b->eval(b, &st, err, errlen);
}

/* Evaluates ids[0..n) into slot `slot` of b (steps of n_batch). */
static void fill(gpt2_backend *b, int slot, const int32_t *ids, int n)
{
    char err[256];
    for (int i = 0; i < n; i += b->params.n_batch) {
        int step = n - i < b->params.n_batch ? n - i : b->params.n_batch;
        int32_t dummy;
        cr_assert_eq(gpt2_backend_eval_seq(b, slot, ids + i, step, i, GPT2_STEP_ARGMAX, NULL, &dummy, NULL, 0,
                                           err, sizeof err),
                     0, "%s", err);
    }
}

/* ---- backend: batched step against the float64 reference and the single-sequence step ---- */

static void rows_match_reference(bool vulkan, gpt2_dtype wtype, gpt2_dtype kv, double tol)
{
    gpt2_model m;
    make_model(&m, wtype);
    const int V = m.hp.n_vocab;
    enum { NSEQ = 5 };
    const int lens[NSEQ] = {1, 6, 13, 40, 3};  /* tokens before the batched one */
    const int slot_of[NSEQ] = {4, 0, 2, 1, 3}; /* slots in another order than the rows */
    static int32_t seq[NSEQ][64];
    gpt2_backend *b = make_backend(&m, vulkan, 8, NSEQ, kv);
    for (int r = 0; r < NSEQ; r++) {
        make_ids(seq[r], lens[r] + 1, V, 11u + (unsigned)r);
        if (lens[r]) fill(b, slot_of[r], seq[r], lens[r]);
    }
    int32_t ids[NSEQ];
    int pos[NSEQ];
    for (int r = 0; r < NSEQ; r++) {
        ids[r] = seq[r][lens[r]];
        pos[r] = lens[r];
    }
    float *logits = malloc((size_t)NSEQ * V * sizeof *logits);
    int32_t picks[NSEQ];
    char err[256];
    /* Widths 5 (matvec) and, for the first 3 rows, 3: the same plan replayed per width. */
    cr_assert_eq(eval_rows(b, ids, slot_of, pos, NSEQ, logits, NULL, err, sizeof err), 0, "%s", err);
    for (int r = 0; r < NSEQ; r++) {
        double *ref = ref_last_logits(&m, seq[r], lens[r] + 1);
        double e = max_rel_err(logits + (size_t)r * V, ref, (size_t)V);
        cr_expect_lt(e, tol, "%s row %d (slot %d, %d cached): error %.3g", b->name, r, slot_of[r], lens[r],
                     e);
        /* The picks of the same step (argmax on the device) are the argmax of those logits. */
        free(ref);
    }
    /* Run the same rows again for picks: positions re-store the same K/V (idempotent). */
    cr_assert_eq(eval_rows(b, ids, slot_of, pos, NSEQ, NULL, picks, err, sizeof err), 0, "%s", err);
    for (int r = 0; r < NSEQ; r++) {
        const float *row = logits + (size_t)r * V;
        int best = 0;
        for (int i = 1; i < V; i++)
            if (row[i] > row[best]) best = i;
        cr_expect_eq(picks[r], best, "row %d: pick %d, argmax %d", r, picks[r], best);
    }
    if (vulkan) {
        cr_expect_eq(b->counters.batch_cmdbuf_records, 2, "one recording per width and output kind");
        cr_expect_eq(b->counters.readback_bytes_last, NSEQ * 4, "picks read back: 4 bytes a row");
        cr_expect_eq(b->counters.validation_messages, 0);
    }
    free(logits);
    b->destroy(b);
    gpt2_model_free(&m);
}

Test(batch, cpu_rows_match_reference) { rows_match_reference(false, GPT2_F32, GPT2_F32, 1e-5); }
Test(batch, cpu_rows_f16_kv_match_reference) { rows_match_reference(false, GPT2_F16, GPT2_F16, 1e-3); }
Test(batch, vulkan_rows_match_reference, .timeout = 60)
{
    rows_match_reference(true, GPT2_F32, GPT2_F32, 1e-4);
}
Test(batch, vulkan_rows_f16_match_reference, .timeout = 60)
{
    rows_match_reference(true, GPT2_F16, GPT2_F16, 1e-3);
}

/* A prompt computed once in slot 0 and copied into slot 2 gives the same logits (bit for bit) as
 * computing it in slot 1 (cpu_ops "attention": the Vulkan backend's host cache is copied too). */
static void copy_matches_recompute(bool vulkan, const char *cpu_ops)
{
    gpt2_model m;
    make_model(&m, GPT2_F16);
    const int V = m.hp.n_vocab, n = 21;
    int32_t p[21];
    make_ids(p, n, V, 5);
    gpt2_backend *b = make_backend_ops(&m, vulkan, 8, 3, vulkan ? GPT2_F16 : GPT2_F32, cpu_ops);
    fill(b, 0, p, n - 1);
    fill(b, 1, p, n - 1);
    char err[256];
    cr_assert_eq(b->kv_copy(b, 2, 0, n - 1, err, sizeof err), 0, "%s", err);
    int32_t ids[2] = {p[n - 1], p[n - 1]};
    int slots[2] = {1, 2}, pos[2] = {n - 1, n - 1};
    float *logits = malloc((size_t)2 * V * sizeof *logits);
    cr_assert_eq(eval_rows(b, ids, slots, pos, 2, logits, NULL, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < V; i++)
        cr_assert_eq(logits[i], logits[V + i], "logit %d: recomputed %g, copied %g", i, logits[i],
                     logits[V + i]);
    if (vulkan) cr_expect_eq(b->counters.validation_messages, 0);
    free(logits);
    b->destroy(b);
    gpt2_model_free(&m);
}

Test(batch, cpu_copy_matches_recompute) { copy_matches_recompute(false, NULL); }
Test(batch, vulkan_copy_matches_recompute, .timeout = 60) { copy_matches_recompute(true, NULL); }
Test(batch, vulkan_cpu_attention_copy_matches_recompute, .timeout = 60)
{
    copy_matches_recompute(true, "attention");
}

/* ---- API: each sequence of a batch produces exactly what it produces alone ---- */

static char model_dir[256];

static vkg_model *api_model(void)
{
    snprintf(model_dir, sizeof model_dir, "%s/vkg-batch-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert(mkdtemp(model_dir));
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/m", model_dir);
    vkg_synth_params sp = {.size = "3x64x4", .format = "hf", .type = "f16", .seed = 9};
    cr_assert_eq(vkg_synth(path, &sp, 0, err, sizeof err), 0, "%s", err);
    vkg_model *m = vkg_model_load(path, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    return m;
}

static void api_model_free(vkg_model *m)
{
    vkg_model_free(m);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", model_dir);
    cr_expect_eq(system(cmd), 0);
}

typedef struct cb_log {
    int calls[8], ends[8];
    int32_t last[8];
} cb_log;

static int log_cb(void *user, int seq, int32_t id, const char *text, size_t len)
{
    cb_log *l = user;
    (void)text;
    (void)len;
    if (id < 0)
        l->ends[seq]++;
    else {
        l->calls[seq]++;
        l->last[seq] = id;
    }
    return 0;
}

/* Greedy runs of one sequence that part at token k (picks a and b): accepted only when both picks
 * are near-ties of the CPU's logits after the prompt and the k tokens before (greedy_check.h). */
static bool greedy_split_is_near_tie(vkg_model *m, const int32_t *prompt, size_t n_prompt, const int32_t *gen,
                                     size_t k, int32_t a, int32_t b)
{
    vkg_model_info info = vkg_model_get_info(m);
    size_t V = (size_t)info.n_vocab, n = (n_prompt ? n_prompt : 1) + k;
    int32_t *ctx = malloc(n * sizeof *ctx);
    float *logits = malloc(n * V * sizeof *logits);
    cr_assert(ctx && logits);
    if (n_prompt)
        memcpy(ctx, prompt, n_prompt * sizeof *ctx);
    else
        ctx[0] = info.eot; /* generation from nothing starts at <|endoftext|> */
    if (k) memcpy(ctx + (n_prompt ? n_prompt : 1), gen, k * sizeof *ctx);
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = VKG_BACKEND_CPU;
    sp.n_threads = 2;
    char err[256];
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(vkg_eval(s, ctx, n, logits, err, sizeof err), 0, "%s", err);
    const float *row = logits + (n - 1) * V;
    int32_t best = 0;
    for (size_t i = 1; i < V; i++)
        if (row[i] > row[best]) best = (int32_t)i;
    double ga, gb, eps;
    bool ok =
        greedy_near_tie(row, (int)V, best, a, &ga, &eps) && greedy_near_tie(row, (int)V, best, b, &gb, &eps);
    cr_log_info("token %zu: %d vs %d, CPU best %d, gaps %.3g / %.3g, near-tie limit %.3g: %s\n", k, a, b,
                best, (double)row[best] - row[a], (double)row[best] - row[b], eps,
                ok ? "a near-tie" : "not a near-tie");
    vkg_session_free(s);
    free(ctx);
    free(logits);
    return ok;
}

/* kind 0: greedy, 1: sampling (drawn on the device where it can), 2: sampling with a repetition
 * penalty (logits to the host sampler). */
static void batch_equals_alone(vkg_backend backend, int kind)
{
    vkg_model *m = api_model();
    vkg_model_info info = vkg_model_get_info(m);
    enum { NSEQ = 7, PAR = 3 };
    static const char *texts[NSEQ] = {
        "Hello world", "The cat sat on", "Hello world", "", "A", "Once upon a time there was", "Hello world"};
    const int n_predict[NSEQ] = {12, 5, 9, 7, 1, 14, 0};
    int32_t *pids[NSEQ];
    size_t n_pids[NSEQ];
    char err[512];
    vkg_batch_seq seqs[NSEQ];
    for (int i = 0; i < NSEQ; i++) {
        cr_assert_eq(vkg_tokenize(m, texts[i], strlen(texts[i]), &pids[i], &n_pids[i], err, sizeof err), 0,
                     "%s", err);
        vkg_sample_params p = vkg_sample_defaults();
        p.n_predict = n_predict[i];
        p.seed = 100 + (uint64_t)i;
        p.ignore_eos = true;
        if (kind == 0) p.temp = 0;
        if (kind == 2) {
            p.repeat_penalty = 1.3f;
            p.repeat_last_n = 8;
        }
        seqs[i] = (vkg_batch_seq){.prompt = pids[i], .n_prompt = n_pids[i], .params = p};
    }
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = backend;
    sp.n_threads = 2;
    sp.n_batch = 8;
    sp.kv = backend == VKG_BACKEND_VULKAN ? VKG_KV_F16 : VKG_KV_F32;
    sp.n_seq = PAR;
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    vkg_batch_result res[NSEQ];
    vkg_stats st;
    cb_log log = {0};
    cr_assert_eq(vkg_generate_batch(s, seqs, NSEQ, PAR, log_cb, &log, res, &st, err, sizeof err), 0, "%s",
                 err);
    for (int i = 0; i < NSEQ; i++) {
        cr_expect_eq(res[i].n_ids, (size_t)n_predict[i], "seq %d: %zu tokens, asked %d", i, res[i].n_ids,
                     n_predict[i]);
        cr_expect_eq(log.calls[i], n_predict[i], "seq %d: callback per token", i);
        cr_expect_eq(log.ends[i], 1, "seq %d: one end call", i);
        cr_expect(res[i].slot >= 0 && res[i].slot < PAR);
    }
    /* "Hello world" twice in the first window: the second copies the first's KV cache. */
    cr_expect(res[2].prompt_shared, "seq 2 shares seq 0's prompt");
    cr_expect(!res[0].prompt_shared);
    if (backend == VKG_BACKEND_VULKAN) {
        /* Widths 3, 2 and 1 at most, per output kind; every other step replays. */
        cr_expect_leq(st.batch_cmdbuf_records, 3, "batch records %llu",
                      (unsigned long long)st.batch_cmdbuf_records);
        cr_expect_gt(st.decode_steps, (int)st.batch_cmdbuf_records);
    }
    /* Alone: the same session, one sequence at a time through vkg_generate. */
    for (int i = 0; i < NSEQ; i++) {
        vkg_session_reset(s);
        int32_t *gen = NULL;
        size_t n_gen = 0;
        cr_assert_eq(vkg_generate(s, pids[i], n_pids[i], &seqs[i].params, NULL, NULL, &gen, &n_gen, NULL, err,
                                  sizeof err),
                     0, "%s", err);
        cr_expect_eq(n_gen, res[i].n_ids, "seq %d: alone %zu tokens, batched %zu", i, n_gen, res[i].n_ids);
        for (size_t k = 0; k < n_gen && k < res[i].n_ids; k++) {
            if (gen[k] == res[i].ids[k]) continue;
            /* greedy on a GPU: the batched kernels may part from the single-sequence ones at a
             * near-tie; the rest of the sequence then differs by construction */
            if (kind == 0 && backend == VKG_BACKEND_VULKAN &&
                greedy_split_is_near_tie(m, pids[i], n_pids[i], gen, k, gen[k], res[i].ids[k]))
                break;
            cr_expect_eq(gen[k], res[i].ids[k], "seq %d token %zu: alone %d, batched %d", i, k, gen[k],
                         res[i].ids[k]);
        }
        vkg_free(gen);
    }
    (void)info;
    vkg_batch_results_free(res, NSEQ);
    for (int i = 0; i < NSEQ; i++) vkg_free(pids[i]);
    vkg_session_free(s);
    api_model_free(m);
}

/* The near-tie check of a greedy split itself: the CPU's own pick always is one, its worst token
 * after the same context is not. */
Test(batch, greedy_split_check)
{
    vkg_model *m = api_model();
    char err[256];
    int32_t *p = NULL;
    size_t np = 0;
    cr_assert_eq(vkg_tokenize(m, "Hello world", 11, &p, &np, err, sizeof err), 0, "%s", err);
    size_t V = (size_t)vkg_model_get_info(m).n_vocab;
    float *lg = malloc(np * V * sizeof *lg);
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = VKG_BACKEND_CPU;
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(vkg_eval(s, p, np, lg, err, sizeof err), 0, "%s", err);
    const float *row = lg + (np - 1) * V;
    int32_t best = 0, worst = 0;
    for (size_t i = 1; i < V; i++) {
        if (row[i] > row[best]) best = (int32_t)i;
        if (row[i] < row[worst]) worst = (int32_t)i;
    }
    cr_assert(greedy_split_is_near_tie(m, p, np, NULL, 0, best, best));
    cr_assert(!greedy_split_is_near_tie(m, p, np, NULL, 0, best, worst));
    vkg_session_free(s);
    free(lg);
    vkg_free(p);
    api_model_free(m);
}

Test(batch, cpu_greedy_equals_alone) { batch_equals_alone(VKG_BACKEND_CPU, 0); }
Test(batch, cpu_sampling_equals_alone) { batch_equals_alone(VKG_BACKEND_CPU, 1); }
Test(batch, cpu_penalty_equals_alone) { batch_equals_alone(VKG_BACKEND_CPU, 2); }
Test(batch, vulkan_greedy_equals_alone, .timeout = 120) { batch_equals_alone(VKG_BACKEND_VULKAN, 0); }
Test(batch, vulkan_sampling_equals_alone, .timeout = 120) { batch_equals_alone(VKG_BACKEND_VULKAN, 1); }
Test(batch, vulkan_penalty_equals_alone, .timeout = 120) { batch_equals_alone(VKG_BACKEND_VULKAN, 2); }

/* More sequences than the session has slots: refused with a message. */
Test(batch, parallel_above_slots_is_an_error)
{
    vkg_model *m = api_model();
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = VKG_BACKEND_CPU;
    sp.n_seq = 2;
    char err[512];
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    int32_t p[1] = {5};
    vkg_batch_seq q = {.prompt = p, .n_prompt = 1, .params = vkg_sample_defaults()};
    cr_expect_eq(vkg_generate_batch(s, &q, 1, 3, NULL, NULL, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "n_seq"), "%s", err);
    vkg_session_free(s);
    api_model_free(m);
}

/* ---- CLI: -np and --prompts with --json ---- */

static char *run_cmd(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f, "%s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    cr_assert_eq(pclose(f), 0, "%s failed", cmd);
    return out;
}

/* The "ids": [...] list of a JSON line, as text. */
static char *ids_of(const char *line)
{
    const char *a = strstr(line, "\"ids\": [");
    cr_assert_not_null(a, "%s", line);
    const char *e = strchr(a, ']');
    size_t n = (size_t)(e - a) + 1;
    char *r = malloc(n + 1);
    memcpy(r, a, n);
    r[n] = 0;
    return r;
}

static void cli_batch(const char *backend)
{
    const char *root = getenv("VKGPT2_BUILD_ROOT");
    cr_assert(root, "VKGPT2_BUILD_ROOT is not set (run through meson test)");
    char dir[256], cmd[2048];
    snprintf(dir, sizeof dir, "%s/vkg-batch-cli-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "%s/tools/vkgpt2 synth -o %s/m --size 2x64x4 --type f16 --seed 3 2>/dev/null",
             root, dir);
    free(run_cmd(cmd));
    /* -np 3: three continuations of one prompt, seeds 7, 8, 9. */
    snprintf(cmd, sizeof cmd,
             "%s/tools/vkgpt2 -m %s/m -p 'Hello world' -n 10 -s 7 -np 3 --json --backend %s 2>/dev/null",
             root, dir, backend);
    char *out = run_cmd(cmd);
    char *save = NULL, *line = strtok_r(out, "\n", &save);
    int n = 0;
    for (; line; line = strtok_r(NULL, "\n", &save), n++) {
        char want[64];
        snprintf(want, sizeof want, "{\"seq\": %d, \"seed\": %d,", n, 7 + n);
        cr_expect(!strncmp(line, want, strlen(want)), "line %d: %.60s", n, line);
        cr_expect(strstr(line, "\"timings\": {") && strstr(line, "\"counters\": {") &&
                  strstr(line, "\"text\": "));
        char alone_cmd[2048];
        snprintf(alone_cmd, sizeof alone_cmd,
                 "%s/tools/vkgpt2 -m %s/m -p 'Hello world' -n 10 -s %d --json --backend %s 2>/dev/null", root,
                 dir, 7 + n, backend);
        char *alone = run_cmd(alone_cmd);
        char *a = ids_of(alone), *b = ids_of(line);
        cr_expect_str_eq(b, a, "seq %d: batched %s, alone %s", n, b, a);
        free(a);
        free(b);
        free(alone);
    }
    cr_expect_eq(n, 3, "one JSON line per sequence");
    free(out);
    /* --prompts: four lines (an empty one skipped), two at once, greedy. */
    snprintf(cmd, sizeof cmd, "printf 'Hello world\\nThe cat\\n\\nA\\nOnce upon a time\\n' > %s/p.txt", dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "%s/tools/vkgpt2 -m %s/m --prompts %s/p.txt -np 2 -n 6 --temp 0 --json --backend %s 2>/dev/null",
             root, dir, dir, backend);
    out = run_cmd(cmd);
    static const char *prompts[] = {"Hello world", "The cat", "A", "Once upon a time"};
    save = NULL;
    line = strtok_r(out, "\n", &save);
    for (n = 0; line; line = strtok_r(NULL, "\n", &save), n++) {
        cr_assert_lt(n, 4);
        char alone_cmd[2048];
        snprintf(alone_cmd, sizeof alone_cmd,
                 "%s/tools/vkgpt2 -m %s/m -p '%s' -n 6 --temp 0 --json --backend %s 2>/dev/null", root, dir,
                 prompts[n], backend);
        char *alone = run_cmd(alone_cmd);
        char *a = ids_of(alone), *b = ids_of(line);
        cr_expect_str_eq(b, a, "prompt %d: batched %s, alone %s", n, b, a);
        free(a);
        free(b);
        free(alone);
    }
    cr_expect_eq(n, 4);
    free(out);
    /* Text mode: one "[seq I] " block per sequence. */
    snprintf(cmd, sizeof cmd,
             "%s/tools/vkgpt2 -m %s/m --prompts %s/p.txt -np 3 -n 4 --backend %s 2>/dev/null", root, dir, dir,
             backend);
    out = run_cmd(cmd);
    for (int i = 0; i < 4; i++) {
        char tag[48];
        snprintf(tag, sizeof tag, "[seq %d] ", i);
        cr_expect(strstr(out, tag), "no block %s in %s", tag, out);
    }
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(batch, cli_cpu, .timeout = 60) { cli_batch("cpu"); }
Test(batch, cli_vulkan, .timeout = 60) { cli_batch("vulkan"); }

/* The device fails in the middle of a batch (an injected VK_ERROR_DEVICE_LOST at the 6th submit):
 * under --backend auto the CPU takes over, re-evaluates each live sequence into its slot, and every
 * sequence ends as it does on the CPU alone. */
Test(batch, cli_device_fault_moves_to_cpu, .timeout = 60)
{
    const char *root = getenv("VKGPT2_BUILD_ROOT");
    cr_assert(root, "VKGPT2_BUILD_ROOT is not set (run through meson test)");
    char dir[256], cmd[2048];
    snprintf(dir, sizeof dir, "%s/vkg-batch-fault-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "%s/tools/vkgpt2 synth -o %s/m --size 2x64x4 --type f16 --seed 3 2>/dev/null",
             root, dir);
    free(run_cmd(cmd));
    snprintf(cmd, sizeof cmd,
             "VKGPT2_FAULT=submit:6 %s/tools/vkgpt2 -m %s/m -p 'Hello world' -n 8 -s 5 -np 3 --json --device "
             "0 2>/dev/null",
             root, dir);
    char *faulted = run_cmd(cmd);
    snprintf(cmd, sizeof cmd,
             "%s/tools/vkgpt2 -m %s/m -p 'Hello world' -n 8 -s 5 -np 3 --json --backend cpu 2>/dev/null",
             root, dir);
    char *cpu = run_cmd(cmd);
    char *sa = NULL, *sb = NULL, *la = strtok_r(faulted, "\n", &sa), *lb = strtok_r(cpu, "\n", &sb);
    int n = 0;
    for (; la && lb; la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb), n++) {
        char *a = ids_of(la), *b = ids_of(lb);
        cr_expect_str_eq(a, b, "seq %d: after the fault %s, cpu %s", n, a, b);
        cr_expect(strstr(la, "\"backend\": \"cpu\""), "seq %d ends on the CPU", n);
        free(a);
        free(b);
    }
    cr_expect_eq(n, 3);
    free(faulted);
    free(cpu);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}
