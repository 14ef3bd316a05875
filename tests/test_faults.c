/* test_faults.c - device faults (VKGPT2_FAULT, vkengine/vk_fault.h) and device memory limits, through
 * the public API: under --backend auto an out-of-memory device at load or a device lost during
 * generation leaves the session on the CPU with the same greedy tokens a pure CPU run gives; with
 * Vulkan forced the error is one line naming the VkResult.
 *
 * The model is a synthetic tiny GPT-2 (2 layers, 64 wide, n_ctx 128) written once per test into a
 * temporary directory. Tests that need a Vulkan device skip without one.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmpdir.h"
#include "vkgpt2.h"

#define N_PREDICT 24

static char dir[256];
static vkg_model *model;
static int32_t *prompt;
static size_t n_prompt;

static void setup(void)
{
    char err[512];
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vkg-faults-XXXXXX", t && *t ? t : "/tmp");
    cr_assert(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/tiny", dir);
    vkg_synth_params sp = {.size = "tiny", .format = "hf", .type = "f32", .seed = 7};
    cr_assert(vkg_synth(path, &sp, 0, err, sizeof err) == 0, "%s", err);
    model = vkg_model_load(path, err, sizeof err);
    cr_assert(model, "%s", err);
    static const char text[] = "The old lighthouse stood at the edge of the harbour";
    cr_assert(vkg_tokenize(model, text, sizeof text - 1, &prompt, &n_prompt, err, sizeof err) == 0, "%s",
              err);
    unsetenv("VKGPT2_FAULT");
    unsetenv("VKGPT2_DEVICE_MEM_LIMIT");
}

static void teardown(void)
{
    vkg_free(prompt);
    vkg_model_free(model);
    rm_tree(dir);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 120);

static void need_vulkan(void)
{
    char err[512];
    FILE *null = fopen("/dev/null", "w");
    int r = vkg_list_devices(null, err, sizeof err);
    fclose(null);
    if (r) cr_skip_test("no Vulkan: %s", err);
}

/* Greedy generation on backend b; returns the session's backend name after it (static storage)
 * and the ids in ids (N_PREDICT of them: ignore_eos). rc: vkg_generate's, or -2 when the session
 * could not be created; err gets the message. */
typedef struct run_result {
    int rc;
    int32_t ids[N_PREDICT];
    size_t n;
    char backend[16];
    char err[512];
} run_result;

static run_result run(vkg_backend b)
{
    run_result r = {0};
    vkg_session_params p = vkg_session_defaults();
    p.backend = b;
    p.device = 0;            /* under auto, lavapipe is used only when named */
    p.kv = VKG_KV_F32;       /* the CPU run's KV type, so the fallback is comparable */
    p.n_batch = 8;           /* the prompt takes several steps */
    p.tokens_per_submit = 1; /* one submit per decode token (test_chain faults chains) */
    vkg_session *s = vkg_session_create(model, &p, r.err, sizeof r.err);
    if (!s) {
        r.rc = -2;
        return r;
    }
    vkg_sample_params gp = vkg_sample_defaults();
    gp.temp = 0;
    gp.n_predict = N_PREDICT;
    gp.ignore_eos = true;
    int32_t *ids = NULL;
    size_t n = 0;
    r.rc = vkg_generate(s, prompt, n_prompt, &gp, NULL, NULL, &ids, &n, NULL, r.err, sizeof r.err);
    if (r.rc == 0) {
        cr_assert(n <= N_PREDICT);
        memcpy(r.ids, ids, n * sizeof *ids);
        r.n = n;
    }
    snprintf(r.backend, sizeof r.backend, "%s", vkg_session_backend(s));
    vkg_free(ids);
    vkg_session_free(s);
    return r;
}

static run_result cpu_reference(void)
{
    unsetenv("VKGPT2_FAULT");
    run_result r = run(VKG_BACKEND_CPU);
    cr_assert(r.rc == 0 && r.n == N_PREDICT, "CPU run: %s", r.err);
    return r;
}

static void assert_same(const run_result *got, const run_result *want, const char *what)
{
    cr_assert(got->rc == 0, "%s: %s", what, got->err);
    cr_assert(got->n == want->n, "%s: %zu tokens, expected %zu", what, got->n, want->n);
    for (size_t i = 0; i < want->n; i++)
        cr_assert(got->ids[i] == want->ids[i], "%s: token %zu is %d, the CPU run's %d", what, i, got->ids[i],
                  want->ids[i]);
}

static void assert_one_line(const char *err, const char *must_contain)
{
    cr_assert(err[0], "no error message");
    cr_assert(!strchr(err, '\n'), "more than one line: %s", err);
    cr_assert(strstr(err, must_contain), "'%s' not in: %s", must_contain, err);
}

Test(faults, reference_is_vulkan_greedy_too)
{
    need_vulkan();
    run_result want = cpu_reference();
    run_result got = run(VKG_BACKEND_VULKAN);
    cr_assert_str_eq(got.backend, "vulkan");
    assert_same(&got, &want, "vulkan without faults");
}

/* Under auto, with VKGPT2_FAULT=kind:at, the run goes on on the CPU with the CPU's tokens. */
static void expect_cpu_fallback(const char *kind, int at, const run_result *want)
{
    char v[32], what[64];
    snprintf(v, sizeof v, "%s:%d", kind, at);
    setenv("VKGPT2_FAULT", v, 1);
    run_result got = run(VKG_BACKEND_AUTO);
    snprintf(what, sizeof what, "VKGPT2_FAULT=%s", v);
    cr_assert_str_eq(got.backend, "cpu", "%s: still on %s", what, got.backend);
    assert_same(&got, want, what);
}

Test(faults, out_of_device_memory_at_load_falls_back_to_cpu)
{
    need_vulkan();
    run_result want = cpu_reference();
    /* Every allocation the backend makes at creation, one at a time. */
    for (int n = 1; n <= 12; n++) expect_cpu_fallback("alloc", n, &want);
}

Test(faults, out_of_device_memory_forced_vulkan_is_one_line)
{
    need_vulkan();
    setenv("VKGPT2_FAULT", "alloc:2", 1);
    run_result got = run(VKG_BACKEND_VULKAN);
    cr_assert(got.rc == -2, "the session was created");
    assert_one_line(got.err, "VK_ERROR_OUT_OF_DEVICE_MEMORY");
}

Test(faults, device_lost_during_generation_continues_on_cpu)
{
    need_vulkan();
    run_result want = cpu_reference();
    /* submit:1 hits the prompt's first step, later ones the decode steps (the prompt of ~11 tokens
     * takes 2 steps of 8). */
    static const int at[] = {1, 2, 3, 4, 7, 12, 20};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) expect_cpu_fallback("submit", at[i], &want);
}

Test(faults, device_lost_forced_vulkan_is_one_line)
{
    need_vulkan();
    setenv("VKGPT2_FAULT", "submit:5", 1);
    run_result got = run(VKG_BACKEND_VULKAN);
    cr_assert(got.rc == -1, "generation did not fail");
    cr_assert_str_eq(got.backend, "vulkan");
    assert_one_line(got.err, "VK_ERROR_DEVICE_LOST");
}

/* A GPU that hangs: the Nth step's fence wait times out (VKGPT2_FAULT=hang:N reports VK_TIMEOUT as
 * a wait that reached VKGPT2_FENCE_TIMEOUT_MS would). Under auto the session goes on on the CPU
 * with the CPU's tokens, as after a lost device; with Vulkan forced the error is one line naming
 * VK_TIMEOUT and the limit. */
Test(faults, device_hang_during_generation_continues_on_cpu)
{
    need_vulkan();
    run_result want = cpu_reference();
    static const int at[] = {1, 2, 5, 13};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) expect_cpu_fallback("hang", at[i], &want);
    setenv("VKGPT2_FAULT", "hang:4", 1);
    setenv("VKGPT2_FENCE_TIMEOUT_MS", "20000", 1);
    run_result got = run(VKG_BACKEND_VULKAN);
    unsetenv("VKGPT2_FENCE_TIMEOUT_MS");
    cr_assert(got.rc == -1, "generation did not fail");
    assert_one_line(got.err, "VK_TIMEOUT");
    cr_assert(strstr(got.err, "within 20 s") && strstr(got.err, "VKGPT2_FENCE_TIMEOUT_MS"), "%s", got.err);
}

Test(faults, eval_after_device_lost_continues_on_cpu)
{
    need_vulkan();
    char err[512];
    vkg_session_params p = vkg_session_defaults();
    p.kv = VKG_KV_F32;
    p.n_batch = 4;
    /* CPU logits for the whole prompt, in two calls. */
    size_t V = (size_t)vkg_model_get_info(model).n_vocab;
    float *want = malloc(n_prompt * V * sizeof *want), *got = malloc(n_prompt * V * sizeof *got);
    cr_assert(want && got);
    p.backend = VKG_BACKEND_CPU;
    vkg_session *s = vkg_session_create(model, &p, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert(vkg_eval(s, prompt, 5, want, err, sizeof err) == 0, "%s", err);
    cr_assert(vkg_eval(s, prompt + 5, n_prompt - 5, want + 5 * V, err, sizeof err) == 0, "%s", err);
    vkg_session_free(s);
    /* Vulkan, lost in the second call: the CPU re-evaluates the first 5 tokens and goes on. */
    p.backend = VKG_BACKEND_AUTO;
    p.device = 0; /* under auto, lavapipe is used only when named */
    setenv("VKGPT2_FAULT", "submit:3", 1);
    s = vkg_session_create(model, &p, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert(vkg_eval(s, prompt, 5, got, err, sizeof err) == 0, "%s", err);
    cr_assert(vkg_eval(s, prompt + 5, n_prompt - 5, got + 5 * V, err, sizeof err) == 0, "%s", err);
    cr_assert_str_eq(vkg_session_backend(s), "cpu");
    cr_assert(vkg_session_n_past(s) == (int)n_prompt);
    /* Rows computed on the CPU after the move equal the CPU run's exactly (same kernels, same
     * order); earlier rows came from the GPU and agree to rounding. */
    for (size_t t = 5; t < n_prompt; t++)
        for (size_t j = 0; j < V; j++)
            cr_assert(got[t * V + j] == want[t * V + j], "row %zu col %zu: %g vs %g", t, j,
                      (double)got[t * V + j], (double)want[t * V + j]);
    vkg_session_free(s);
    free(want);
    free(got);
}

Test(faults, model_larger_than_device_memory_is_refused_with_sizes)
{
    need_vulkan();
    setenv("VKGPT2_DEVICE_MEM_LIMIT", "100000", 1);
    run_result got = run(VKG_BACKEND_VULKAN);
    cr_assert(got.rc == -2, "the session was created");
    assert_one_line(got.err, "100000 bytes");
    cr_assert(strstr(got.err, "weights") && strstr(got.err, "KV cache"), "%s", got.err);
    run_result want = cpu_reference();
    setenv("VKGPT2_DEVICE_MEM_LIMIT", "100000", 1);
    got = run(VKG_BACKEND_AUTO);
    cr_assert_str_eq(got.backend, "cpu");
    assert_same(&got, &want, "auto with a small device");
}

Test(faults, bad_fault_spec_is_ignored_with_a_notice)
{
    need_vulkan();
    run_result want = cpu_reference();
    setenv("VKGPT2_FAULT", "bogus:1", 1);
    run_result got = run(VKG_BACKEND_VULKAN);
    cr_assert_str_eq(got.backend, "vulkan");
    assert_same(&got, &want, "VKGPT2_FAULT=bogus:1");
}

Test(faults, sampled_generation_survives_device_lost)
{
    need_vulkan();
    char err[512];
    vkg_session_params p = vkg_session_defaults();
    p.kv = VKG_KV_F32;
    p.device = 0; /* under auto, lavapipe is used only when named */
    p.tokens_per_submit = 1;
    size_t V = (size_t)vkg_model_get_info(model).n_vocab;
    vkg_sample_params gp = vkg_sample_defaults(); /* temperature 0.9, top-k 40, top-p 0.9 */
    gp.n_predict = N_PREDICT;
    gp.ignore_eos = true;
    gp.seed = 11;
    static const char *const at[] = {"submit:1", "submit:3", "submit:9"};
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        setenv("VKGPT2_FAULT", at[k], 1);
        vkg_session *s = vkg_session_create(model, &p, err, sizeof err);
        cr_assert(s, "%s", err);
        int32_t *ids = NULL;
        size_t n = 0;
        cr_assert(vkg_generate(s, prompt, n_prompt, &gp, NULL, NULL, &ids, &n, NULL, err, sizeof err) == 0,
                  "%s: %s", at[k], err);
        cr_assert_str_eq(vkg_session_backend(s), "cpu", "%s", at[k]);
        cr_assert(n == N_PREDICT, "%s: %zu tokens", at[k], n);
        for (size_t i = 0; i < n; i++) cr_assert(ids[i] >= 0 && (size_t)ids[i] < V);
        vkg_free(ids);
        vkg_session_free(s);
    }
}

/* ---- the same through the vkgpt2 command ---- */

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

/* Runs vkgpt2 with args, stdout and stderr into files under dir; returns the exit status (-1 if
 * killed by a signal). */
static int run_cli(const char *fault, const char *const *args, char *out, size_t out_cap, char *errs,
                   size_t err_cap)
{
    const char *root = getenv("VKGPT2_BUILD_ROOT");
    cr_assert(root, "VKGPT2_BUILD_ROOT is not set (run through meson test)");
    char bin[4096], po[300], pe[300];
    snprintf(bin, sizeof bin, "%s/tools/vkgpt2", root);
    snprintf(po, sizeof po, "%s/out", dir);
    snprintf(pe, sizeof pe, "%s/err", dir);
    char *argv[32];
    int n = 0;
    argv[n++] = bin;
    for (; *args; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    if (fault)
        setenv("VKGPT2_FAULT", fault, 1);
    else
        unsetenv("VKGPT2_FAULT");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    cr_assert(posix_spawn(&pid, bin, &fa, NULL, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    FILE *f = fopen(po, "rb");
    size_t k = fread(out, 1, out_cap - 1, f);
    out[k] = 0;
    fclose(f);
    f = fopen(pe, "rb");
    k = fread(errs, 1, err_cap - 1, f);
    errs[k] = 0;
    fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(faults, cli_device_lost)
{
    need_vulkan();
    char m[300];
    snprintf(m, sizeof m, "%s/tiny", dir);
    static char want[8192], got[8192], e1[8192], e2[8192];
    const char *cpu[] = {"-m",           m,      "-p",  "Hello",     "-n",  "20", "--temp", "0",
                         "--ignore-eos", "--kv", "f32", "--backend", "cpu", NULL};
    cr_assert(run_cli(NULL, cpu, want, sizeof want, e1, sizeof e1) == 0, "%s", e1);
    const char *autob[] = {"-m",           m,      "-p",  "Hello",     "-n",   "20",       "--temp", "0",
                           "--ignore-eos", "--kv", "f32", "--backend", "auto", "--device", "0",      NULL};
    cr_assert(run_cli("submit:4", autob, got, sizeof got, e2, sizeof e2) == 0, "%s", e2);
    cr_assert_str_eq(got, want, "auto after a lost device:\n%s\nCPU:\n%s", got, want);
    cr_assert(strstr(e2, "VK_ERROR_DEVICE_LOST") && strstr(e2, "continuing on the CPU"), "%s", e2);
    cr_assert(strstr(e2, "backend cpu"), "%s", e2);
    /* Forced: exit 1 and exactly one line on stderr, naming the error. */
    const char *vk[] = {"-m",           m,      "-p",  "Hello",     "-n",     "20", "--temp", "0",
                        "--ignore-eos", "--kv", "f32", "--backend", "vulkan", NULL};
    cr_assert(run_cli("submit:4", vk, got, sizeof got, e2, sizeof e2) == 1, "%s", e2);
    cr_assert(!strncmp(e2, "vkgpt2: ", 8) && strstr(e2, "VK_ERROR_DEVICE_LOST"), "%s", e2);
    cr_assert(strchr(e2, '\n') == e2 + strlen(e2) - 1, "more than one line:\n%s", e2);
    unsetenv("VKGPT2_FAULT");
}
