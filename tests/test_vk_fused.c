/* test_vk_fused.c - the fused kernels of the Vulkan backend's decode lowering against float64
 * references and against the unfused kernels they replace (which stay the reference):
 *   - vk_op_ln_matmul (layernorm + matvec in one dispatch) for f32, f16 and every block format,
 *     with and without subgroups, every epilogue, strided x, rows that share a prologue (RMUL);
 *   - the same with the rows taken from the embedding (embed + layernorm + matvec), which also
 *     writes the embedded rows;
 *   - the one-dispatch decode attention (splits combined by the last workgroup of each head) over
 *     contexts of one split and of many, replayed, in batched steps, leaving its counters zero;
 *   - whole steps of a synthetic model: the fused plan's logits against the unfused plan's
 *     (VKGPT2_FUSE=0) at 1e-5 on f32, the same greedy ids, batched steps, dispatch counts. */
#include "core/backend.h"
#include "core/synth.h"
#include "cpu/quant.h"
#include "test_vk_common.h"

/* ---- layernorm + matmul ---- */

/* Random weights of type wt [rows][cols]: the device bytes, and the values as f32 in *wf. */
static void *rand_weights(gpt2_dtype wt, int rows, int cols, float **wf, size_t *bytes)
{
    *wf = vkt_rand_floats((size_t)rows * cols, -1, 1);
    void *q = ref64_weights(wt, *wf, rows, cols, bytes);
    cr_assert(q);
    return q;
}

typedef struct lncase {
    int n, rows, cols, ldx_extra, epi;
} lncase;

static void run_lncase(vkt *t, const lncase *c, gpt2_dtype wt, int form)
{
    int n = c->n, rows = c->rows, cols = c->cols, ldx = cols + c->ldx_extra, ldy = rows + 3;
    size_t nx = (size_t)n * ldx, ny = (size_t)n * ldy;
    float *x = vkt_rand_floats(nx, -2, 2);
    for (int r = 0; r < n; r++) /* a large mean on some rows: two passes must stay exact */
        for (int i = 0; i < cols; i++) x[(size_t)r * ldx + i] += (r % 2) ? 200.0f : 0.0f;
    float *g = vkt_rand_floats((size_t)cols, 0.5f, 1.5f), *b = vkt_rand_floats((size_t)cols, -1, 1);
    float *bias = vkt_rand_floats((size_t)rows, -1, 1), *y0 = vkt_rand_floats(ny, -1, 1), *w;
    size_t wbytes;
    void *wd = rand_weights(wt, rows, cols, &w, &wbytes);
    vk_mem bx = vkt_buf(t, nx * 4, x), bg = vkt_buf(t, (size_t)cols * 4, g);
    vk_mem bb = vkt_buf(t, (size_t)cols * 4, b), bw = vkt_buf(t, wbytes, wd);
    vk_mem bbias = vkt_buf(t, (size_t)rows * 4, bias), by = vkt_buf(t, ny * 4, y0);
    vk_mem by2 = vkt_buf(t, ny * 4, y0), bxn = vkt_buf(t, (size_t)n * cols * 4, NULL);
    VkDeviceAddress pb = (c->epi & CPU_EPI_BIAS) ? bbias.addr : 0;
    cr_assert(vk_op_ln_matmul_fits(t->o, n, cols, wt), "n=%d cols=%d %s fits", n, cols, gpt2_dtype_name(wt));
    vkt_begin(t);
    vk_op_ln_matmul(t->o, t->s, by.addr, ldy, bx.addr, ldx, bg.addr, bb.addr, 1e-5f, bw.addr, wt, rows, cols,
                    pb, n, c->epi, form, NULL);
    /* the unfused pair, the reference kernels (layernorm rows are contiguous: one per row) */
    for (int r = 0; r < n; r++)
        vk_op_layernorm(t->o, t->s, bxn.addr + (VkDeviceAddress)r * cols * 4,
                        bx.addr + (VkDeviceAddress)r * ldx * 4, bg.addr, bb.addr, 1, cols, 1e-5f);
    vk_seq_barrier(t->s); /* the matmul reads the normalised rows */
    vk_op_matmul(t->o, t->s, by2.addr, ldy, bxn.addr, cols, bw.addr, wt, rows, cols, pb, n, c->epi, form);
    vkt_run(t);
    cr_assert_eq(vk_seq_dispatches(t->s), 2 + n);
    float *y = malloc(ny * 4), *y2 = malloc(ny * 4);
    vkt_get(t, &by, y, ny * 4);
    vkt_get(t, &by2, y2, ny * 4);
    double *xn = malloc((size_t)n * cols * sizeof *xn), *sc = malloc((size_t)n * cols * sizeof *sc);
    double *ref = malloc(ny * sizeof *ref), *scale = malloc(ny * sizeof *scale);
    vkt_layernorm_ref(xn, sc, x, ldx, g, b, n, cols, 1e-5);
    /* y from the float64 normalised rows: epi(xn . w^T), with scale sum |w| * sc */
    ref64_matmul_x64(ref, scale, xn, sc, cols, w, bias, y0, ldy, n, rows, cols, c->epi, form, vkt_gelu_scale);
    char what[160];
    snprintf(what, sizeof what, "ln_matmul %s n=%d rows=%d cols=%d ldx=%d epi=%d form=%d sg=%d",
             gpt2_dtype_name(wt), n, rows, cols, ldx, c->epi, form, vk_ops_subgroup(t->o));
    vkt_check(what, y, ref, scale, ny, 1e-5, 1e-6);
    vkt_check_twin(what, y, y2, scale, ny, 2e-5, 2e-6);
    vk_mem *ms[] = {&bx, &bg, &bb, &bw, &bbias, &by, &by2, &bxn};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) vk_mem_free(t->e, ms[i]);
    free(x);
    free(g);
    free(b);
    free(bias);
    free(y0);
    free(w);
    free(wd);
    free(y);
    free(y2);
    free(xn);
    free(sc);
    free(ref);
    free(scale);
}

static const gpt2_dtype WTYPES[] = {GPT2_F32,  GPT2_F16,  GPT2_Q8_0, GPT2_Q4_0,
                                    GPT2_Q4_1, GPT2_Q5_0, GPT2_Q5_1};
#define N_WTYPES 7

Test(vk_fused, ln_matmul)
{
    vkt t = vkt_open();
    vkt_seed(141);
    const lncase cases[] = {
        {1, 37, 64, 0, CPU_EPI_BIAS},                    /* QKV-like, rows not filling a group */
        {3, 130, 768, 4, CPU_EPI_BIAS | CPU_EPI_GELU},   /* FC-like, strided x */
        {8, 20, 96, 0, CPU_EPI_BIAS | CPU_EPI_RESIDUAL}, /* 8 tokens per workgroup */
        {2, 9, 1600, 0, 0},                              /* the widest GPT-2 row */
        {1, 17000, 64, 0, 0},                            /* many rows: RMUL > 1 */
    };
    for (int sg = 0; sg < 2; sg++) {
        vk_ops_set_subgroup(t.o, sg);
        for (int wi = 0; wi < N_WTYPES; wi++)
            for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
                run_lncase(&t, &cases[ci], WTYPES[wi], (int)(ci % 2));
    }
    vkt_close(&t);
}

Test(vk_fused, ln_matmul_limits)
{
    vkt t = vkt_open();
    /* prefill sizes go to the tiled kernels, rows that are not whole vec4s or blocks nowhere */
    cr_assert(!vk_op_ln_matmul_fits(t.o, 9, 64, GPT2_F32));
    cr_assert(!vk_op_ln_matmul_fits(t.o, 1, 66, GPT2_F32));
    cr_assert(!vk_op_ln_matmul_fits(t.o, 1, 48, GPT2_Q8_0));
    cr_assert(!vk_op_ln_matmul_fits(t.o, 1, 1 << 20, GPT2_F16)); /* more than shared memory holds */
    cr_assert(vk_op_ln_matmul_fits(t.o, 8, 1600, GPT2_F16));
    vkt_close(&t);
}

/* Embedding rows: x written with wte[ids] + wpe[pos], y from their layernorm. */
static void run_embcase(vkt *t, int n, int step_n, int n_past, gpt2_dtype tte, gpt2_dtype tpe, gpt2_dtype wt,
                        int rows, int cols)
{
    int n_vocab = 97, n_ctx = 40, ldy = rows;
    int nt = step_n == 0 || step_n > n ? n : step_n;
    float *wte, *wpe, *w;
    size_t bte, bpe, wbytes;
    void *dte = rand_weights(tte, n_vocab, cols, &wte, &bte);
    void *dpe = rand_weights(tpe, n_ctx, cols, &wpe, &bpe);
    void *wd = rand_weights(wt, rows, cols, &w, &wbytes);
    float *g = vkt_rand_floats((size_t)cols, 0.5f, 1.5f), *b = vkt_rand_floats((size_t)cols, -1, 1);
    float *bias = vkt_rand_floats((size_t)rows, -1, 1);
    float *x0 = vkt_rand_floats((size_t)n * cols, -1, 1);
    int32_t ids[8];
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(vkt_unif() * n_vocab);
    vk_mem mte = vkt_buf(t, bte, dte), mpe = vkt_buf(t, bpe, dpe), mw = vkt_buf(t, wbytes, wd);
    vk_mem mg = vkt_buf(t, (size_t)cols * 4, g), mb = vkt_buf(t, (size_t)cols * 4, b);
    vk_mem mbias = vkt_buf(t, (size_t)rows * 4, bias), mids = vkt_buf(t, sizeof ids, ids);
    vk_mem mx = vkt_buf(t, (size_t)n * cols * 4, x0), my = vkt_buf(t, (size_t)n * ldy * 4, NULL);
    vk_mem mstep = vkt_host_buf(t, sizeof(vk_step_params));
    vk_step_params sp = {.n_past = (uint32_t)n_past, .n = (uint32_t)step_n};
    memcpy(mstep.map, &sp, sizeof sp);
    vk_embed_src emb = {mte.addr, tte, mpe.addr, tpe, mids.addr, mstep.addr};
    vkt_begin(t);
    vk_op_ln_matmul(t->o, t->s, my.addr, ldy, mx.addr, cols, mg.addr, mb.addr, 1e-5f, mw.addr, wt, rows, cols,
                    mbias.addr, n, CPU_EPI_BIAS, 0, &emb);
    vkt_run(t);
    cr_assert_eq(vk_seq_dispatches(t->s), 1);
    float *x = malloc((size_t)n * cols * 4), *y = malloc((size_t)n * ldy * 4);
    vkt_get(t, &mx, x, (size_t)n * cols * 4);
    vkt_get(t, &my, y, (size_t)n * ldy * 4);
    char what[160];
    snprintf(what, sizeof what, "embed+ln_matmul wte %s wpe %s w %s n=%d step %d n_past=%d cols=%d sg=%d",
             gpt2_dtype_name(tte), gpt2_dtype_name(tpe), gpt2_dtype_name(wt), n, step_n, n_past, cols,
             vk_ops_subgroup(t->o));
    /* the embedded rows (one f32 addition; a block format's scale may be fused there), rows past
     * the step's tokens untouched */
    float *xe = malloc((size_t)n * cols * 4);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < cols; i++)
            xe[(size_t)r * cols + i] = r < nt
                ? wte[(size_t)ids[r] * cols + i] + wpe[(size_t)(n_past + r) * cols + i]
                : x0[(size_t)r * cols + i];
    vkt_check_twin(what, x, xe, NULL, (size_t)n * cols, 1e-6, 1e-7);
    double *xn = malloc((size_t)n * cols * sizeof *xn), *sc = malloc((size_t)n * cols * sizeof *sc);
    double *ref = malloc((size_t)n * ldy * sizeof *ref), *scale = malloc((size_t)n * ldy * sizeof *scale);
    vkt_layernorm_ref(xn, sc, xe, cols, g, b, nt, cols, 1e-5);
    ref64_matmul_x64(ref, scale, xn, sc, cols, w, bias, NULL, ldy, nt, rows, cols, CPU_EPI_BIAS, 0,
                     vkt_gelu_scale);
    vkt_check(what, y, ref, scale, (size_t)nt * ldy, 1e-5, 1e-6);
    vk_mem *ms[] = {&mte, &mpe, &mw, &mg, &mb, &mbias, &mids, &mx, &my, &mstep};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) vk_mem_free(t->e, ms[i]);
    free(wte);
    free(wpe);
    free(w);
    free(dte);
    free(dpe);
    free(wd);
    free(g);
    free(b);
    free(bias);
    free(x0);
    free(x);
    free(y);
    free(xe);
    free(xn);
    free(sc);
    free(ref);
    free(scale);
}

Test(vk_fused, embed_ln_matmul)
{
    vkt t = vkt_open();
    vkt_seed(142);
    for (int sg = 0; sg < 2; sg++) {
        vk_ops_set_subgroup(t.o, sg);
        run_embcase(&t, 1, 1, 0, GPT2_F32, GPT2_F32, GPT2_F32, 50, 64);
        run_embcase(&t, 1, 1, 39, GPT2_F16, GPT2_F32, GPT2_F16, 70, 768);
        run_embcase(&t, 3, 0, 5, GPT2_Q8_0, GPT2_F16, GPT2_Q8_0, 33, 96);
        run_embcase(&t, 4, 2, 7, GPT2_Q4_1, GPT2_F32, GPT2_F32, 20, 64); /* a shorter step */
    }
    vkt_close(&t);
}

/* ---- one-dispatch decode attention ---- */

typedef struct fa_env {
    int rows, n_head, hd, n_ctx, E, slots;
    gpt2_dtype kvt;
    vk_mem bqkv, bk, bv, bout, bout2, bscratch, bscratch2, bstep;
    vk_seq *s2; /* the unfused recording */
} fa_env;

/* Records the fused decode (rows > 1: batched, one slot each) into t->s and the unfused one. */
static void fa_init(vkt *t, fa_env *a, int rows, int n_head, int hd, int n_ctx, gpt2_dtype kvt)
{
    memset(a, 0, sizeof *a);
    a->rows = rows;
    a->n_head = n_head;
    a->hd = hd;
    a->n_ctx = n_ctx;
    a->E = n_head * hd;
    a->kvt = kvt;
    a->slots = rows;
    size_t kvb = (size_t)a->slots * n_ctx * a->E * gpt2_dtype_size(kvt);
    size_t scr = (size_t)rows * vk_attention_scratch_bytes(n_head, hd, n_ctx);
    a->bqkv = vkt_buf(t, (size_t)rows * 3 * a->E * 4, NULL);
    a->bk = vkt_buf(t, kvb, NULL);
    a->bv = vkt_buf(t, kvb, NULL);
    a->bout = vkt_buf(t, (size_t)rows * a->E * 4, NULL);
    a->bout2 = vkt_buf(t, (size_t)rows * a->E * 4, NULL);
    a->bscratch = vkt_buf(t, scr, NULL); /* zeroed: the counters start at zero */
    a->bscratch2 = vkt_buf(t, scr, NULL);
    a->bstep = vkt_host_buf(t, sizeof(vk_step_params) + (size_t)rows * sizeof(vk_step_row));
    for (int f = 0; f < 2; f++) {
        vk_seq *s = f ? (a->s2 = vk_seq_create(t->e, 8)) : t->s;
        cr_assert(s);
        vk_ops_set_fuse(t->o, f == 0);
        vk_seq_begin(s);
        if (rows > 1)
            vk_op_attention_rows(t->o, s, (f ? a->bout2 : a->bout).addr, a->bqkv.addr, a->bk.addr, a->bv.addr,
                                 kvt, a->bstep.addr, rows, n_head, hd, n_ctx,
                                 (f ? a->bscratch2 : a->bscratch).addr);
        else
            vk_op_attention(t->o, s, (f ? a->bout2 : a->bout).addr, a->bqkv.addr, a->bk.addr, a->bv.addr, kvt,
                            a->bstep.addr, 1, n_head, hd, n_ctx, (f ? a->bscratch2 : a->bscratch).addr);
        cr_assert(vk_seq_end(s) == 0);
        cr_assert_eq(vk_seq_dispatches(s), f ? 2 : 1, "fused %d: dispatches", !f);
        cr_assert_eq(vk_seq_barriers(s), f ? 1 : 0, "fused %d: barriers", !f);
    }
    vk_ops_set_fuse(t->o, false);
}

static void fa_free(vkt *t, fa_env *a)
{
    vk_mem *ms[] = {&a->bqkv, &a->bk, &a->bv, &a->bout, &a->bout2, &a->bscratch, &a->bscratch2, &a->bstep};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) vk_mem_free(t->e, ms[i]);
    vk_seq_destroy(a->s2);
}

/* One step at positions pos[r] (row r in slot r): fused vs float64 and vs the unfused kernels. */
static void fa_step(vkt *t, fa_env *a, const int *pos)
{
    int E = a->E, R = a->rows;
    size_t ncache = (size_t)a->slots * a->n_ctx * E, esz = gpt2_dtype_size(a->kvt);
    float *qkv = vkt_rand_floats((size_t)R * 3 * E, -1, 1);
    float *kf = vkt_rand_floats(ncache, -1, 1), *vf = vkt_rand_floats(ncache, -1, 1);
    void *kc = kf, *vc = vf;
    uint16_t *kh = NULL, *vh = NULL;
    if (a->kvt == GPT2_F16) {
        kc = kh = vkt_to_f16(kf, ncache);
        vc = vh = vkt_to_f16(vf, ncache);
    }
    cr_assert(vk_upload(t->e, &a->bqkv, 0, qkv, (size_t)R * 3 * E * 4) == 0);
    vk_step_params sp = {
        .n = (uint32_t)R, .kv_base = R > 1 ? VKOPS_STEP_BATCHED : 0, .n_past = (uint32_t)pos[0]};
    memcpy(a->bstep.map, &sp, sizeof sp);
    vk_step_row *rw = (vk_step_row *)((char *)a->bstep.map + sizeof sp);
    for (int r = 0; r < R; r++) rw[r] = (vk_step_row){(uint32_t)(r * a->n_ctx), (uint32_t)pos[r]};
    float *out[2];
    for (int f = 0; f < 2; f++) {
        cr_assert(vk_upload(t->e, &a->bk, 0, kc, ncache * esz) == 0);
        cr_assert(vk_upload(t->e, &a->bv, 0, vc, ncache * esz) == 0);
        cr_assert(vk_seq_run(f ? a->s2 : t->s) == 0);
        out[f] = malloc((size_t)R * E * 4);
        vkt_get(t, f ? &a->bout2 : &a->bout, out[f], (size_t)R * E * 4);
    }
    /* float64 attention over the caches with the new rows as stored (f16: rounded) */
    double *ref = calloc((size_t)R * E, sizeof *ref), *scale = calloc((size_t)R * E, sizeof *scale);
    for (int r = 0; r < R; r++) {
        size_t kb = (size_t)r * a->n_ctx;
        const float *q = qkv + (size_t)r * 3 * E;
        for (int c = 0; c < E; c++) {
            float kn = q[E + c], vn = q[2 * E + c];
            kf[(kb + pos[r]) * E + c] = a->kvt == GPT2_F16 ? gpt2_f16_to_f32(gpt2_f32_to_f16(kn)) : kn;
            vf[(kb + pos[r]) * E + c] = a->kvt == GPT2_F16 ? gpt2_f16_to_f32(gpt2_f32_to_f16(vn)) : vn;
        }
        ref64_attention(ref + (size_t)r * E, scale + (size_t)r * E, q, (size_t)3 * E, kf + kb * E,
                        vf + kb * E, (size_t)E, 1, pos[r], a->n_head, a->hd);
    }
    char what[160];
    snprintf(what, sizeof what, "fused decode attention rows=%d pos0=%d heads=%d hd=%d n_ctx=%d %s sg=%d", R,
             pos[0], a->n_head, a->hd, a->n_ctx, gpt2_dtype_name(a->kvt), vk_ops_subgroup(t->o));
    vkt_check(what, out[0], ref, scale, (size_t)R * E, 1e-5, 1e-6);
    /* the same arithmetic as attn_decode + attn_reduce, in the same order */
    vkt_check_twin(what, out[0], out[1], scale, (size_t)R * E, 1e-6, 1e-7);
    /* every counter back at zero */
    size_t scr = (size_t)R * vk_attention_scratch_bytes(a->n_head, a->hd, a->n_ctx);
    uint32_t *cnt = malloc(scr);
    vkt_get(t, &a->bscratch, cnt, scr);
    for (int i = 0; i < R * a->n_head; i++)
        cr_assert_eq(cnt[scr / 4 - (size_t)(R * a->n_head) + (size_t)i], 0u, "%s: counter %d", what, i);
    free(cnt);
    free(qkv);
    free(kf);
    free(vf);
    free(kh);
    free(vh);
    free(out[0]);
    free(out[1]);
    free(ref);
    free(scale);
}

Test(vk_fused, decode_attention)
{
    vkt t = vkt_open();
    if (!vk_engine_caps(t.e)->memory_model) {
        vkt_close(&t);
        cr_skip_test("the device has no Vulkan memory model with device scope");
    }
    vkt_seed(143);
    for (int sg = 0; sg < 2; sg++) {
        vk_ops_set_subgroup(t.o, sg);
        for (int kt = 0; kt < 2; kt++) {
            fa_env a;
            /* 5 splits of 60 keys: one split (pos < 60), two, all five; replayed */
            fa_init(&t, &a, 1, 3, 64, 300, (gpt2_dtype)kt);
            int p[] = {0, 59, 60, 130, 299, 7};
            for (int i = 0; i < 6; i++) fa_step(&t, &a, &p[i]);
            fa_free(&t, &a);
            /* 32 splits of 66 keys, narrow heads without 16-byte K loads */
            fa_init(&t, &a, 1, 2, 18, 2100, (gpt2_dtype)kt);
            int q[] = {2099, 65, 1000};
            for (int i = 0; i < 3; i++) fa_step(&t, &a, &q[i]);
            fa_free(&t, &a);
            /* batched: rows in one split and in several, in one dispatch */
            fa_init(&t, &a, 3, 2, 64, 200, (gpt2_dtype)kt);
            int b1[] = {3, 150, 49}, b2[] = {199, 0, 100};
            fa_step(&t, &a, b1);
            fa_step(&t, &a, b2);
            fa_free(&t, &a);
        }
    }
    vkt_close(&t);
}

/* ---- the whole step: the fused plan against the unfused one (VKGPT2_FUSE=0) ---- */

static gpt2_backend *vk_backend_fused(const gpt2_model *m, bool fuse, gpt2_dtype kv)
{
    gpt2_backend_params bp = {.n_threads = 2, .n_batch = 32, .kv_type = kv, .device = -1, .n_slots = 3};
    char err[512];
    if (fuse)
        unsetenv("VKGPT2_FUSE");
    else
        setenv("VKGPT2_FUSE", "0", 1);
    gpt2_backend *b = gpt2_backend_vk_create(m, &bp, NULL, err, sizeof err);
    unsetenv("VKGPT2_FUSE");
    if (!b) cr_skip_test("no Vulkan backend: %s", err);
    return b;
}

/* Whether the best device has the Vulkan memory model (the one-dispatch decode attention). */
static bool device_memory_model(void)
{
    vk_engine *e;
    char err[256];
    if (vk_engine_create(&e, -1, err, sizeof err) != 0) return false;
    bool mm = vk_engine_caps(e)->memory_model;
    vk_engine_destroy(e);
    return mm;
}

static void whole_step(gpt2_dtype wt, gpt2_dtype kv, double tol)
{
    gpt2_synth_params sp;
    gpt2_synth_defaults(&sp);
    sp.wtype = wt;
    sp.seed = 14;
    char err[512];
    gpt2_model m;
    cr_assert_eq(gpt2_synth(&m, &sp, err, sizeof err), 0, "%s", err);
    int V = m.hp.n_vocab, L = m.hp.n_layer;
    enum { PROMPT = 20, STEPS = 6, GEN = 80 };
    int32_t ids[PROMPT];
    for (int i = 0; i < PROMPT; i++) ids[i] = (int32_t)((i * 37 + 11) % V);
    gpt2_backend *be[2] = {vk_backend_fused(&m, true, kv), vk_backend_fused(&m, false, kv)};
    const char *tn = gpt2_dtype_name(wt);

    /* the last row's logits of a short prompt (fused: 8 tokens fit the matvec) and of a long one
     * (tiled: the unfused kernels), then of one-token steps crossing the first split (n_ctx 128:
     * two of 64 keys) */
    float *lg[2];
    for (int k = 0; k < 2; k++) {
        lg[k] = malloc((size_t)(2 + STEPS) * V * sizeof(float));
        cr_assert_eq(
            gpt2_backend_eval_seq(be[k], 0, ids, 8, 0, GPT2_STEP_LAST, lg[k], NULL, NULL, 0, err, sizeof err),
            0, "%s", err);
        cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, ids, PROMPT, 0, GPT2_STEP_LAST, lg[k] + V, NULL, NULL, 0,
                                           err, sizeof err),
                     0, "%s", err);
        for (int i = 0; i < STEPS; i++) {
            int pos = i < 3 ? PROMPT + i : 60 + i; /* the cache rows between hold the prompt's */
            cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, &ids[i], 1, pos, GPT2_STEP_LAST,
                                               lg[k] + (size_t)(2 + i) * V, NULL, NULL, 0, err, sizeof err),
                         0, "%s", err);
        }
    }
    double e = vkt_rel_err(lg[0], lg[1], (size_t)(2 + STEPS) * V);
    cr_expect_lt(e, tol, "%s: fused vs unfused logits: relative error %.3g", tn, e);
    cr_log_info("%s KV %s: worst relative logit error, fused vs unfused: %.3g\n", tn, gpt2_dtype_name(kv), e);

    /* greedy: 80 tokens from the prompt (past both splits), the same ids */
    int32_t seq[2][PROMPT + GEN];
    for (int k = 0; k < 2; k++) {
        memcpy(seq[k], ids, sizeof ids);
        int32_t next;
        cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, seq[k], PROMPT, 0, GPT2_STEP_ARGMAX, NULL, &next, NULL,
                                           0, err, sizeof err),
                     0, "%s", err);
        for (int i = PROMPT; i < PROMPT + GEN; i++) {
            seq[k][i] = next;
            if (i + 1 < PROMPT + GEN)
                cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, &seq[k][i], 1, i, GPT2_STEP_ARGMAX, NULL, &next,
                                                   NULL, 0, err, sizeof err),
                             0, "%s", err);
        }
    }
    for (int i = PROMPT; i < PROMPT + GEN; i++)
        cr_expect_eq(seq[0][i], seq[1][i], "%s token %d: fused %d, unfused %d", tn, i, seq[0][i], seq[1][i]);

    /* the greedy one-token step: per layer 5 dispatches (LN+QKV, attention, proj, LN+FC, FC2),
     * then LN_f+LM head and the argmax; unfused 8 per layer, embed, ln_f, LM head, argmax */
    int attn = device_memory_model() ? 1 : 2; /* without the memory model: decode + reduce */
    cr_expect_eq(be[0]->counters.dispatches_per_token, (uint64_t)((4 + attn) * L + 2),
                 "%s: fused dispatches %llu", tn, (unsigned long long)be[0]->counters.dispatches_per_token);
    cr_expect_eq(be[0]->counters.barriers_per_token, (uint64_t)((4 + attn) * L + 1), "%s: fused barriers",
                 tn);
    cr_expect_eq(be[1]->counters.dispatches_per_token, (uint64_t)(8 * L + 4), "%s: unfused dispatches", tn);

    /* a batched decode step: 3 sequences in 3 slots at different positions, every row's logits */
    gpt2_row rows[3] = {{0, PROMPT + GEN - 1}, {1, 3}, {2, 70}};
    int32_t rid[3] = {seq[0][PROMPT + GEN - 1], 5, 9};
    float *br[2];
    for (int k = 0; k < 2; k++) {
        br[k] = malloc((size_t)3 * V * sizeof(float));
        for (int sl = 1; sl < 3; sl++) /* the other slots hold slot 0's sequence */
            cr_assert_eq(be[k]->kv_copy(be[k], sl, 0, PROMPT + GEN - 1, err, sizeof err), 0, "%s", err);
        gpt2_step st = {.n = 3, .ids = rid, .rows = rows, .out = GPT2_STEP_ALL, .logits = br[k]};
        cr_assert_eq(be[k]->eval(be[k], &st, err, sizeof err), 0, "%s", err);
    }
    e = vkt_rel_err(br[0], br[1], (size_t)3 * V);
    cr_expect_lt(e, tol, "%s: batched step, fused vs unfused logits: relative error %.3g", tn, e);
    for (int k = 0; k < 2; k++) {
        cr_expect_eq(be[k]->counters.validation_messages, 0);
        be[k]->destroy(be[k]);
        free(lg[k]);
        free(br[k]);
    }
    gpt2_model_free(&m);
}

Test(vk_fused, whole_step_f32, .timeout = 300) { whole_step(GPT2_F32, GPT2_F32, 1e-5); }
/* f16 weights and cache: the same arithmetic on the same rounded values, summed in other orders */
Test(vk_fused, whole_step_f16, .timeout = 300) { whole_step(GPT2_F16, GPT2_F16, 1e-4); }
