/* selftest.c - vkg_selftest (devtools.h): every kernel variant the chosen Vulkan device can run, on
 * fresh random inputs at GPT-2 shapes and odd ones, against a float64 reference computed here,
 * with a tolerance set by each variant's arithmetic; the variant guard's checks; then synthetic
 * models end to end, Vulkan against the CPU backend (logits, greedy ids). The references are
 * ref64.h's, the ones the Criterion tests use.
 *
 * Each case fills host inputs, uploads them, records one sequence, runs it, downloads the output
 * and compares: error_i = |gpu_i - ref_i|, passing when error_i <= tol * scale_i + atol for every
 * output, scale_i being the magnitude the variant's rounding is relative to (for a dot product the
 * sum of |x_k w_k|, so cancellation cannot hide or fake an error). The row reports the worst
 * error_i / scale_i as max_err next to tol. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkgpt2.h"
#include "devtools.h"
#include "ref64.h"

#include "core/sampler.h"
#include "core/tensor.h"
#include "core/dtype.h"
#include "vkengine/vk_engine.h"
#include "vkengine/vk_select.h"
#include "vulkan/variant_guard.h"
#include "vulkan/vk_ops.h"

#define N_VOCAB 50257
#define N_CTX 1024

/* ---- state of a run ---- */
typedef struct st {
    vk_engine *e;
    vk_ops *o;
    vk_seq *s;
    vk_mem step;  /* vk_step_params, host-visible */
    uint64_t rng; /* xorshift64 */
    vkg_selftest_cb cb;
    void *user;
    vkg_selftest_summary *sum;
    bool quick;
    char err[256]; /* the first setup failure of a case */
} st;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Uniform in [lo, hi), never exactly zero. */
static float rnd(st *t, float lo, float hi) { return ref64_rnd(&t->rng, lo, hi); }

static float *rnd_floats(st *t, size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof *p + 16);
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = rnd(t, lo, hi);
    return p;
}

/* ---- the comparison of one case ---- */
typedef struct cmp {
    double worst; /* max error_i / scale_i */
    bool pass;    /* every error_i <= tol * scale_i + atol */
} cmp;

static cmp compare(const float *got, const double *ref, const double *scale, size_t n, double tol,
                   double atol)
{
    cmp c = {0, true};
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]), s = scale ? scale[i] : fabs(ref[i]);
        if (!(e <= tol * s + atol)) c.pass = false;
        double r = e / (s > 0 ? s : 1.0);
        if (!(r <= c.worst)) c.worst = isnan(r) ? INFINITY : r;
    }
    return c;
}

static void report(st *t, const char *op, const char *variant, const char *type, const char *shape, cmp c,
                   double tol, const char *basis, double t0)
{
    vkg_selftest_row r = {op, variant, type, shape, c.worst, tol, basis, c.pass, now_ms() - t0};
    t->sum->n_cases++;
    if (!c.pass) t->sum->n_failed++;
    if (t->cb) t->cb(t->user, &r);
}

/* A case that could not be set up (out of memory, a failed submit) counts as a failure. */
static void report_setup(st *t, const char *op, const char *variant, const char *type, const char *shape,
                         double t0)
{
    cmp c = {INFINITY, false};
    report(t, op, variant, type, shape, c, 0, t->err[0] ? t->err : "setup failed", t0);
    t->err[0] = '\0';
}

/* Device buffer of bytes, uploaded from data when given. */
static int dbuf(st *t, vk_mem *m, size_t bytes, const void *data)
{
    if (vk_mem_alloc(t->e, m, bytes + 64, VKE_MEM_DEVICE, t->err, sizeof t->err)) return -1;
    if ((data ? vk_upload(t->e, m, 0, data, bytes) : vk_fill_zero(t->e, m, 0, bytes + 64)) != 0) {
        snprintf(t->err, sizeof t->err, "upload failed");
        vk_mem_free(t->e, m);
        return -1;
    }
    return 0;
}

static int run_seq(st *t)
{
    if (vk_seq_end(t->s) || vk_seq_run(t->s)) {
        snprintf(t->err, sizeof t->err, "the recorded sequence failed");
        return -1;
    }
    return 0;
}

static int get(st *t, const vk_mem *m, void *dst, size_t bytes)
{
    if (vk_download(t->e, m, 0, dst, bytes)) {
        snprintf(t->err, sizeof t->err, "download failed");
        return -1;
    }
    return 0;
}

static void set_step(st *t, int n_past, int n)
{
    vk_step_params sp = {.n_past = (uint32_t)n_past, .n = (uint32_t)n, .seed = 7};
    memcpy(t->step.map, &sp, sizeof sp);
}

/* ---- weights of any type ---- */

/* Random weights [rows][cols] of type wt: the bytes as the GPU reads them, and their values
 * (dequantized, or rounded to f16) in *deq. */
static void *make_weights(st *t, gpt2_dtype wt, int rows, int cols, float amp, float **deq, size_t *bytes)
{
    size_t n = (size_t)rows * cols;
    float *f = rnd_floats(t, n, -amp, amp);
    void *w = f ? ref64_weights(wt, f, rows, cols, bytes) : NULL;
    if (!w) {
        free(f);
        return NULL;
    }
    *deq = f;
    return w;
}

/* ---- matmul ---- */

/* One matmul case: W [rows][cols] of wt, n tokens, epilogue epi (1 bias, 2 gelu, 4 residual),
 * served by `variant` (the subgroup setting as sg). */
static void case_matmul(st *t, const char *variant, bool sg, gpt2_dtype wt, int rows, int cols, int n,
                        int epi, const char *label)
{
    double t0 = now_ms();
    char vname[48], shape[96];
    snprintf(vname, sizeof vname, "%s%s", variant, strcmp(variant, "matvec") == 0 ? (sg ? "_sg" : "") : "");
    snprintf(shape, sizeof shape, "%s %dx%d n=%d%s%s%s", label, rows, cols, n, epi & 1 ? " +bias" : "",
             epi & 2 ? " +gelu" : "", epi & 4 ? " +res" : "");
    float *wd = NULL;
    size_t wbytes = 0;
    void *w = make_weights(t, wt, rows, cols, 0.1f, &wd, &wbytes);
    float *x = rnd_floats(t, (size_t)n * cols, -1, 1), *b = rnd_floats(t, (size_t)rows, -0.5f, 0.5f);
    float *y0 = rnd_floats(t, (size_t)n * rows, -1, 1), *y = malloc((size_t)n * rows * 4 + 16);
    double *ref = malloc((size_t)n * rows * sizeof *ref), *scale = malloc((size_t)n * rows * sizeof *scale);
    vk_mem bw = {0}, bx = {0}, bb = {0}, by = {0};
    bool ok = w && x && b && y0 && y && ref && scale && dbuf(t, &bw, wbytes, w) == 0;
    ok = ok && dbuf(t, &bx, (size_t)n * cols * 4, x) == 0;
    ok = ok && dbuf(t, &bb, (size_t)rows * 4, b) == 0;
    ok = ok && dbuf(t, &by, (size_t)n * rows * 4, y0) == 0;
    if (ok) {
        vk_ops_set_subgroup(t->o, sg);
        vk_ops_force_matmul(t->o, variant);
        vk_seq_begin(t->s);
        vk_op_matmul(t->o, t->s, by.addr, rows, bx.addr, cols, bw.addr, wt, rows, cols, bb.addr, n, epi, 0);
        vk_ops_force_matmul(t->o, NULL);
        ok = run_seq(t) == 0 && get(t, &by, y, (size_t)n * rows * 4) == 0;
    }
    if (ok) {
        /* float64 from the f32 x: the coopmat kernels' bound includes their rounding of x. The
         * scale carries over the gelu unchanged (|gelu'| <= 1.13): the tolerance widens instead */
        ref64_matmul(ref, scale, x, cols, wd, b, y0, rows, n, rows, cols, epi, 0,
                     (ref64_gelu_scale){1.0, 0.0});
        vk_mm_accuracy acc = vk_matmul_accuracy(variant);
        double tol = acc.rtol_f32x * ((epi & 2) ? 1.2 : 1.0);
        cmp c = compare(y, ref, scale, (size_t)n * rows, tol, acc.atol + ((epi & 2) ? 1e-6 : 0));
        report(t, "matmul", vname, gpt2_dtype_name(wt), shape, c, tol,
               acc.x_f16 ? "rel. sum|x*w| (x rounded to f16)" : "rel. sum|x*w|", t0);
    } else {
        report_setup(t, "matmul", vname, gpt2_dtype_name(wt), shape, t0);
    }
    vk_ops_set_subgroup(t->o, -1);
    vk_mem_free(t->e, &bw);
    vk_mem_free(t->e, &bx);
    vk_mem_free(t->e, &bb);
    vk_mem_free(t->e, &by);
    free(w);
    free(wd);
    free(x);
    free(b);
    free(y0);
    free(y);
    free(ref);
    free(scale);
}

static void all_matmuls(st *t)
{
    static const gpt2_dtype types[] = {GPT2_F32,  GPT2_F16,  GPT2_Q8_0, GPT2_Q5_1,
                                       GPT2_Q5_0, GPT2_Q4_1, GPT2_Q4_0};
    /* GPT-2 shapes: 124M's qkv, 1558M's fc and fc2, 124M's LM head; odd: a row count no tile
     * divides and (f32/f16) a column count no vector width divides */
    struct {
        const char *label;
        int rows, cols, epi;
        bool full_only;
    } sh[] = {
        {"124M qkv", 2304, 768, 1, false},  {"1558M fc", 6400, 1600, 3, true},
        {"1558M fc2", 1600, 6400, 5, true}, {"124M lm_head", N_VOCAB, 768, 0, true},
        {"odd", 97, 96, 5, false},          {"odd", 61, 83, 3, false},
    };
    bool sg_runs = vk_ops_variant_runs(t->o, "subgroup");
    const char *coop[2] = {"coopmat_nv", "coopmat_khr"};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        gpt2_dtype wt = types[ti];
        bool q = gpt2_dtype_is_quant(wt);
        if (t->quick && (wt == GPT2_Q5_1 || wt == GPT2_Q4_1))
            continue; /* --quick: one of each block family's scale-and-min formats */
        for (size_t si = 0; si < sizeof sh / sizeof *sh; si++) {
            if ((sh[si].full_only && t->quick) || (q && sh[si].cols % GPT2_QBLOCK)) continue;
            int R = sh[si].rows, C = sh[si].cols, E = sh[si].epi;
            bool big = (double)R * C > 4e6;
            for (int sg = 0; sg <= (sg_runs ? 1 : 0); sg++) {
                case_matmul(t, "matvec", sg, wt, R, C, 1, E, sh[si].label);
                if (!big) case_matmul(t, "matvec", sg, wt, R, C, 5, E, sh[si].label);
            }
            case_matmul(t, "tiled", false, wt, R, C, big ? 64 : 37, E, sh[si].label);
            if (wt == GPT2_F16)
                for (int k = 0; k < 2; k++)
                    if (vk_ops_variant_runs(t->o, coop[k])) {
                        case_matmul(t, coop[k], false, wt, R, C, 64, E, sh[si].label);
                        if (!big) case_matmul(t, coop[k], false, wt, R, C, 40, E, sh[si].label);
                    }
        }
    }
}

/* ---- layernorm, softmax, gelu, add ---- */

static void case_layernorm(st *t, bool sg, int n, int d)
{
    double t0 = now_ms();
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", n, d);
    const char *vname = sg ? "subgroup" : "shared memory";
    float *x = rnd_floats(t, (size_t)n * d, -2, 3), *g = rnd_floats(t, (size_t)d, 0.5f, 1.5f);
    float *b = rnd_floats(t, (size_t)d, -0.5f, 0.5f), *y = malloc((size_t)n * d * 4 + 16);
    double *ref = malloc((size_t)n * d * sizeof *ref), *scale = malloc((size_t)n * d * sizeof *scale);
    vk_mem bx = {0}, bg = {0}, bb = {0}, by = {0};
    bool ok = x && g && b && y && ref && scale && dbuf(t, &bx, (size_t)n * d * 4, x) == 0 &&
        dbuf(t, &bg, (size_t)d * 4, g) == 0 && dbuf(t, &bb, (size_t)d * 4, b) == 0 &&
        dbuf(t, &by, (size_t)n * d * 4, NULL) == 0;
    if (ok) {
        vk_ops_set_subgroup(t->o, sg);
        vk_seq_begin(t->s);
        vk_op_layernorm(t->o, t->s, by.addr, bx.addr, bg.addr, bb.addr, n, d, 1e-5f);
        ok = run_seq(t) == 0 && get(t, &by, y, (size_t)n * d * 4) == 0;
    }
    if (ok) {
        ref64_layernorm(ref, scale, NULL, x, d, g, b, n, d, 1e-5); /* scale holds x_hat first */
        for (size_t i = 0; i < (size_t)n * d; i++)
            scale[i] = fabs(scale[i] * g[i % d]) + fabs(b[i % d]) + 1.0;
        /* f32 mean and variance over d terms, then one scaled value: 1e-5 of |g x_hat| + |b| + 1 */
        report(t, "layernorm", vname, "f32", shape, compare(y, ref, scale, (size_t)n * d, 1e-5, 0), 1e-5,
               "rel. |g*x_hat|+|b|+1", t0);
    } else {
        report_setup(t, "layernorm", vname, "f32", shape, t0);
    }
    vk_ops_set_subgroup(t->o, -1);
    vk_mem_free(t->e, &bx);
    vk_mem_free(t->e, &bg);
    vk_mem_free(t->e, &bb);
    vk_mem_free(t->e, &by);
    free(x);
    free(g);
    free(b);
    free(y);
    free(ref);
    free(scale);
}

static void case_softmax(st *t, bool sg, int n, int d)
{
    double t0 = now_ms();
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", n, d);
    const char *vname = sg ? "subgroup" : "shared memory";
    float *x = rnd_floats(t, (size_t)n * d, -8, 8), *y = malloc((size_t)n * d * 4 + 16);
    double *ref = malloc((size_t)n * d * sizeof *ref), *scale = malloc((size_t)n * d * sizeof *scale);
    vk_mem bx = {0};
    bool ok = x && y && ref && scale && dbuf(t, &bx, (size_t)n * d * 4, x) == 0;
    if (ok) {
        vk_ops_set_subgroup(t->o, sg);
        vk_seq_begin(t->s);
        vk_op_softmax(t->o, t->s, bx.addr, n, d);
        ok = run_seq(t) == 0 && get(t, &bx, y, (size_t)n * d * 4) == 0;
    }
    if (ok) {
        ref64_softmax(ref, x, n, d);
        for (size_t i = 0; i < (size_t)n * d; i++) scale[i] = ref[i] + 1.0 / d;
        /* f32 exp (a few ulp) and a sum of d terms: 1e-5 of p + 1/d */
        report(t, "softmax", vname, "f32", shape, compare(y, ref, scale, (size_t)n * d, 1e-5, 0), 1e-5,
               "rel. p+1/d", t0);
    } else {
        report_setup(t, "softmax", vname, "f32", shape, t0);
    }
    vk_ops_set_subgroup(t->o, -1);
    vk_mem_free(t->e, &bx);
    free(x);
    free(y);
    free(ref);
    free(scale);
}

/* gelu (form 0 tanh, 1 erf) in place, or add (y += x). */
static void case_elementwise(st *t, bool add, int form, size_t count)
{
    double t0 = now_ms();
    char shape[64], vname[16];
    snprintf(shape, sizeof shape, "%zu", count);
    snprintf(vname, sizeof vname, "%s", add ? "plain" : form ? "erf" : "tanh");
    const char *op = add ? "add" : "gelu";
    float *x = rnd_floats(t, count, -6, 6), *y0 = rnd_floats(t, count, -1, 1), *y = malloc(count * 4 + 16);
    double *ref = malloc(count * sizeof *ref), *scale = malloc(count * sizeof *scale);
    vk_mem bx = {0}, by = {0};
    bool ok =
        x && y0 && y && ref && scale && dbuf(t, &bx, count * 4, x) == 0 && dbuf(t, &by, count * 4, y0) == 0;
    if (ok) {
        vk_seq_begin(t->s);
        if (add)
            vk_op_add(t->o, t->s, by.addr, bx.addr, count);
        else
            vk_op_gelu(t->o, t->s, bx.addr, count, form);
        ok = run_seq(t) == 0 && get(t, add ? &by : &bx, y, count * 4) == 0;
    }
    if (ok) {
        for (size_t i = 0; i < count; i++) {
            double v = x[i];
            ref[i] = add ? v + y0[i] : ref64_gelu(v, form);
            scale[i] = add ? fabs(v) + fabs(y0[i]) : fabs(v) + 1e-3;
        }
        /* one rounding (add), or f32 tanh/erf formulas (a few ulp of |x|) */
        double tol = add ? 1.2e-7 : 2e-6;
        report(t, op, vname, "f32", shape, compare(y, ref, scale, count, tol, 0), tol,
               add ? "rel. |x|+|y|" : "rel. |x|+1e-3", t0);
    } else {
        report_setup(t, op, vname, "f32", shape, t0);
    }
    vk_mem_free(t->e, &bx);
    vk_mem_free(t->e, &by);
    free(x);
    free(y0);
    free(y);
    free(ref);
    free(scale);
}

/* ---- embed ---- */

static void case_embed(st *t, gpt2_dtype wt, int d, int n, int n_past)
{
    double t0 = now_ms();
    char shape[64];
    int vocab = 1000;
    snprintf(shape, sizeof shape, "vocab %d d=%d n=%d n_past=%d", vocab, d, n, n_past);
    float *wd = NULL, *pd = NULL;
    size_t wbytes = 0, pbytes = 0;
    void *w = make_weights(t, wt, vocab, d, 0.1f, &wd, &wbytes);
    void *p = make_weights(t, GPT2_F32, N_CTX, d, 0.05f, &pd, &pbytes);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    float *y = malloc((size_t)n * d * 4 + 16);
    double *ref = malloc((size_t)n * d * sizeof *ref), *scale = malloc((size_t)n * d * sizeof *scale);
    vk_mem bw = {0}, bp = {0}, bi = {0}, by = {0};
    bool ok = w && p && ids && y && ref && scale;
    if (ok)
        for (int i = 0; i < n; i++) ids[i] = (int32_t)(rnd(t, 0, 1) * (vocab - 1));
    ok = ok && dbuf(t, &bw, wbytes, w) == 0 && dbuf(t, &bp, pbytes, p) == 0 &&
        dbuf(t, &bi, (size_t)n * 4, ids) == 0 && dbuf(t, &by, (size_t)n * d * 4, NULL) == 0;
    if (ok) {
        set_step(t, n_past, n);
        vk_seq_begin(t->s);
        vk_op_embed(t->o, t->s, by.addr, bw.addr, wt, bp.addr, GPT2_F32, bi.addr, t->step.addr, n, d);
        ok = run_seq(t) == 0 && get(t, &by, y, (size_t)n * d * 4) == 0;
    }
    if (ok) {
        ref64_embed(ref, scale, wd, pd, ids, n, d, n_past);
        report(t, "embed", "plain", gpt2_dtype_name(wt), shape,
               compare(y, ref, scale, (size_t)n * d, 1.2e-7, 0), 1.2e-7, "rel. |wte|+|wpe| (one f32 add)",
               t0);
    } else {
        report_setup(t, "embed", "plain", gpt2_dtype_name(wt), shape, t0);
    }
    vk_mem_free(t->e, &bw);
    vk_mem_free(t->e, &bp);
    vk_mem_free(t->e, &bi);
    vk_mem_free(t->e, &by);
    free(w);
    free(wd);
    free(p);
    free(pd);
    free(ids);
    free(y);
    free(ref);
    free(scale);
}

/* ---- attention ---- */

/* n new tokens after n_past cached ones (n > 1: prefill with kv_store first; n == 1: decode,
 * which stores its own row, then the reduction). */
static void case_attention(st *t, bool sg, gpt2_dtype kvt, int n_head, int hd, int n, int n_past,
                           const char *label)
{
    double t0 = now_ms();
    int E = n_head * hd;
    char shape[96], vname[48];
    snprintf(shape, sizeof shape, "%s %dx%d n=%d n_past=%d", label, n_head, hd, n, n_past);
    snprintf(vname, sizeof vname, "%s%s", n > 1 ? "prefill" : "decode+reduce",
             n == 1 && sg ? " subgroup" : "");
    const char *op = n > 1 ? "attention prefill" : "attention decode";
    size_t esz = gpt2_dtype_size(kvt), ncache = (size_t)N_CTX * E, nq = (size_t)n * 3 * E;
    float *qkv = rnd_floats(t, nq, -1, 1), *kf = rnd_floats(t, ncache, -1, 1),
          *vf = rnd_floats(t, ncache, -1, 1);
    void *k0 = malloc(ncache * esz), *v0 = malloc(ncache * esz);
    float *out = malloc((size_t)n * E * 4 + 16);
    double *ref = calloc((size_t)n * E, sizeof *ref), *scale = calloc((size_t)n * E, sizeof *scale);
    vk_mem bq = {0}, bk = {0}, bv = {0}, bo = {0}, bs = {0};
    bool ok = qkv && kf && vf && k0 && v0 && out && ref && scale;
    if (ok) {
        /* caches as stored: f16 rounds; the new rows' K/V likewise rounded for the reference */
        for (size_t i = 0; i < ncache; i++) {
            if (kvt == GPT2_F16) {
                ((uint16_t *)k0)[i] = gpt2_f32_to_f16(kf[i]);
                ((uint16_t *)v0)[i] = gpt2_f32_to_f16(vf[i]);
                kf[i] = gpt2_f16_to_f32(((uint16_t *)k0)[i]);
                vf[i] = gpt2_f16_to_f32(((uint16_t *)v0)[i]);
            } else {
                ((float *)k0)[i] = kf[i];
                ((float *)v0)[i] = vf[i];
            }
        }
        for (int k = 0; k < n; k++)
            for (int e = 0; e < E; e++) {
                float kk = qkv[(size_t)k * 3 * E + E + e], vv = qkv[(size_t)k * 3 * E + 2 * E + e];
                if (kvt == GPT2_F16) {
                    kk = gpt2_f16_to_f32(gpt2_f32_to_f16(kk));
                    vv = gpt2_f16_to_f32(gpt2_f32_to_f16(vv));
                }
                kf[(size_t)(n_past + k) * E + e] = kk;
                vf[(size_t)(n_past + k) * E + e] = vv;
            }
    }
    ok = ok && dbuf(t, &bq, nq * 4, qkv) == 0 && dbuf(t, &bk, ncache * esz, k0) == 0 &&
        dbuf(t, &bv, ncache * esz, v0) == 0 && dbuf(t, &bo, (size_t)n * E * 4, NULL) == 0 &&
        dbuf(t, &bs, vk_attention_scratch_bytes(n_head, hd, N_CTX), NULL) == 0;
    if (ok) {
        vk_ops_set_subgroup(t->o, sg);
        set_step(t, n_past, n);
        vk_seq_begin(t->s);
        if (n > 1) {
            vk_op_kv_store(t->o, t->s, bk.addr, bv.addr, kvt, bq.addr, t->step.addr, n, E);
            /* attention reads the K/V rows the store wrote */
            vk_seq_barrier(t->s);
        }
        vk_op_attention(t->o, t->s, bo.addr, bq.addr, bk.addr, bv.addr, kvt, t->step.addr, n, n_head, hd,
                        N_CTX, bs.addr);
        ok = run_seq(t) == 0 && get(t, &bo, out, (size_t)n * E * 4) == 0;
    }
    if (ok) {
        ref64_attention(ref, scale, qkv, (size_t)3 * E, kf, vf, (size_t)E, n, n_past, n_head, hd);
        /* f32 scores, online softmax and sums over the keys (the cache values as stored): 1e-5 of
         * sum p|v|; the f16 kernels also round q and the products' partial sums: 1e-3 */
        double tol = kvt == GPT2_F16 ? 1e-3 : 1e-5;
        report(t, op, vname, gpt2_dtype_name(kvt), shape, compare(out, ref, scale, (size_t)n * E, tol, 1e-6),
               tol, "rel. sum p*|v|", t0);
    } else {
        report_setup(t, op, vname, gpt2_dtype_name(kvt), shape, t0);
    }
    vk_ops_set_subgroup(t->o, -1);
    vk_mem_free(t->e, &bq);
    vk_mem_free(t->e, &bk);
    vk_mem_free(t->e, &bv);
    vk_mem_free(t->e, &bo);
    vk_mem_free(t->e, &bs);
    free(qkv);
    free(kf);
    free(vf);
    free(k0);
    free(v0);
    free(out);
    free(ref);
    free(scale);
}

static void all_attention(st *t)
{
    struct {
        const char *label;
        int H, hd;
    } sh[] = {{"124M", 12, 64}, {"1558M", 25, 64}, {"odd", 3, 40}};
    const int past_q[] = {0, 37, 1000}, past_f[] = {0, 1, 37, 300, 1000};
    const int *past = t->quick ? past_q : past_f;
    int n_past = t->quick ? 3 : 5;
    bool sg_runs = vk_ops_variant_runs(t->o, "subgroup");
    for (size_t si = 0; si < sizeof sh / sizeof *sh; si++)
        for (int kt = 0; kt < 2; kt++) {
            gpt2_dtype kvt = kt ? GPT2_F16 : GPT2_F32;
            if (t->quick && si == 1 && kvt == GPT2_F32) continue;
            for (int pi = 0; pi < n_past; pi++) {
                for (int sg = 0; sg <= (sg_runs ? 1 : 0); sg++)
                    case_attention(t, sg, kvt, sh[si].H, sh[si].hd, 1, past[pi], sh[si].label);
                if (past[pi] + 23 <= N_CTX)
                    case_attention(t, false, kvt, sh[si].H, sh[si].hd, past[pi] > 300 ? 7 : 23, past[pi],
                                   sh[si].label);
            }
        }
}

/* ---- argmax, sampling ---- */

static void case_argmax(st *t, int n, int rows)
{
    double t0 = now_ms();
    char shape[64];
    snprintf(shape, sizeof shape, "%d x %d", rows, n);
    float *x = rnd_floats(t, (size_t)n * rows, -10, 10);
    uint32_t got[8] = {0};
    vk_mem bx = {0}, bo = {0};
    bool ok = x && rows <= 8 && dbuf(t, &bx, (size_t)n * rows * 4, x) == 0 && dbuf(t, &bo, 8 * 4, NULL) == 0;
    if (ok) {
        vk_seq_begin(t->s);
        vk_op_argmax_rows(t->o, t->s, bo.addr, bx.addr, n, rows);
        ok = run_seq(t) == 0 && get(t, &bo, got, (size_t)rows * 4) == 0;
    }
    if (ok) {
        cmp c = {0, true};
        for (int r = 0; r < rows; r++) {
            if (got[r] != (uint32_t)ref64_argmax(x + (size_t)r * n, n)) {
                c.pass = false;
                c.worst += 1;
            }
        }
        report(t, "argmax", "plain", "f32", shape, c, 0, "exact (wrong rows)", t0);
    } else {
        report_setup(t, "argmax", "plain", "f32", shape, t0);
    }
    vk_mem_free(t->e, &bx);
    vk_mem_free(t->e, &bo);
    free(x);
}

/* GPU draws against core/sampler.c's on the same logits, seed and step: the same counter-based
 * uniform, so they agree but for f32 sums in another order at a boundary (at most 1 in 40). */
static void case_sample(st *t, int n)
{
    double t0 = now_ms();
    char shape[64];
    snprintf(shape, sizeof shape, "%d, 3 settings x 16 draws", n);
    float *x = rnd_floats(t, (size_t)n, -4, 4), *row = malloc((size_t)n * 4 + 16);
    vk_mem bx = {0}, bo = {0}, bp = {0};
    bool ok = x && row && dbuf(t, &bx, (size_t)n * 4, x) == 0;
    ok = ok && vk_mem_alloc(t->e, &bo, 16, VKE_MEM_HOST, t->err, sizeof t->err) == 0;
    ok = ok && vk_mem_alloc(t->e, &bp, sizeof(vk_sample_params), VKE_MEM_HOST, t->err, sizeof t->err) == 0;
    int draws = 0, differ = 0, outside = 0;
    if (ok) {
        vk_seq_begin(t->s);
        vk_op_sample(t->o, t->s, bo.addr, bx.addr, bp.addr, n);
        ok = vk_seq_end(t->s) == 0;
    }
    const struct {
        float temp;
        int top_k;
        float top_p;
    } cfg[] = {{0.9f, 40, 0.9f}, {1.0f, 256, 1.0f}, {1.5f, 7, 0.5f}};
    for (size_t c = 0; ok && c < sizeof cfg / sizeof *cfg; c++) {
        gpt2_sampler_params sp = {.temp = cfg[c].temp,
                                  .top_k = cfg[c].top_k,
                                  .top_p = cfg[c].top_p,
                                  .repeat_penalty = 1.0f,
                                  .seed = t->rng ^ c};
        gpt2_sampler *cs = gpt2_sampler_create(&sp, n);
        ok = cs != NULL;
        for (uint32_t step = 0; ok && step < 16; step++) {
            vk_sample_params p = {.temp = sp.temp,
                                  .top_k = (uint32_t)sp.top_k,
                                  .top_p = sp.top_p,
                                  .step = step,
                                  .seed_lo = (uint32_t)sp.seed,
                                  .seed_hi = (uint32_t)(sp.seed >> 32)};
            memcpy(bp.map, &p, sizeof p);
            if (vk_seq_run(t->s)) {
                snprintf(t->err, sizeof t->err, "the recorded sequence failed");
                ok = false;
                break;
            }
            int32_t gpu = *(const int32_t *)bo.map;
            memcpy(row, x, (size_t)n * 4);
            int32_t cpu = gpt2_sampler_pick(cs, row, NULL, 0, step);
            outside += gpu < 0 || gpu >= n || ref64_rank(x, n, gpu) >= sp.top_k;
            differ += gpu != cpu;
            draws++;
        }
        gpt2_sampler_free(cs);
    }
    if (ok) {
        cmp c = {draws ? (double)differ / draws : 0, outside == 0 && differ * 40 <= draws};
        report(t, "sample", "top-k/top-p", "f32", shape, c, 1.0 / 40,
               "draws unlike the CPU's (none outside top-k)", t0);
    } else {
        report_setup(t, "sample", "top-k/top-p", "f32", shape, t0);
    }
    vk_mem_free(t->e, &bx);
    vk_mem_free(t->e, &bo);
    vk_mem_free(t->e, &bp);
    free(x);
    free(row);
}

/* ---- the guard's checks ---- */

static void guard_checks(st *t)
{
    for (int i = 0; i < VKOPS_GUARD_N; i++) {
        const char *v = vk_guard_variant(i);
        if (!vk_ops_variant_runs(t->o, v)) continue;
        double t0 = now_ms(), ratio = 0;
        char err[200];
        if (vk_guard_check(t->e, t->o, v, &ratio, err, sizeof err)) {
            snprintf(t->err, sizeof t->err, "%.255s", err);
            report_setup(t, "guard check", v, "-", "small problem vs plain path", t0);
            continue;
        }
        cmp c = {ratio, ratio <= 1.0};
        report(t, "guard check", v, "-", "small problem vs plain path", c, 1.0,
               "error over the guard's tolerance", t0);
    }
}

/* ---- end to end ---- */

/* A synthetic model: Vulkan against the CPU backend on the logits of a prompt (every row), then
 * greedy ids. A greedy divergence passes only at a near tie: where the CPU's two best logits lie
 * within the logit tolerance of each other. */
static void case_end_to_end(st *t, const char *device, const char *size, const char *type, double tol)
{
    double t0 = now_ms();
    char shape[64], dir[64], path[128], err[512];
    snprintf(shape, sizeof shape, "synth %s, 12-token prompt, 12 greedy", size);
    snprintf(dir, sizeof dir, "/tmp/vkgpt2-selftest-XXXXXX");
    const char *op = "end to end";
    if (!mkdtemp(dir)) {
        snprintf(t->err, sizeof t->err, "cannot make a temporary directory");
        report_setup(t, op, "logits+greedy", type, shape, t0);
        return;
    }
    snprintf(path, sizeof path, "%s/model.bin", dir);
    vkg_synth_params p = {.size = size, .format = "ggml", .type = type, .seed = t->rng | 1};
    vkg_model *m = NULL;
    vkg_session *sc = NULL, *sv = NULL;
    float *lc = NULL, *lv = NULL;
    int32_t *gc = NULL, *gv = NULL;
    size_t nc = 0, nv_ = 0;
    enum { NP = 12, NG = 12 };
    int32_t prompt[NP + NG];
    bool ok = vkg_synth(path, &p, 0, err, sizeof err) == 0 && (m = vkg_model_load(path, err, sizeof err));
    unlink(path);
    rmdir(dir);
    size_t V = ok ? (size_t)vkg_model_get_info(m).n_vocab : 0;
    if (ok) {
        for (int i = 0; i < NP; i++) prompt[i] = (int32_t)(rnd(t, 0, 1) * (float)(V - 1));
        lc = malloc(NP * V * sizeof *lc);
        lv = malloc(NP * V * sizeof *lv);
        vkg_session_params sp = vkg_session_defaults();
        sp.backend = VKG_BACKEND_CPU;
        sp.kv = VKG_KV_F32;
        ok = lc && lv && (sc = vkg_session_create(m, &sp, err, sizeof err));
        sp.backend = VKG_BACKEND_VULKAN;
        sp.device_name = device;
        ok = ok && (sv = vkg_session_create(m, &sp, err, sizeof err));
        ok = ok && vkg_eval(sc, prompt, NP, lc, err, sizeof err) == 0 &&
            vkg_eval(sv, prompt, NP, lv, err, sizeof err) == 0;
    }
    double lo = INFINITY, hi = -INFINITY, worst = 0;
    if (ok) {
        for (size_t i = 0; i < NP * V; i++) {
            lo = fmin(lo, lc[i]);
            hi = fmax(hi, lc[i]);
            double d = fabs((double)lc[i] - lv[i]);
            if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
        }
        vkg_session_reset(sc);
        vkg_session_reset(sv);
        vkg_sample_params gp = vkg_sample_defaults();
        gp.temp = 0;
        gp.n_predict = NG;
        gp.ignore_eos = true;
        ok = vkg_generate(sc, prompt, NP, &gp, NULL, NULL, &gc, &nc, NULL, err, sizeof err) == 0 &&
            vkg_generate(sv, prompt, NP, &gp, NULL, NULL, &gv, &nv_, NULL, err, sizeof err) == 0;
    }
    if (ok) {
        double range = hi - lo > 0 ? hi - lo : 1;
        cmp c = {worst / range, worst <= tol * range};
        report(t, op, "logits", type, shape, c, tol, "rel. the CPU logits' range", t0);
        t0 = now_ms();
        size_t same = 0;
        while (same < nc && same < nv_ && gc[same] == gv[same]) same++;
        cmp g = {0, same == nc && nc == nv_};
        if (!g.pass && same < nc && same < nv_) {
            /* the CPU's logits at the divergence: a near tie passes */
            memcpy(prompt + NP, gc, same * sizeof *gc);
            float *last = malloc(V * sizeof *last), *all = malloc((NP + same) * V * sizeof *all);
            vkg_session_reset(sc);
            if (last && all && vkg_eval(sc, prompt, NP + same, all, err, sizeof err) == 0) {
                memcpy(last, all + (NP + same - 1) * V, V * sizeof *last);
                float a = last[gc[same]], b = last[gv[same]];
                g.worst = fabs((double)a - b) / range;
                g.pass = g.worst <= tol;
            }
            free(last);
            free(all);
        }
        char gshape[96];
        snprintf(gshape, sizeof gshape, "%s: %zu of %zu ids alike", shape, same, nc);
        report(t, op, "greedy ids", type, gshape, g, tol, "identical, or a near tie (gap rel. range)", t0);
    } else {
        snprintf(t->err, sizeof t->err, "%.255s", err);
        report_setup(t, op, "logits+greedy", type, shape, t0);
    }
    vkg_free(gc);
    vkg_free(gv);
    free(lc);
    free(lv);
    vkg_session_free(sc);
    vkg_session_free(sv);
    vkg_model_free(m);
}

/* ---- the run ---- */

int vkg_selftest(const vkg_selftest_params *p, vkg_selftest_cb cb, void *user, vkg_selftest_summary *sum,
                 char *err, size_t errlen)
{
    double t0 = now_ms();
    memset(sum, 0, sizeof *sum);
    st t = {.cb = cb, .user = user, .sum = sum, .quick = p->quick};
    t.rng = p->seed ? p->seed : (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + (uint64_t)getpid();
    sum->seed = t.rng;
    t.rng = ref64_rng_seed(t.rng);
    if (vk_engine_create_named(&t.e, p->device, err, errlen)) return -1;
    const vk_caps *c = vk_engine_caps(t.e);
    snprintf(sum->device, sizeof sum->device, "%s", c->name);
    snprintf(sum->driver, sizeof sum->driver, "%s", c->driver);
    snprintf(sum->emulated, sizeof sum->emulated, "%s", c->emulated);
    sum->subgroup_size = (int)c->subgroup_size;
    if (!(t.o = vk_ops_create(t.e, err, errlen)) || !(t.s = vk_seq_create(t.e, 64)) ||
        vk_mem_alloc(t.e, &t.step, sizeof(vk_step_params), VKE_MEM_HOST, err, errlen)) {
        if (!err[0]) snprintf(err, errlen, "selftest: cannot set up the device");
        vk_seq_destroy(t.s);
        vk_ops_destroy(t.o);
        vk_engine_destroy(t.e);
        return -1;
    }
    guard_checks(&t);
    all_matmuls(&t);
    bool sg_runs = vk_ops_variant_runs(t.o, "subgroup");
    const int ln_d[] = {768, 1600, 97};
    for (int i = 0; i < 3; i++)
        for (int sg = 0; sg <= (sg_runs ? 1 : 0); sg++) {
            case_layernorm(&t, sg, 5, ln_d[i]);
            case_softmax(&t, sg, 3, i == 0 ? 1024 : ln_d[i]);
        }
    case_elementwise(&t, false, 0, 3 * 4 * 768 + 5);
    case_elementwise(&t, false, 1, 4 * 1600 + 3);
    case_elementwise(&t, true, 0, 768 * 7 + 1);
    static const gpt2_dtype et[] = {GPT2_F32, GPT2_F16, GPT2_Q8_0, GPT2_Q4_0};
    for (int i = 0; i < 4; i++) {
        case_embed(&t, et[i], 768, 5, 3);
        if (!p->quick) case_embed(&t, et[i], 1600, 1, 1000);
    }
    all_attention(&t);
    case_argmax(&t, N_VOCAB, 1);
    case_argmax(&t, 1001, 3);
    case_sample(&t, N_VOCAB);
    int validation = vk_validation_messages(t.e);
    /* the sessions of the end-to-end cases run on this very device: named by its deviceUUID */
    char uuid[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", c->device_uuid[i]);
    vk_mem_free(t.e, &t.step);
    vk_seq_destroy(t.s);
    vk_ops_destroy(t.o);
    vk_engine_destroy(t.e);
    /* end to end: the sessions make their own engines */
    case_end_to_end(&t, uuid, "tiny", "f32", 1e-4);
    case_end_to_end(&t, uuid, "tiny", "f16", 1e-3);
    if (!p->quick) case_end_to_end(&t, uuid, "124M", "f16", 1e-3);
    sum->validation_messages = validation;
    sum->total_ms = now_ms() - t0;
    return 0;
}
