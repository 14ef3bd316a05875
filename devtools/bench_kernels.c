/* bench_kernels.c - vkg_bench_kernels (vkgpt2.h): every GPT-2 op at the shapes of a GPT-2 size, on
 * the CPU kernels (cpu_ops.h, host clock) and the Vulkan wrappers (vk_ops.h, device timestamps),
 * with warm-up and repeats; bytes and flops as the profiles count them. Weights are random. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devtools.h"
#include "vkgpt2.h"

#include "cpu/cpu_ops.h"
#include "cpu/cpu_peak.h"
#include "vkengine/vk_engine.h"
#include "vulkan/vk_ops.h"
#include "vkengine/vk_profile.h"
#include "core/clock.h"
#include "core/synth.h"

#define N_VOCAB 50257
#define N_CTX 1024
#define TILE_N 64
#define SLOW_MS 250.0 /* an op whose first run takes longer is timed once more, not repeat times */

/* The sizes benchmarked are core's GPT-2 sizes from 124M up (synth.h). */
typedef gpt2_size_info shape;

/* One benchmark case. */
typedef enum kind { K_LAYERNORM, K_EMBED, K_MATMUL, K_ATTN, K_ARGMAX, K_SAMPLE } kind;
typedef struct bcase {
    kind k;
    const char *op;    /* row name */
    int rows, cols, n; /* matmul: W [rows][cols], n tokens; attention: n tokens */
    int epi;           /* matmul epilogue */
    int n_past;        /* attention */
} bcase;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int make_cases(int E, bcase *c)
{
    int n = 0;
    const struct {
        const char *name;
        int rows, cols, epi;
    } mm[] = {{"qkv", 3 * E, E, 1},
              {"proj", E, E, 5},
              {"fc", 4 * E, E, 1},
              {"fc2", E, 4 * E, 5},
              {"lm_head", N_VOCAB, E, 0}};
    c[n++] = (bcase){K_LAYERNORM, "layernorm", 0, E, 1, 0, 0};
    c[n++] = (bcase){K_EMBED, "embed", 0, E, 1, 0, 0};
    static char names[2][5][32];
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 5; i++) {
            snprintf(names[t][i], sizeof names[t][i], "matmul.%s n=%d", mm[i].name, t ? TILE_N : 1);
            c[n++] = (bcase){K_MATMUL, names[t][i], mm[i].rows, mm[i].cols, t ? TILE_N : 1, mm[i].epi, 0};
        }
    c[n++] = (bcase){K_MATMUL, "matmul.fc+gelu n=1", 4 * E, E, 1, 3, 0};
    static const int past[] = {0, 256, 1023};
    static char an[3][32];
    for (int i = 0; i < 3; i++) {
        snprintf(an[i], sizeof an[i], "attention decode n_past=%d", past[i]);
        c[n++] = (bcase){K_ATTN, an[i], 0, E, 1, 0, past[i]};
    }
    c[n++] = (bcase){K_ATTN, "attention prefill n=64", 0, E, TILE_N, 0, 0};
    c[n++] = (bcase){K_ARGMAX, "argmax", 0, N_VOCAB, 1, 0, 0};
    c[n++] = (bcase){K_SAMPLE, "sample top-k 40", 0, N_VOCAB, 1, 0, 0};
    return n;
}

/* Bytes and flops of a case (as the profiles count them). */
static void case_cost(const bcase *c, int E, gpt2_dtype wt, double *bytes, double *flops)
{
    double w = (double)gpt2_dtype_size(wt), N = c->n;
    switch (c->k) {
    case K_LAYERNORM:
        *bytes = N * E * 8 + E * 8;
        *flops = N * E * 8;
        break;
    case K_EMBED:
        *bytes = N * E * (2 * w + 4);
        *flops = N * E;
        break;
    case K_MATMUL:
        *bytes = (double)c->rows * c->cols * w + N * c->cols * 4 + N * c->rows * ((c->epi & 4) ? 8 : 4) +
            ((c->epi & 1) ? c->rows * 4.0 : 0);
        *flops = 2 * N * c->rows * c->cols;
        break;
    case K_ATTN: {
        double keys = c->n_past + N;
        *bytes = N * E * 16 + keys * E * 2 * 2; /* f16 cache */
        *flops = 4.0 * E * (N * c->n_past + N * (N + 1) / 2);
        break;
    }
    default:
        *bytes = (double)c->cols * 4;
        *flops = c->cols;
        break;
    }
}

static void fill_rand(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        x[i] = (float)((double)(seed >> 40) / (double)(1ull << 24) - 0.5) * 0.2f;
    }
}

/* Random weights of type wt, n elements (malloc'd). */
static void *make_weights(gpt2_dtype wt, size_t n, uint64_t seed)
{
    float *f = malloc(n * sizeof *f);
    if (!f) return NULL;
    fill_rand(f, n, seed);
    if (wt == GPT2_F32) return f;
    uint16_t *h = malloc(n * sizeof *h);
    if (h)
        for (size_t i = 0; i < n; i++) h[i] = gpt2_f32_to_f16(f[i]);
    free(f);
    return h;
}

static void report(const vkg_bench_kernels_params *p, vkg_bench_row_cb cb, void *user, const char *backend,
                   const char *device, const shape *sh, gpt2_dtype wt, const bcase *c, double *ms, int reps,
                   double peak_gbs, double peak_gflops)
{
    qsort(ms, (size_t)reps, sizeof *ms, cmp_d);
    vkg_bench_row r = {0};
    r.backend = backend;
    r.device = device;
    r.size = sh->name;
    r.op = c->op;
    r.weight_type = gpt2_dtype_name(wt);
    r.median_ms = ms[reps / 2];
    r.min_ms = ms[0];
    r.max_ms = ms[reps - 1];
    r.repeats = reps;
    case_cost(c, sh->n_embd, wt, &r.bytes, &r.flops);
    r.gbs = r.median_ms > 0 ? r.bytes / (r.median_ms * 1e6) : 0;
    r.gflops = r.median_ms > 0 ? r.flops / (r.median_ms * 1e6) : 0;
    r.peak_gbs = peak_gbs;
    r.peak_gflops = peak_gflops;
    (void)p;
    cb(user, &r);
}

/* ---- CPU ---- */

static int bench_cpu(const vkg_bench_kernels_params *p, const shape *sh, gpt2_dtype wt, vkg_bench_row_cb cb,
                     void *user, char *err, size_t errlen)
{
    int E = sh->n_embd, H = sh->n_head;
    cpu_pool *pool = cpu_pool_create(p->n_threads);
    double gbs, gfl;
    char note[256], dev[128];
    cpu_measure_peaks(pool, &gbs, &gfl, note, sizeof note);
    snprintf(dev, sizeof dev, "CPU (%s, %d threads)", cpu_isa_name(cpu_isa_active()), cpu_pool_threads(pool));
    bcase cs[32];
    int nc = make_cases(E, cs), rc = -1;
    size_t big = (size_t)N_VOCAB * E;
    float *x = malloc((size_t)TILE_N * 4 * E * sizeof *x), *y = malloc((size_t)TILE_N * N_VOCAB * sizeof *y);
    float *g = malloc((size_t)4 * E * sizeof *g), *kc = calloc((size_t)N_CTX * E, 2),
          *vc = calloc((size_t)N_CTX * E, 2);
    float *qkv = malloc((size_t)TILE_N * 3 * E * sizeof *qkv);
    void *w = make_weights(wt, big, 7), *wpe = make_weights(wt, (size_t)N_CTX * E, 9);
    int32_t ids[TILE_N];
    double *ms = malloc((size_t)p->repeat * sizeof *ms);
    if (!x || !y || !g || !kc || !vc || !qkv || !w || !wpe || !ms) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    fill_rand(x, (size_t)TILE_N * 4 * E, 3);
    fill_rand(g, (size_t)4 * E, 5);
    fill_rand(qkv, (size_t)TILE_N * 3 * E, 11);
    for (int i = 0; i < TILE_N; i++) ids[i] = (i * 7919) % N_VOCAB;
    for (int i = 0; i < nc; i++) {
        const bcase *c = &cs[i];
        if (c->k == K_SAMPLE) continue; /* the CPU backend samples on the host sampler: not a kernel */
        gpt2_tensor W = {.type = wt,
                         .ne = {c->cols, c->rows},
                         .data = w,
                         .nbytes = (size_t)c->cols * c->rows * gpt2_dtype_size(wt)};
        gpt2_tensor wte = {.type = wt, .ne = {E, N_VOCAB}, .data = w, .nbytes = big * gpt2_dtype_size(wt)};
        gpt2_tensor wp = {
            .type = wt, .ne = {E, N_CTX}, .data = wpe, .nbytes = (size_t)N_CTX * E * gpt2_dtype_size(wt)};
        int reps = p->repeat;
        for (int r = -p->warmup; r < reps; r++) {
            double t = gpt2_clock_ms();
            switch (c->k) {
            case K_LAYERNORM: cpu_layernorm(y, x, g, g, c->n, E, 1e-5f); break;
            case K_EMBED: cpu_embed(y, &wte, &wp, ids, c->n, 0); break;
            case K_MATMUL: cpu_matmul(y, c->rows, x, c->cols, &W, g, c->n, c->epi & 3, 0, pool); break;
            case K_ATTN:
                cpu_attention(y, qkv, kc, vc, GPT2_F16, N_CTX, c->n, c->n_past, H, E / H, pool);
                break;
            case K_ARGMAX: cpu_argmax(y, N_VOCAB); break;
            default: break;
            }
            double dt = gpt2_clock_ms() - t;
            if (r >= 0) ms[r] = dt;
            if (r == -p->warmup && dt > SLOW_MS) {
                reps = 1;
                if (r < 0) r = -1;
            } /* keep default runs short */
        }
        report(p, cb, user, "cpu", dev, sh, wt, c, ms, reps, gbs, gfl);
    }
    rc = 0;
out:
    free(x);
    free(y);
    free(g);
    free(kc);
    free(vc);
    free(qkv);
    free(w);
    free(wpe);
    free(ms);
    cpu_pool_destroy(pool);
    return rc;
}

/* ---- Vulkan ---- */

static int bench_vk(const vkg_bench_kernels_params *p, const shape *sh, gpt2_dtype wt, vkg_bench_row_cb cb,
                    void *user, char *err, size_t errlen)
{
    int E = sh->n_embd, H = sh->n_head, rc = -1;
    vk_engine *e = NULL;
    vk_ops *o = NULL;
    vk_seq *s = NULL;
    enum { B_W, B_WPE, B_X, B_Y, B_G, B_KC, B_VC, B_QKV, B_SCR, B_STEP, B_IDS, B_OUT, B_SP, B_N };
    vk_mem m[B_N];
    memset(m, 0, sizeof m);
    double *ms = malloc((size_t)p->repeat * sizeof *ms);
    if (!ms) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (vk_engine_create_sel(&e, p->device, p->device_name, err, errlen) ||
        !(o = vk_ops_create(e, err, errlen)))
        goto out;
    double gbs = 0, gfl = 0;
    char note[512];
    vk_measure_peaks(e, &gbs, &gfl, note, sizeof note);
    const char *dev = vk_engine_caps(e)->name;
    size_t big = (size_t)N_VOCAB * E, ws = gpt2_dtype_size(wt);
    size_t sizes[B_N] = {big * ws,
                         (size_t)N_CTX * E * ws,
                         (size_t)TILE_N * 4 * E * 4,
                         (size_t)TILE_N * N_VOCAB * 4,
                         (size_t)4 * E * 4,
                         (size_t)N_CTX * E * 2,
                         (size_t)N_CTX * E * 2,
                         (size_t)TILE_N * 3 * E * 4,
                         vk_attention_scratch_bytes(H, E / H, N_CTX),
                         sizeof(vk_step_params),
                         TILE_N * 4,
                         64,
                         sizeof(vk_sample_params)};
    for (int i = 0; i < B_N; i++) {
        vk_mem_kind kind = i == B_STEP || i == B_IDS || i == B_SP ? VKE_MEM_HOST : VKE_MEM_DEVICE;
        if (vk_mem_alloc(e, &m[i], sizes[i], kind, err, errlen)) goto out;
        if (kind == VKE_MEM_DEVICE) vk_fill_zero(e, &m[i], 0, sizes[i]);
    }
    void *w = make_weights(wt, big, 7);
    float *hx = malloc((size_t)TILE_N * 4 * E * 4);
    if (!w || !hx) {
        free(w);
        free(hx);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    vk_upload(e, &m[B_W], 0, w, big * ws);
    vk_upload(e, &m[B_WPE], 0, w, (size_t)N_CTX * E * ws);
    fill_rand(hx, (size_t)TILE_N * 4 * E, 3);
    vk_upload(e, &m[B_X], 0, hx, (size_t)TILE_N * 4 * E * 4);
    vk_upload(e, &m[B_QKV], 0, hx, (size_t)TILE_N * 3 * E * 4);
    vk_upload(e, &m[B_G], 0, hx, (size_t)4 * E * 4);
    vk_upload(e, &m[B_Y], 0, hx, (size_t)TILE_N * 4 * E * 4);
    free(w);
    free(hx);
    int32_t *ids = m[B_IDS].map;
    for (int i = 0; i < TILE_N; i++) ids[i] = (i * 7919) % N_VOCAB;
    vk_sample_params spp = {.temp = 0.9f, .top_k = 40, .top_p = 0.9f, .seed_lo = 1};
    memcpy(m[B_SP].map, &spp, sizeof spp);
    bcase cs[32];
    int nc = make_cases(E, cs);
    s = vk_seq_create(e, 8);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < nc; i++) {
        const bcase *c = &cs[i];
        vk_step_params st = {.n_past = (uint32_t)c->n_past, .n = (uint32_t)c->n};
        memcpy(m[B_STEP].map, &st, sizeof st);
        vk_seq_set_timing(s, true);
        vk_seq_begin(s);
        switch (c->k) {
        case K_LAYERNORM:
            vk_op_layernorm(o, s, m[B_Y].addr, m[B_X].addr, m[B_G].addr, m[B_G].addr, c->n, E, 1e-5f);
            break;
        case K_EMBED:
            vk_op_embed(o, s, m[B_Y].addr, m[B_W].addr, wt, m[B_WPE].addr, wt, m[B_IDS].addr, m[B_STEP].addr,
                        c->n, E);
            break;
        case K_MATMUL:
            vk_op_matmul(o, s, m[B_Y].addr, c->rows, m[B_X].addr, c->cols, m[B_W].addr, wt, c->rows, c->cols,
                         m[B_G].addr, c->n, c->epi & 3, 0);
            break;
        case K_ATTN:
            if (c->n > 1) {
                vk_op_kv_store(o, s, m[B_KC].addr, m[B_VC].addr, GPT2_F16, m[B_QKV].addr, m[B_STEP].addr,
                               c->n, E);
                vk_seq_barrier(s);
            }
            vk_op_attention(o, s, m[B_Y].addr, m[B_QKV].addr, m[B_KC].addr, m[B_VC].addr, GPT2_F16,
                            m[B_STEP].addr, c->n, H, E / H, N_CTX, m[B_SCR].addr);
            break;
        case K_ARGMAX: vk_op_argmax(o, s, m[B_OUT].addr, m[B_Y].addr, N_VOCAB); break;
        case K_SAMPLE: vk_op_sample(o, s, m[B_OUT].addr, m[B_Y].addr, m[B_SP].addr, N_VOCAB); break;
        }
        if (vk_seq_end(s)) {
            snprintf(err, errlen, "bench kernels: recording %s failed", c->op);
            goto out;
        }
        int reps = p->repeat;
        for (int r = -p->warmup; r < reps; r++) {
            if (vk_seq_run(s)) {
                snprintf(err, errlen, "bench kernels: %s failed on the device", c->op);
                goto out;
            }
            double t[8];
            int nt = vk_seq_timings(s, t, NULL, 8);
            double sum = 0;
            for (int k = 0; k < nt; k++) sum += t[k];
            if (r >= 0) ms[r] = sum;
            if (r == -p->warmup && sum > SLOW_MS) {
                reps = 1;
                if (r < 0) r = -1;
            } /* keep default runs short */
        }
        report(p, cb, user, "vulkan", dev, sh, wt, c, ms, reps, gbs, gfl);
    }
    rc = 0;
out:
    vk_seq_destroy(s);
    if (e)
        for (int i = 0; i < B_N; i++)
            if (m[i].size) vk_mem_free(e, &m[i]);
    vk_ops_destroy(o);
    vk_engine_destroy(e);
    free(ms);
    return rc;
}

int vkg_bench_kernels(const vkg_bench_kernels_params *p, vkg_bench_row_cb cb, void *user, char *err,
                      size_t errlen)
{
    vkg_bench_kernels_params q = *p;
    if (q.repeat < 1) q.repeat = 5;
    if (q.warmup < 0) q.warmup = 0;
    const char *sizes = q.sizes && *q.sizes ? q.sizes : "124M";
    gpt2_dtype wt = q.weight_type && !strcmp(q.weight_type, "f32") ? GPT2_F32 : GPT2_F16;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", sizes);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const shape *sh = NULL;
        for (int i = GPT2_SYNTH_124M; i < GPT2_SYNTH_CUSTOM; i++)
            if (!strcmp(gpt2_sizes[i].name, tok)) sh = &gpt2_sizes[i];
        if (!sh) {
            snprintf(err, errlen, "bench kernels: --sizes: '%s' is not 124M, 355M, 774M or 1558M", tok);
            return -1;
        }
        if ((q.backends & 1) && bench_cpu(&q, sh, wt, cb, user, err, errlen)) return -1;
        if ((q.backends & 2) && bench_vk(&q, sh, wt, cb, user, err, errlen)) return -1;
    }
    return 0;
}
