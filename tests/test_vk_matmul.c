/* test_vk_matmul.c - vk_op_matmul (matvec, tiled, and the cooperative-matrix kernels where the
 * device has them; f32 and f16 weights; every epilogue; strides, unaligned operands, shapes that
 * are not multiples of the tiles) against a float64 reference and against its CPU twin cpu_matmul.
 *
 * Each variant is held to its own accuracy (vk_matmul_accuracy): the coopmat kernels round x to
 * f16, so their float64 reference is computed from the f16-rounded x (and the f32-x reference and
 * the CPU twin get the looser rtol_f32x). Coopmat cannot run on lavapipe: those cases run on a GPU
 * that has it and are reported as skipped (cr_log_info) elsewhere. */
#include "test_vk_common.h"
#include "vkengine/vk_select.h"

#ifdef VKG_HAVE_COOPMAT_KHR
#define KHR_BUILT true
#else
#define KHR_BUILT false
#endif

typedef struct mm_case {
    int n, rows, cols;
    int ldx_extra, ldy_extra, x_off; /* stride padding (floats) and x offset (floats) */
} mm_case;

static void run_case(vkt *t, const mm_case *c, gpt2_dtype wt, int epi, int form, const char *force,
                     int subgroup)
{
    int n = c->n, rows = c->rows, cols = c->cols;
    int ldx = cols + c->ldx_extra, ldy = rows + c->ldy_extra;
    size_t nx = (size_t)n * ldx + c->x_off, ny = (size_t)n * ldy, nw = (size_t)rows * cols;
    float *x = vkt_rand_floats(nx, -1, 1);
    float *w = vkt_rand_floats(nw, -1, 1);
    float *bias = vkt_rand_floats(rows, -1, 1);
    float *y0 = vkt_rand_floats(ny, -1, 1);
    uint16_t *wh = wt == GPT2_F16 ? vkt_to_f16(w, nw) : NULL;

    float *y = vkt_matmul(t, x, nx, c->x_off, ldx, wh ? (void *)wh : (void *)w, nw * gpt2_dtype_size(wt), wt,
                          bias, y0, ldy, n, rows, cols, epi, form, force, subgroup);

    /* float64 reference; scale = sum of |terms|. The variant's own accuracy, against x as it reads
     * it (f16-rounded for the coopmat kernels), and its f32-x accuracy against the f32 x. */
    const char *variant = vk_ops_matmul_variant(t->o, n, wt);
    vk_mm_accuracy acc = vk_matmul_accuracy(variant);
    double *ref = malloc(ny * sizeof *ref), *scale = malloc(ny * sizeof *scale);
    char what[160];
    snprintf(what, sizeof what, "matmul %s n=%d rows=%d cols=%d ldx=%d ldy=%d off=%d %s epi=%d form=%d sg=%d",
             variant, n, rows, cols, ldx, ldy, c->x_off, gpt2_dtype_name(wt), epi, form,
             vk_ops_subgroup(t->o));
    if (acc.x_f16) {
        float *xr = malloc(nx * 4);
        memcpy(xr, x, nx * 4);
        free(vkt_to_f16(xr, nx));
        ref64_matmul(ref, scale, xr + c->x_off, ldx, w, bias, y0, ldy, n, rows, cols, epi, form,
                     vkt_gelu_scale);
        vkt_check(what, y, ref, scale, ny, acc.rtol, acc.atol);
        free(xr);
    }
    ref64_matmul(ref, scale, x + c->x_off, ldx, w, bias, y0, ldy, n, rows, cols, epi, form, vkt_gelu_scale);
    vkt_check(what, y, ref, scale, ny, acc.rtol_f32x, acc.atol);

    /* CPU twin (from the f32 x) */
    float *yc = malloc(ny * 4);
    memcpy(yc, y0, ny * 4);
    gpt2_tensor W = {wt, {cols, rows}, wh ? (void *)wh : (void *)w, nw * gpt2_dtype_size(wt)};
    cpu_matmul(yc, ldy, x + c->x_off, ldx, &W, bias, n, epi, form, NULL);
    vkt_check_twin(what, y, yc, scale, ny, acc.rtol_f32x + 1e-5, 2e-6);

    free(x);
    free(w);
    free(bias);
    free(y0);
    free(wh);
    free(y);
    free(yc);
    free(ref);
    free(scale);
}

static const mm_case cases[] = {
    {1, 7, 5, 0, 0, 0},     {1, 100, 768, 0, 0, 0}, {1, 2305, 768, 0, 0, 0}, {3, 2305, 769, 0, 0, 0},
    {3, 100, 100, 3, 5, 1}, {8, 64, 96, 0, 0, 0},   {17, 100, 769, 0, 0, 0}, {65, 7, 100, 4, 1, 0},
    {65, 130, 64, 0, 0, 0}, {2, 33, 64, 4, 0, 2},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

Test(vk_matmul, automatic_variant)
{
    vkt t = vkt_open();
    vkt_seed(1);
    for (int i = 0; i < N_CASES; i++)
        for (int wt = 0; wt < 2; wt++)
            run_case(&t, &cases[i], (gpt2_dtype)wt, (i + wt) % 8, (i / 2) % 2, NULL, -1);
    vkt_close(&t);
}

Test(vk_matmul, matvec_forced)
{
    vkt t = vkt_open();
    vkt_seed(2);
    for (int i = 0; i < N_CASES; i++) {
        if (cases[i].n * cases[i].rows * (long)cases[i].cols > 2000000) continue;
        for (int wt = 0; wt < 2; wt++)
            for (int sg = 0; sg < 2; sg++)
                run_case(&t, &cases[i], (gpt2_dtype)wt, (i + 3 * wt + sg) % 8, (i + sg) % 2, "matvec", sg);
    }
    vkt_close(&t);
}

Test(vk_matmul, tiled_forced)
{
    vkt t = vkt_open();
    vkt_seed(3);
    for (int i = 0; i < N_CASES; i++) {
        if (cases[i].n * cases[i].rows * (long)cases[i].cols > 2000000) continue;
        for (int wt = 0; wt < 2; wt++)
            run_case(&t, &cases[i], (gpt2_dtype)wt, (i + 5 * wt) % 8, i % 2, "tiled", -1);
    }
    vkt_close(&t);
}

Test(vk_matmul, variant_picking)
{
    vkt t = vkt_open();
    const vk_caps *c = vk_engine_caps(t.e);
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 1, GPT2_F32), "matvec");
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 1, GPT2_F16), "matvec");
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 8, GPT2_F16), "matvec");
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 9, GPT2_F32), "tiled");
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 512, GPT2_F32), "tiled");
    /* f16 prompt chunks: KHR where its kernel is built and the device passes the gate, else NV,
     * else tiled (the gate's rules are unit-tested in test_vk_select) */
    bool khr = vk_coopmat_gate(c, true, KHR_BUILT, NULL), nv = vk_coopmat_gate(c, false, KHR_BUILT, NULL);
    const char *want16 = khr ? "coopmat_khr" : nv ? "coopmat_nv" : "tiled";
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 512, GPT2_F16), want16);
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 32, GPT2_F16), want16);
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 31, GPT2_F16), "tiled");
    cr_log_info("device %s: f16 batches run %s (NV shape %ux%ux%u, KHR %ux%ux%u, subgroup %u in %u..%u)\n",
                c->name, want16, c->coopmat_m, c->coopmat_n, c->coopmat_k, c->coopmat_khr_m, c->coopmat_khr_n,
                c->coopmat_khr_k, c->subgroup_size, c->subgroup_min, c->subgroup_max);
    /* the LM head and all-logits steps: x stays f32 */
    vk_ops_set_exact_x(t.o, true);
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 512, GPT2_F16), "tiled");
    vk_ops_set_exact_x(t.o, false);
    /* a coopmat variant cannot be forced where the device lacks it */
    vk_ops_force_matmul(t.o, "coopmat_nv");
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 512, GPT2_F16), nv ? "coopmat_nv" : want16);
    vk_ops_force_matmul(t.o, "coopmat_khr");
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 512, GPT2_F16), khr ? "coopmat_khr" : want16);
    vk_ops_force_matmul(t.o, "tiled");
    cr_assert_str_eq(vk_ops_matmul_variant(t.o, 1, GPT2_F32), "tiled");
    vkt_close(&t);
}

/* Each cooperative-matrix kernel the device can run, forced, against the float64 reference from
 * the f16-rounded x with the variant's tolerance (and the f32-x one): prompt-sized n, rows and
 * cols off the 64 x 64 x 32 tiles, strides, offsets, every epilogue. A variant the device lacks is
 * named with the reason (cr_log_info); the test is skipped, not passed, when none can run. */
Test(vk_matmul, coopmat_variants_against_f16_reference)
{
    vkt t = vkt_open();
    const vk_caps *c = vk_engine_caps(t.e);
    static const char *const variants[] = {"coopmat_nv", "coopmat_khr"};
    static const mm_case cc[] = {{32, 64, 64, 0, 0, 0},   {64, 768, 768, 0, 0, 0}, {40, 2305, 768, 0, 0, 0},
                                 {65, 130, 100, 4, 1, 1}, {33, 7, 96, 0, 3, 2},    {130, 200, 3072, 0, 0, 0},
                                 {200, 50, 33, 2, 0, 0}};
    int ran = 0;
    char skipped[256] = "";
    vkt_seed(11);
    for (int v = 0; v < 2; v++) {
        vk_subgroup_plan plan;
        bool ok = vk_coopmat_gate(c, v == 1, KHR_BUILT, &plan);
        vk_ops_force_matmul(t.o, variants[v]);
        if (!ok || strcmp(vk_ops_matmul_variant(t.o, 64, GPT2_F16), variants[v]) != 0) {
            cr_log_info("%s: skipped, the device (%s) cannot run it: %s\n", variants[v], c->name,
                        plan.why ? plan.why : "not picked");
            snprintf(skipped + strlen(skipped), sizeof skipped - strlen(skipped), "%s%s (%s)",
                     skipped[0] ? ", " : "", variants[v], plan.why ? plan.why : "not picked");
            continue;
        }
        for (size_t i = 0; i < sizeof cc / sizeof *cc; i++)
            run_case(&t, &cc[i], GPT2_F16, (int)(i + v) % 8, (int)i % 2, variants[v], -1);
        cr_log_info("%s: %zu cases within rtol %.0e of the f16-x reference\n", variants[v],
                    sizeof cc / sizeof *cc, vk_matmul_accuracy(variants[v]).rtol);
        ran++;
    }
    vk_ops_force_matmul(t.o, NULL);
    vkt_close(&t);
    if (!ran) cr_skip_test("no cooperative-matrix variant on this device: %s", skipped);
}

static bool is_plain_variant(const char *v) { return strcmp(v, "matvec") == 0 || strcmp(v, "tiled") == 0; }

/* On a device without cooperative matrices (lavapipe) no coopmat variant is ever picked, and forcing
 * "coopmat_khr" or "coopmat_nv" falls back to the automatic plain variant, which still computes the
 * right answer (the coopmat kernels round x to f16, so they are not run through this tolerance). */
Test(vk_matmul, coopmat_fallback)
{
    vkt t = vkt_open();
    const vk_caps *c = vk_engine_caps(t.e);
    if (c->coopmat_nv || c->coopmat_khr) {
        vkt_close(&t);
        cr_skip_test("the device has cooperative matrices");
    }
    static const int ns[] = {1, 8, 9, 31, 32, 33, 64, 65, 512, 4096};
    static const char *const forced[] = {NULL, "coopmat_khr", "coopmat_nv"};
    for (int f = 0; f < 3; f++) {
        vk_ops_force_matmul(t.o, forced[f]);
        for (int i = 0; i < (int)(sizeof ns / sizeof ns[0]); i++)
            for (int wt = 0; wt < 2; wt++) {
                const char *v = vk_ops_matmul_variant(t.o, ns[i], (gpt2_dtype)wt);
                cr_assert(is_plain_variant(v), "force=%s n=%d %s: variant %s", forced[f] ? forced[f] : "none",
                          ns[i], gpt2_dtype_name((gpt2_dtype)wt), v);
            }
    }
    vkt_seed(7);
    static const mm_case fc[] = {{3, 100, 100, 3, 5, 1}, {33, 70, 100, 0, 2, 1}, {65, 130, 64, 0, 0, 0}};
    for (int f = 1; f < 3; f++)
        for (int i = 0; i < 3; i++)
            for (int wt = 0; wt < 2; wt++)
                run_case(&t, &fc[i], (gpt2_dtype)wt, (i + f + wt) % 8, (i + wt) % 2, forced[f], -1);
    vk_ops_force_matmul(t.o, NULL);
    vkt_close(&t);
}

/* A decode-shaped recording replays: the second run starts from the first run's output
 * (residual epilogue), so stale or skipped dispatches would show. */
Test(vk_matmul, replay_residual)
{
    vkt t = vkt_open();
    vkt_seed(4);
    int rows = 300, cols = 256;
    float *x = vkt_rand_floats(cols, -1, 1), *w = vkt_rand_floats((size_t)rows * cols, -1, 1);
    vk_mem bx = vkt_buf(&t, cols * 4, x), bw = vkt_buf(&t, (size_t)rows * cols * 4, w);
    vk_mem by = vkt_buf(&t, rows * 4, NULL);
    vkt_begin(&t);
    vk_op_matmul(t.o, t.s, by.addr, rows, bx.addr, cols, bw.addr, GPT2_F32, rows, cols, 0, 1,
                 CPU_EPI_RESIDUAL, 0);
    cr_assert(vk_seq_end(t.s) == 0);
    cr_assert_eq(vk_seq_dispatches(t.s), 1);
    for (int r = 0; r < 3; r++) cr_assert(vk_seq_run(t.s) == 0);
    float *y = malloc(rows * 4);
    vkt_get(&t, &by, y, rows * 4);
    for (int o = 0; o < rows; o++) {
        double acc = 0, sc = 0;
        for (int i = 0; i < cols; i++) {
            acc += (double)x[i] * w[(size_t)o * cols + i];
            sc += fabs((double)x[i] * w[(size_t)o * cols + i]);
        }
        cr_assert(fabs(y[o] - 3 * acc) <= 3e-5 * sc + 1e-6, "row %d: %g vs %g", o, y[o], 3 * acc);
    }
    vk_mem_free(t.e, &bx);
    vk_mem_free(t.e, &bw);
    vk_mem_free(t.e, &by);
    free(x);
    free(w);
    free(y);
    vkt_close(&t);
}
