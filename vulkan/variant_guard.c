/* variant_guard.c - checks a guarded kernel variant once per device and driver (variant_guard.h). */
#include "variant_guard.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/notice.h"
#include "core/outfile.h"
#include "vkengine/vk_fault.h"
#include "vkengine/vk_select.h"

static const char *const names[VKOPS_GUARD_N] = {"subgroup", "coopmat_nv", "coopmat_khr"};

const char *vk_guard_variant(int i) { return i >= 0 && i < VKOPS_GUARD_N ? names[i] : NULL; }

int vk_guard_parse(const char *s, int force[VKOPS_GUARD_N], char *err, size_t errlen)
{
    for (int i = 0; i < VKOPS_GUARD_N; i++) force[i] = 0;
    if (!s) return 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, ",");
        int sign = +1;
        const char *name = p;
        size_t nlen = len;
        if (nlen > 0 && (*name == '+' || *name == '-')) {
            sign = *name == '-' ? -1 : +1;
            name++;
            nlen--;
        }
        bool all = nlen == 3 && strncmp(name, "all", 3) == 0, found = all;
        for (int i = 0; i < VKOPS_GUARD_N; i++)
            if (all || (strlen(names[i]) == nlen && strncmp(name, names[i], nlen) == 0)) {
                force[i] = sign;
                found = true;
            }
        if (!found) {
            snprintf(err, errlen,
                     "VKGPT2_VARIANTS: '%.*s' is not [+|-]subgroup, coopmat_nv, "
                     "coopmat_khr or all",
                     (int)(len > 40 ? 40 : len), p);
            return -1;
        }
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

void vk_guard_cache_path(const vk_engine *e, char *path, size_t len)
{
    path[0] = '\0';
    const char *pc = vk_pipeline_cache_path(e);
    const char *slash = pc ? strrchr(pc, '/') : NULL;
    if (!slash || len < 1) return;
    const vk_caps *c = vk_engine_caps(e);
    char uuid[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", c->device_uuid[i]);
    int n = snprintf(path, len, "%.*s/variants-%s-%08x.txt", (int)(slash - pc), pc, uuid, c->driver_version);
    if (n < 0 || (size_t)n >= len) path[0] = '\0';
}

/* ---- the checks ---- */

/* xorshift64 over [-1, 1), never zero */
static float rnd(uint64_t *s)
{
    float v;
    do {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        v = (float)((double)(*s >> 11) * (2.0 / 9007199254740992.0) - 1.0);
    } while (v == 0.0f);
    return v;
}

/* One problem: device buffers for in (the inputs, uploaded once) and out (n_out floats). */
typedef struct problem {
    vk_engine *e;
    vk_mem in, out;
    size_t n_out;
} problem;

/* Records the op through rec into a fresh sequence, runs it and downloads out. */
static int run_once(problem *pb, vk_ops *o, void (*rec)(vk_ops *, vk_seq *, const problem *, void *),
                    void *ctx, float *y, char *err, size_t errlen)
{
    vk_seq *s = vk_seq_create(pb->e, 16);
    if (!s) {
        snprintf(err, errlen, "cannot create a command sequence");
        return -1;
    }
    vk_seq_begin(s);
    rec(o, s, pb, ctx);
    int rc = vk_seq_end(s) || vk_seq_run(s) ? -1 : 0;
    vk_seq_destroy(s);
    if (rc == 0) rc = vk_download(pb->e, &pb->out, 0, y, pb->n_out * sizeof *y);
    if (rc) snprintf(err, errlen, "the check's run failed");
    return rc;
}

/* matvec / matmul: W [rows][cols] (f32 or f16) then x [n][cols] f32, in pb->in. */
typedef struct mm_ctx {
    int rows, cols, n;
    gpt2_dtype wt;
    size_t w_bytes;
    const char *force; /* matmul variant forced for the run */
} mm_ctx;

static void rec_mm(vk_ops *o, vk_seq *s, const problem *pb, void *ctx)
{
    mm_ctx *m = ctx;
    vk_ops_force_matmul(o, m->force);
    vk_op_matmul(o, s, pb->out.addr, m->rows, pb->in.addr + m->w_bytes, m->cols, pb->in.addr, m->wt, m->rows,
                 m->cols, 0, m->n, 0, 0);
    vk_ops_force_matmul(o, NULL);
}

/* layernorm (g, b, x) and softmax (x) over n rows of d */
typedef struct row_ctx {
    int n, d;
    bool softmax;
} row_ctx;

static void rec_rows(vk_ops *o, vk_seq *s, const problem *pb, void *ctx)
{
    row_ctx *r = ctx;
    if (r->softmax) {
        /* softmax works in place: copy x to out first */
        vk_seq_copy(s, &pb->in, 0, &pb->out, 0, (VkDeviceSize)r->n * r->d * sizeof(float));
        vk_op_softmax(o, s, pb->out.addr, r->n, r->d);
    } else {
        VkDeviceAddress g = pb->in.addr, b = g + (VkDeviceAddress)r->d * 4, x = b + (VkDeviceAddress)r->d * 4;
        vk_op_layernorm(o, s, pb->out.addr, x, g, b, r->n, r->d, 1e-5f);
    }
}

/* Runs rec twice, with the variant's setting `plain` and then `fast` applied by set, and returns
 * the worst |fast - plain| / (rtol * scale[i] + atol) over the outputs. */
typedef struct pair_run {
    void (*rec)(vk_ops *, vk_seq *, const problem *, void *);
    void *ctx;
    const double *scale; /* per output: the magnitude the tolerance is relative to */
    double rtol, atol;
} pair_run;

static int compare_runs(problem *pb, vk_ops *o, const char *variant, const pair_run *pr, mm_ctx *mm,
                        double *ratio, char *err, size_t errlen)
{
    float *y0 = malloc(pb->n_out * sizeof *y0), *y1 = malloc(pb->n_out * sizeof *y1);
    int rc = -1;
    if (!y0 || !y1) {
        snprintf(err, errlen, "out of host memory");
        goto done;
    }
    bool was = vk_ops_variant_on(o, variant);
    bool sub = strcmp(variant, "subgroup") == 0;
    /* the plain path: subgroup off, or the tiled matmul */
    if (sub) vk_ops_variant_enable(o, variant, false);
    if (mm) mm->force = sub ? NULL : "tiled";
    rc = run_once(pb, o, pr->rec, pr->ctx, y0, err, errlen);
    vk_ops_variant_enable(o, variant, true);
    if (mm) mm->force = sub ? NULL : variant;
    if (rc == 0) rc = run_once(pb, o, pr->rec, pr->ctx, y1, err, errlen);
    vk_ops_variant_enable(o, variant, was);
    if (rc == 0)
        for (size_t i = 0; i < pb->n_out; i++) {
            double d = fabs((double)y1[i] - (double)y0[i]);
            double r = d / (pr->rtol * pr->scale[i] + pr->atol);
            if (!(r <= *ratio)) /* NaN counts as the worst */
                *ratio = isnan(r) ? INFINITY : r;
        }
done:
    free(y0);
    free(y1);
    return rc;
}

static int problem_init(problem *pb, vk_engine *e, const void *in, size_t in_bytes, size_t n_out, char *err,
                        size_t errlen)
{
    memset(pb, 0, sizeof *pb);
    pb->e = e;
    pb->n_out = n_out;
    if (vk_mem_alloc(e, &pb->in, in_bytes, VKE_MEM_DEVICE, err, errlen)) return -1;
    if (vk_mem_alloc(e, &pb->out, n_out * sizeof(float), VKE_MEM_DEVICE, err, errlen)) {
        vk_mem_free(e, &pb->in);
        return -1;
    }
    if (vk_upload(e, &pb->in, 0, in, in_bytes)) {
        snprintf(err, errlen, "the check's upload failed");
        vk_mem_free(e, &pb->in);
        vk_mem_free(e, &pb->out);
        return -1;
    }
    return 0;
}

static void problem_free(problem *pb)
{
    vk_mem_free(pb->e, &pb->in);
    vk_mem_free(pb->e, &pb->out);
}

/* A matmul of n tokens through W [rows][cols] of type wt against the plain path. The tolerance:
 * the fast variant's bound against the f32 x plus the plain one's, times sum |x_i w_i| per row. */
static int check_matmul(vk_engine *e, vk_ops *o, const char *variant, int rows, int cols, int n,
                        gpt2_dtype wt, uint64_t *seed, double *ratio, char *err, size_t errlen)
{
    size_t nw = (size_t)rows * cols, nx = (size_t)n * cols, esz = wt == GPT2_F16 ? 2 : 4;
    size_t in_bytes = nw * esz + nx * 4, n_out = (size_t)n * rows;
    unsigned char *in = malloc(in_bytes);
    float *w = malloc(nw * sizeof *w);
    double *scale = malloc(n_out * sizeof *scale);
    int rc = -1;
    if (!in || !w || !scale) {
        snprintf(err, errlen, "out of host memory");
        goto done;
    }
    for (size_t i = 0; i < nw; i++) {
        float v = rnd(seed) * 0.1f;
        if (wt == GPT2_F16) {
            uint16_t h = gpt2_f32_to_f16(v);
            memcpy(in + 2 * i, &h, 2);
            v = gpt2_f16_to_f32(h);
        } else {
            memcpy(in + 4 * i, &v, 4);
        }
        w[i] = v;
    }
    float *x = (float *)(in + nw * esz);
    for (size_t i = 0; i < nx; i++) x[i] = rnd(seed);
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++)
                s += fabs((double)x[(size_t)t * cols + c] * w[(size_t)r * cols + c]);
            scale[(size_t)t * rows + r] = s;
        }
    problem pb;
    if (problem_init(&pb, e, in, in_bytes, n_out, err, errlen)) goto done;
    mm_ctx mm = {rows, cols, n, wt, nw * esz, NULL};
    vk_mm_accuracy fast = vk_matmul_accuracy(strcmp(variant, "subgroup") == 0 ? "matvec" : variant);
    vk_mm_accuracy plain = vk_matmul_accuracy("tiled");
    pair_run pr = {rec_mm, &mm, scale, fast.rtol_f32x + plain.rtol_f32x, fast.atol + plain.atol};
    rc = compare_runs(&pb, o, variant, &pr, &mm, ratio, err, errlen);
    problem_free(&pb);
done:
    free(in);
    free(w);
    free(scale);
    return rc;
}

/* layernorm or softmax over n rows of d: f32 arithmetic in both paths (a reduction in another
 * order), so 1e-5 of the magnitude of each output (layernorm: |g| |x_hat| + |b| + 1). */
static int check_rows(vk_engine *e, vk_ops *o, bool softmax, int n, int d, uint64_t *seed, double *ratio,
                      char *err, size_t errlen)
{
    size_t n_in = softmax ? (size_t)n * d : 2 * (size_t)d + (size_t)n * d, n_out = (size_t)n * d;
    float *in = malloc(n_in * sizeof *in);
    double *scale = malloc(n_out * sizeof *scale);
    int rc = -1;
    if (!in || !scale) {
        snprintf(err, errlen, "out of host memory");
        goto done;
    }
    for (size_t i = 0; i < n_in; i++) in[i] = rnd(seed) * (softmax ? 4.0f : 1.0f);
    for (size_t i = 0; i < n_out; i++) scale[i] = softmax ? 1.0 : 4.0; /* softmax outputs lie in [0, 1] */
    problem pb;
    if (problem_init(&pb, e, in, n_in * sizeof *in, n_out, err, errlen)) goto done;
    row_ctx rc_ = {n, d, softmax};
    pair_run pr = {rec_rows, &rc_, scale, softmax ? 1e-5 : 2e-5, 1e-7};
    rc = compare_runs(&pb, o, "subgroup", &pr, NULL, ratio, err, errlen);
    problem_free(&pb);
done:
    free(in);
    free(scale);
    return rc;
}

int vk_guard_check(vk_engine *e, vk_ops *o, const char *variant, double *ratio, char *err, size_t errlen)
{
    *ratio = 0;
    if (!vk_ops_variant_runs(o, variant)) {
        snprintf(err, errlen, "%s does not run on this device", variant);
        return -1;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)ratio;
    int rc;
    vk_fault_pause(true);
    if (strcmp(variant, "subgroup") == 0) {
        /* matvec f32 and f16 (odd row count, columns for the wide loads), layernorm, softmax */
        rc = check_matmul(e, o, variant, 67, 256, 1, GPT2_F32, &seed, ratio, err, errlen) ||
                check_matmul(e, o, variant, 45, 320, 3, GPT2_F16, &seed, ratio, err, errlen) ||
                check_rows(e, o, false, 3, 300, &seed, ratio, err, errlen) ||
                check_rows(e, o, true, 2, 500, &seed, ratio, err, errlen)
            ? -1
            : 0;
    } else {
        /* one 64 x 64 tile of tokens and rows, two k-steps of the kernels' 64 */
        rc = check_matmul(e, o, variant, 64, 128, 64, GPT2_F16, &seed, ratio, err, errlen);
    }
    vk_fault_pause(false);
    return rc;
}

/* ---- verdict cache ---- */

/* Reads the cached ratios of path (-1 where none). */
static void cache_read(const char *path, double cached[VKOPS_GUARD_N])
{
    for (int i = 0; i < VKOPS_GUARD_N; i++) cached[i] = -1;
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (!f) return;
    char line[128], name[32];
    double r;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%31s %lf", name, &r) == 2 && r >= 0)
            for (int i = 0; i < VKOPS_GUARD_N; i++)
                if (strcmp(name, names[i]) == 0) cached[i] = r;
    fclose(f);
}

/* Creates the directories above path (like mkdir -p of its dirname). */
static int make_parent_dirs(const char *path)
{
    char d[1100];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (!slash) return -1;
    *slash = '\0';
    for (char *p = d + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(d, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(d, 0755) && errno != EEXIST ? -1 : 0;
}

/* Writes the ratios that are known (>= 0), replacing the file whole (core/outfile.h); failures
 * are ignored: the next session checks again. */
static void cache_write(const char *path, const double r[VKOPS_GUARD_N], const vk_caps *c)
{
    if (!path[0] || make_parent_dirs(path)) return;
    gpt2_out out;
    if (gpt2_out_open(&out, path, 0, NULL, 0) != 0) return;
    char line[512];
    int n = snprintf(line, sizeof line,
                     "# vkgpt2 kernel-variant verdicts for %s (%s): variant, "
                     "worst error over tolerance (<= 1 passes)\n",
                     c->name, c->driver);
    gpt2_out_write(&out, line, (size_t)(n > 0 && (size_t)n < sizeof line ? n : 0));
    for (int i = 0; i < VKOPS_GUARD_N; i++)
        if (r[i] >= 0) {
            n = snprintf(line, sizeof line, "%s %.6g\n", names[i], r[i]);
            gpt2_out_write(&out, line, (size_t)n);
        }
    gpt2_out_close(&out, NULL, 0);
}

int vk_guard_apply(vk_engine *e, vk_ops *o, vk_guard_state st[VKOPS_GUARD_N], char *err, size_t errlen)
{
    int force[VKOPS_GUARD_N];
    if (vk_guard_parse(getenv("VKGPT2_VARIANTS"), force, err, errlen)) return -1;
    vk_guard_state local[VKOPS_GUARD_N];
    if (!st) st = local;
    char path[1100];
    vk_guard_cache_path(e, path, sizeof path);
    double cached[VKOPS_GUARD_N], verdict[VKOPS_GUARD_N];
    cache_read(path, cached);
    bool dirty = false;
    const vk_caps *c = vk_engine_caps(e);
    for (int i = 0; i < VKOPS_GUARD_N; i++) {
        vk_guard_state *g = &st[i];
        *g = (vk_guard_state){.variant = names[i], .runs = vk_ops_variant_runs(o, names[i]), .ratio = -1};
        verdict[i] = cached[i];
        if (!g->runs) {
            g->how = "unavailable";
        } else if (force[i] < 0) {
            g->how = "forbidden";
        } else if (force[i] > 0) {
            g->how = "forced";
            g->on = true;
        } else if (cached[i] >= 0) {
            g->how = "cached";
            g->ratio = cached[i];
            g->on = cached[i] <= 1.0;
            if (!g->on)
                gpt2_notice(VKG_NOTICE_WARNING,
                            "kernel variant %s is off on %s: it failed its "
                            "check before (error %.3g times its tolerance, verdict in %s)",
                            names[i], c->name, cached[i], path);
        } else {
            char why[256];
            double r = 0;
            if (vk_guard_check(e, o, names[i], &r, why, sizeof why)) {
                g->how = "unchecked";
                gpt2_notice(VKG_NOTICE_WARNING,
                            "kernel variant %s is off on %s: its check could "
                            "not run (%s)",
                            names[i], c->name, why);
            } else {
                g->how = "checked";
                g->ratio = r;
                g->on = r <= 1.0;
                verdict[i] = r;
                dirty = true;
                if (!g->on)
                    gpt2_notice(VKG_NOTICE_WARNING,
                                "kernel variant %s failed its check on %s "
                                "(error %.3g times its tolerance): turned off for this device and "
                                "driver",
                                names[i], c->name, r);
            }
        }
        vk_ops_variant_enable(o, names[i], g->on);
    }
    if (dirty) cache_write(path, verdict, c);
    return 0;
}
