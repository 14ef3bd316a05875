/* test_variant_guard.c - the kernel-variant guard (vulkan/variant_guard.h) on lavapipe: a passing
 * variant is checked once and its verdict cached beside the pipeline cache and reused; a variant
 * whose output the fault hook perturbs (VKGPT2_FAULT=variant:subgroup) fails its check, is turned
 * off with one notice, and the session still computes the CPU backend's logits; VKGPT2_VARIANTS
 * forbids (no check) and forces (the perturbed variant then shows in the logits, so the hook
 * bites); a bad VKGPT2_VARIANTS is one error naming it. Each test has its own cache directory. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vkgpt2.h"
#include "vkengine/vk_engine.h"
#include "vulkan/variant_guard.h"
#include "vulkan/vk_ops.h"

/* ---- notices ---- */
static char notices[8][512];
static int n_notices;
static void on_notice(void *user, vkg_notice_kind kind, const char *msg)
{
    (void)user;
    if (kind == VKG_NOTICE_VALIDATION) cr_assert_fail("validation message: %s", msg);
    if (n_notices < 8) snprintf(notices[n_notices], sizeof notices[0], "%s", msg);
    n_notices++;
}
static int count_notices(const char *needle)
{
    int k = 0;
    for (int i = 0; i < n_notices && i < 8; i++)
        if (strstr(notices[i], needle)) k++;
    return k;
}

/* A fresh cache directory per test (the verdict file lives under it). */
static char cache_dir[64];
static void fresh_cache(void)
{
    snprintf(cache_dir, sizeof cache_dir, "/tmp/vkg-guard-XXXXXX");
    cr_assert(mkdtemp(cache_dir));
    setenv("XDG_CACHE_HOME", cache_dir, 1);
    unsetenv("VKGPT2_FAULT");
    unsetenv("VKGPT2_VARIANTS");
    n_notices = 0;
    vkg_set_notice_handler(on_notice, NULL);
}
static void drop_cache(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_dir);
    cr_assert(system(cmd) == 0);
}

/* One engine + ops + guard; returns the guard's state of "subgroup" (skips without a device or
 * without subgroup arithmetic). */
static vk_guard_state guard_once(int *rc, char *err, size_t errlen)
{
    vk_engine *e;
    char e2[256];
    if (vk_engine_create(&e, -1, e2, sizeof e2)) cr_skip_test("no Vulkan device: %s", e2);
    vk_ops *o = vk_ops_create(e, e2, sizeof e2);
    cr_assert(o, "%s", e2);
    if (!vk_ops_variant_runs(o, "subgroup")) {
        vk_ops_destroy(o);
        vk_engine_destroy(e);
        cr_skip_test("the device has no subgroup arithmetic (or it is emulated away)");
    }
    vk_guard_state st[VKOPS_GUARD_N];
    *rc = vk_guard_apply(e, o, st, err, errlen);
    if (*rc == 0) cr_assert_eq(vk_ops_subgroup(o), st[0].on, "the ops follow the guard");
    cr_assert_eq(vk_validation_messages(e), 0);
    vk_ops_destroy(o);
    vk_engine_destroy(e);
    return st[0];
}

static void verdict_file(char *path, size_t len)
{
    vk_engine *e;
    char err[256];
    cr_assert(vk_engine_create(&e, -1, err, sizeof err) == 0, "%s", err);
    vk_guard_cache_path(e, path, len);
    vk_engine_destroy(e);
    cr_assert(path[0], "a verdict file path");
    cr_assert(strncmp(path, cache_dir, strlen(cache_dir)) == 0, "%s lies under %s", path, cache_dir);
}

static double cached_ratio(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256], name[32];
    double r = -1, v;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%31s %lf", name, &v) == 2 && strcmp(name, "subgroup") == 0) r = v;
    fclose(f);
    return r;
}

Test(guard, parse)
{
    int f[VKOPS_GUARD_N];
    char err[256];
    cr_assert(vk_guard_parse(NULL, f, err, sizeof err) == 0);
    cr_assert(f[0] == 0 && f[1] == 0 && f[2] == 0);
    cr_assert(vk_guard_parse("-subgroup,+coopmat_nv", f, err, sizeof err) == 0);
    cr_assert(f[0] == -1 && f[1] == 1 && f[2] == 0);
    cr_assert(vk_guard_parse("-all,coopmat_khr", f, err, sizeof err) == 0);
    cr_assert(f[0] == -1 && f[1] == -1 && f[2] == 1);
    cr_assert(vk_guard_parse("subgroup,fastpath", f, err, sizeof err) == -1);
    cr_assert(strstr(err, "VKGPT2_VARIANTS") && strstr(err, "'fastpath'"), "%s", err);
    cr_assert(!strchr(err, '\n'));
    cr_assert(vk_guard_parse("+", f, err, sizeof err) == -1);
}

Test(guard, pass_is_checked_once_then_cached)
{
    fresh_cache();
    int rc;
    char err[256], path[1100];
    vk_guard_state g = guard_once(&rc, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(g.how, "checked");
    cr_assert(g.on && g.ratio >= 0 && g.ratio <= 1, "ratio %g", g.ratio);
    cr_assert_eq(n_notices, 0, "a passing check is silent (%s)", notices[0]);
    verdict_file(path, sizeof path);
    double r = cached_ratio(path);
    cr_assert(r >= 0 && fabs(r - g.ratio) <= 1e-5 * (g.ratio + 1e-9) + 1e-12, "cached %g vs %g", r, g.ratio);
    g = guard_once(&rc, err, sizeof err);
    cr_assert_str_eq(g.how, "cached");
    cr_assert(g.on);
    drop_cache();
}

/* The logits of a tiny synthetic model: CPU and Vulkan sessions, worst |difference| over the
 * logits' range. */
static double vulkan_vs_cpu(const char *model)
{
    char err[512];
    vkg_model *m = vkg_model_load(model, err, sizeof err);
    cr_assert(m, "%s", err);
    int32_t ids[6] = {5, 17, 200, 3, 99, 42};
    size_t nv = (size_t)vkg_model_get_info(m).n_vocab;
    float *lc = malloc(6 * nv * sizeof *lc), *lv = malloc(6 * nv * sizeof *lv);
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = VKG_BACKEND_CPU;
    sp.kv = VKG_KV_F32;
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert(vkg_eval(s, ids, 6, lc, err, sizeof err) == 0, "%s", err);
    vkg_session_free(s);
    sp.backend = VKG_BACKEND_VULKAN;
    sp.device = 0;
    s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert(vkg_eval(s, ids, 6, lv, err, sizeof err) == 0, "%s", err);
    vkg_session_free(s);
    double lo = INFINITY, hi = -INFINITY, worst = 0;
    for (size_t i = 0; i < 6 * nv; i++) {
        lo = fmin(lo, lc[i]);
        hi = fmax(hi, lc[i]);
        worst = fmax(worst, fabs((double)lc[i] - lv[i]));
    }
    free(lc);
    free(lv);
    vkg_model_free(m);
    return worst / (hi - lo);
}

static void tiny_model(char *path, size_t len)
{
    snprintf(path, len, "%s/tiny.bin", cache_dir);
    vkg_synth_params p = {.size = "tiny", .format = "ggml", .type = "f32", .seed = 7};
    char err[256];
    cr_assert(vkg_synth(path, &p, 0, err, sizeof err) == 0, "%s", err);
}

Test(guard, perturbed_variant_is_turned_off_and_the_session_falls_back, .timeout = 300)
{
    fresh_cache();
    setenv("VKGPT2_FAULT", "variant:subgroup", 1);
    int rc;
    char err[256], path[1100], model[128];
    vk_guard_state g = guard_once(&rc, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(g.how, "checked");
    cr_assert(!g.on && g.ratio > 1, "ratio %g", g.ratio);
    cr_assert_eq(n_notices, 1, "one notice");
    cr_assert(strstr(notices[0], "subgroup") && strstr(notices[0], "failed its check"), "%s", notices[0]);
    cr_assert(!strchr(notices[0], '\n'), "one line");
    verdict_file(path, sizeof path);
    cr_assert(cached_ratio(path) > 1, "the failure is cached");
    /* reused: no second check, the variant stays off, one notice saying so */
    n_notices = 0;
    g = guard_once(&rc, err, sizeof err);
    cr_assert_str_eq(g.how, "cached");
    cr_assert(!g.on);
    cr_assert_eq(count_notices("failed its check before"), 1);
    /* sessions fall back to the plain kernels: the CPU's logits despite the perturbation */
    tiny_model(model, sizeof model);
    double off = vulkan_vs_cpu(model);
    cr_assert_lt(off, 1e-4, "guarded session vs CPU: %g of the logit range", off);
    /* forcing the perturbed variant shows the perturbation (the hook bites) */
    setenv("VKGPT2_VARIANTS", "+subgroup", 1);
    double forced = vulkan_vs_cpu(model);
    cr_assert_gt(forced, 1e-2, "forced perturbed variant vs CPU: %g of the logit range", forced);
    drop_cache();
}

Test(guard, variants_env_forbids_and_forces_without_a_check)
{
    fresh_cache();
    int rc;
    char err[256], path[1100];
    setenv("VKGPT2_VARIANTS", "-subgroup", 1);
    vk_guard_state g = guard_once(&rc, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(g.how, "forbidden");
    cr_assert(!g.on);
    verdict_file(path, sizeof path);
    cr_assert(access(path, F_OK) != 0, "no check ran, nothing cached");
    setenv("VKGPT2_VARIANTS", "+all", 1);
    setenv("VKGPT2_FAULT", "variant:subgroup", 1);
    g = guard_once(&rc, err, sizeof err);
    cr_assert_str_eq(g.how, "forced");
    cr_assert(g.on);
    cr_assert_eq(n_notices, 0);
    setenv("VKGPT2_VARIANTS", "subgroup,turbo", 1);
    g = guard_once(&rc, err, sizeof err);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(err, "'turbo'"), "%s", err);
    drop_cache();
}
