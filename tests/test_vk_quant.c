/* test_vk_quant.c - the Vulkan side of ggml's block formats (q8_0, q4_0, q4_1, q5_0, q5_1):
 *   - vk_op_matmul on quantized weights (matvec_q with and without subgroups, vec4 and scalar x,
 *     matmul_tiled_q; every epilogue) against a float64 reference on the dequantized weights
 *     (gpt2_dequantize_row), tightly, and against cpu_matmul, loosely: the CPU quantizes the
 *     activations to int8 blocks, the shaders keep them f32;
 *   - vk_op_embed with a quantized wte;
 *   - a whole synthetic tiny model quantized to each type (vkgpt2 quantize's path): Vulkan logits
 *     against the CPU backend on the dequantized weights (tight: the same f32 arithmetic) and on
 *     the quantized ones (loose: int8 activations), and the same 32 greedy tokens. */
#include <unistd.h>

#include "cpu/quant.h"
#include "core/backend.h"
#include "test_vk_common.h"
#include "vkgpt2.h"

static const gpt2_dtype QTYPES[] = {GPT2_Q8_0, GPT2_Q4_0, GPT2_Q4_1, GPT2_Q5_0, GPT2_Q5_1};
#define N_QTYPES 5

/* Random rows quantized to qt: returns the blocks, and the dequantized values in *deq. */
static void *rand_quant(gpt2_dtype qt, int rows, int cols, float **deq)
{
    size_t rb = gpt2_row_bytes(qt, (size_t)cols);
    unsigned char *q = malloc(rb * (size_t)rows + 16);
    float *d = malloc((size_t)rows * cols * sizeof *d);
    cr_assert(q && d);
    float *src = vkt_rand_floats((size_t)cols, -1, 1);
    for (int r = 0; r < rows; r++) {
        /* rows of different magnitudes, and now and then a block of one value (d from a tie) */
        float s = (float)(0.05 + vkt_unif());
        for (int i = 0; i < cols; i++) src[i] = vkt_rnd(-1, 1) * s;
        if (r % 5 == 1)
            for (int i = 0; i < 32; i++) src[i] = 0.25f * s;
        gpt2_quantize_row(qt, src, q + (size_t)r * rb, (size_t)cols);
        gpt2_dequantize_row(qt, q + (size_t)r * rb, d + (size_t)r * cols, (size_t)cols);
    }
    free(src);
    *deq = d;
    return q;
}

typedef struct qcase {
    int n, rows, cols;
    int ldx_extra, x_off; /* x stride padding and offset (floats): x_off % 4 != 0 -> scalar x */
} qcase;

static void run_qcase(vkt *t, const qcase *c, gpt2_dtype qt, int epi, int form, const char *force,
                      int subgroup)
{
    int n = c->n, rows = c->rows, cols = c->cols, ldx = cols + c->ldx_extra, ldy = rows + 3;
    size_t nx = (size_t)n * ldx + c->x_off, ny = (size_t)n * ldy;
    size_t wbytes = gpt2_row_bytes(qt, (size_t)cols) * (size_t)rows;
    float *w;
    void *wq = rand_quant(qt, rows, cols, &w);
    float *x = vkt_rand_floats(nx, -1, 1), *bias = vkt_rand_floats((size_t)rows, -1, 1);
    float *y0 = vkt_rand_floats(ny, -1, 1);

    float *y = vkt_matmul(t, x, nx, c->x_off, ldx, wq, wbytes, qt, bias, y0, ldy, n, rows, cols, epi, form,
                          force, subgroup);

    /* float64 reference on the dequantized weights */
    double *ref = malloc(ny * sizeof *ref), *scale = malloc(ny * sizeof *scale);
    ref64_matmul(ref, scale, x + c->x_off, ldx, w, bias, y0, ldy, n, rows, cols, epi, form, vkt_gelu_scale);
    char what[200];
    snprintf(what, sizeof what, "%s %s n=%d rows=%d cols=%d ldx=%d off=%d epi=%d form=%d sg=%d",
             gpt2_dtype_name(qt), vk_ops_matmul_variant(t->o, n, qt), n, rows, cols, ldx, c->x_off, epi, form,
             vk_ops_subgroup(t->o));
    vkt_check(what, y, ref, scale, ny, 1e-5, 1e-6);

    /* CPU twin: int8 activations (error up to amax/254 per element) -> a loose bound */
    float *yc = malloc(ny * 4);
    memcpy(yc, y0, ny * 4);
    gpt2_tensor W = {qt, {cols, rows}, wq, wbytes};
    cpu_matmul(yc, ldy, x + c->x_off, ldx, &W, bias, n, epi, form, NULL);
    vkt_check_twin(what, y, yc, scale, ny, 1e-2, 1e-5);

    free(x);
    free(w);
    free(wq);
    free(bias);
    free(y0);
    free(y);
    free(yc);
    free(ref);
    free(scale);
}

/* matvec (n <= 8) and tiled (n > 8) shapes: odd row counts, cols multiples of 32. */
static const qcase mv_cases[] = {
    {1, 7, 32, 0, 0},    {1, 2305, 768, 0, 0}, {3, 7, 96, 4, 1},
    {3, 130, 768, 0, 0}, {8, 33, 96, 0, 2},    {8, 7, 32, 4, 0},
};
static const qcase tl_cases[] = {
    {17, 7, 32, 0, 0},
    {17, 2305, 96, 0, 1},
    {65, 130, 768, 4, 0},
    {65, 7, 96, 0, 3},
};

Test(vk_quant, matvec)
{
    vkt t = vkt_open();
    vkt_seed(21);
    for (int q = 0; q < N_QTYPES; q++)
        for (int i = 0; i < (int)(sizeof mv_cases / sizeof mv_cases[0]); i++)
            for (int sg = 0; sg < 2; sg++) {
                if (mv_cases[i].rows > 1000 && sg != q % 2) continue; /* keep the big one short */
                run_qcase(&t, &mv_cases[i], QTYPES[q], (i + q + sg) % 8, (i + sg) % 2, NULL, sg);
            }
    vk_ops_set_subgroup(t.o, -1);
    vkt_close(&t);
}

Test(vk_quant, tiled)
{
    vkt t = vkt_open();
    vkt_seed(22);
    for (int q = 0; q < N_QTYPES; q++)
        for (int i = 0; i < (int)(sizeof tl_cases / sizeof tl_cases[0]); i++)
            run_qcase(&t, &tl_cases[i], QTYPES[q], (i + 3 * q) % 8, i % 2, NULL, -1);
    /* forced: tiled for a decode shape, matvec for a batch (several token groups) */
    static const qcase f[] = {{3, 70, 96, 0, 0}, {20, 70, 64, 0, 0}};
    for (int q = 0; q < N_QTYPES; q++) {
        run_qcase(&t, &f[0], QTYPES[q], 7, q % 2, "tiled", -1);
        run_qcase(&t, &f[1], QTYPES[q], 5, q % 2, "matvec", -1);
    }
    vk_ops_force_matmul(t.o, NULL);
    vkt_close(&t);
}

Test(vk_quant, variant_picking)
{
    vkt t = vkt_open();
    for (int q = 0; q < N_QTYPES; q++) {
        cr_assert_str_eq(vk_ops_matmul_variant(t.o, 1, QTYPES[q]), "matvec");
        cr_assert_str_eq(vk_ops_matmul_variant(t.o, 8, QTYPES[q]), "matvec");
        cr_assert_str_eq(vk_ops_matmul_variant(t.o, 9, QTYPES[q]), "tiled");
        cr_assert_str_eq(vk_ops_matmul_variant(t.o, 512, QTYPES[q]), "tiled");
        vk_ops_force_matmul(t.o, "coopmat_nv"); /* f16 only: never for block formats */
        cr_assert_str_eq(vk_ops_matmul_variant(t.o, 512, QTYPES[q]), "tiled");
        vk_ops_force_matmul(t.o, NULL);
    }
    vkt_close(&t);
}

Test(vk_quant, embed)
{
    vkt t = vkt_open();
    vkt_seed(23);
    int n_vocab = 301, n_ctx = 20, n = 5;
    static const int ds[] = {32, 768};
    for (int di = 0; di < 2; di++)
        for (int q = 0; q < N_QTYPES; q++) {
            int d = ds[di];
            gpt2_dtype tte = QTYPES[q];
            float *wte;
            void *qte = rand_quant(tte, n_vocab, d, &wte);
            size_t npe = (size_t)n_ctx * d, bte_bytes = gpt2_row_bytes(tte, (size_t)d) * n_vocab;
            float *wpe = vkt_rand_floats(npe, -1, 1);
            int32_t ids[5] = {0, 7, 150, 299, 300};
            vk_mem bte = vkt_buf(&t, bte_bytes, qte), bpe = vkt_buf(&t, npe * 4, wpe);
            vk_mem bids = vkt_buf(&t, sizeof ids, ids), bx = vkt_buf(&t, (size_t)n * d * 4, NULL);
            vk_mem bstep = vkt_host_buf(&t, sizeof(vk_step_params));
            int pos0 = 3;
            vk_step_params sp = {(uint32_t)pos0, (uint32_t)n, 0, 0};
            memcpy(bstep.map, &sp, sizeof sp);
            vkt_begin(&t);
            vk_op_embed(t.o, t.s, bx.addr, bte.addr, tte, bpe.addr, GPT2_F32, bids.addr, bstep.addr, n, d);
            vkt_run(&t);
            float *x = malloc((size_t)n * d * 4);
            vkt_get(&t, &bx, x, (size_t)n * d * 4);
            char what[96];
            snprintf(what, sizeof what, "embed d=%d wte %s", d, gpt2_dtype_name(tte));
            gpt2_tensor Tte = {tte, {d, n_vocab}, qte, bte_bytes};
            gpt2_tensor Tpe = {GPT2_F32, {d, n_ctx}, wpe, npe * 4};
            vkt_check_embed(what, x, &Tte, wte, &Tpe, wpe, ids, n, d, pos0);
            vk_mem_free(t.e, &bte);
            vk_mem_free(t.e, &bpe);
            vk_mem_free(t.e, &bids);
            vk_mem_free(t.e, &bx);
            vk_mem_free(t.e, &bstep);
            free(wte);
            free(qte);
            free(wpe);
            free(x);
        }
    vkt_close(&t);
}

/* ---- whole model ---- */

static gpt2_backend *backend(const gpt2_model *m, bool vulkan, int nb, gpt2_dtype kv)
{
    gpt2_backend_params bp = {.n_threads = 2, .n_batch = nb, .kv_type = kv, .device = -1};
    char err[512];
    gpt2_backend *b = vulkan ? gpt2_backend_vk_create(m, &bp, NULL, err, sizeof err)
                             : gpt2_backend_cpu_create(m, &bp, NULL, err, sizeof err);
    if (!b && vulkan) cr_skip_test("no Vulkan backend: %s", err);
    cr_assert_not_null(b, "backend: %s", err);
    return b;
}

/* Replaces a block-format tensor's data by its f32 dequantization (malloc'ed into *buf), keeping
 * tied tensors tied (prev: the tensor it may share data with, already converted). */
static void dequant_tensor(gpt2_tensor *t, const gpt2_tensor *prev_src, const gpt2_tensor *prev, void **buf)
{
    if (prev_src && t->data == prev_src->data) {
        *t = *prev;
        *buf = NULL;
        return;
    }
    size_t cols = (size_t)t->ne[0], rows = (size_t)t->ne[1], rb = gpt2_row_bytes(t->type, cols);
    float *f = malloc(rows * cols * sizeof *f);
    cr_assert(f);
    for (size_t r = 0; r < rows; r++)
        gpt2_dequantize_row(t->type, (const char *)t->data + r * rb, f + r * cols, cols);
    t->type = GPT2_F32;
    t->data = f;
    t->nbytes = rows * cols * sizeof *f;
    *buf = f;
}

/* A copy of m's weight table with every block-format tensor dequantized to f32 (what the shaders
 * compute with); buffers to free in bufs (4 * n_layer + 2). */
static gpt2_model dequantized(const gpt2_model *m, gpt2_layer *layers, void **bufs)
{
    gpt2_model d = *m;
    d.wtype = GPT2_F32;
    d.w.layers = layers;
    gpt2_tensor wte_src = m->w.wte;
    dequant_tensor(&d.w.wte, NULL, NULL, &bufs[0]);
    dequant_tensor(&d.w.lm_head, &wte_src, &d.w.wte, &bufs[1]);
    for (int l = 0; l < m->hp.n_layer; l++) {
        layers[l] = m->w.layers[l];
        dequant_tensor(&layers[l].attn_w, NULL, NULL, &bufs[2 + 4 * l]);
        dequant_tensor(&layers[l].proj_w, NULL, NULL, &bufs[3 + 4 * l]);
        dequant_tensor(&layers[l].fc_w, NULL, NULL, &bufs[4 + 4 * l]);
        dequant_tensor(&layers[l].fc2_w, NULL, NULL, &bufs[5 + 4 * l]);
    }
    return d;
}

Test(vk_quant, whole_model, .timeout = 120)
{
    char dir[] = "/tmp/vkg_vq_XXXXXX", f32path[64], qpath[64], err[512];
    cr_assert(mkdtemp(dir));
    snprintf(f32path, sizeof f32path, "%s/tiny.bin", dir);
    vkg_synth_params sp = {.size = "tiny", .format = "ggml", .type = "f32", .seed = 77};
    cr_assert_eq(vkg_synth(f32path, &sp, 0, err, sizeof err), 0, "%s", err);
    enum { PROMPT = 20, GEN = 32 };
    for (int q = 0; q < N_QTYPES; q++) {
        const char *tn = gpt2_dtype_name(QTYPES[q]);
        snprintf(qpath, sizeof qpath, "%s/tiny-%s.bin", dir, tn);
        cr_assert_eq(vkg_quantize(f32path, qpath, tn, NULL, 0, err, sizeof err), 0, "%s", err);
        gpt2_model m;
        cr_assert_eq(gpt2_model_load(&m, qpath, err, sizeof err), 0, "%s", err);
        cr_assert_eq(m.w.wte.type, QTYPES[q]);
        cr_assert_eq(m.w.lm_head.data, m.w.wte.data, "tied LM head");
        int V = m.hp.n_vocab;
        int32_t ids[PROMPT + GEN];
        for (int i = 0; i < PROMPT; i++) ids[i] = (int32_t)((i * 37 + 11) % V);

        /* Logits of the prompt (tiled matmuls, batch 32) and of 4 one-token steps (matvec), f32 KV
         * cache everywhere: Vulkan on the quantized model; the CPU on it (int8 activations), and on
         * the dequantized model (f32 activations: the shaders' arithmetic). */
        gpt2_layer layers[8];
        void *bufs[2 + 4 * 8];
        cr_assert(m.hp.n_layer <= 8);
        gpt2_model md = dequantized(&m, layers, bufs);
        gpt2_backend *be[3] = {backend(&m, false, 32, GPT2_F32), backend(&m, true, 32, GPT2_F32),
                               backend(&md, false, 32, GPT2_F32)};
        float *lg[3];
        for (int k = 0; k < 3; k++) {
            lg[k] = malloc((size_t)(PROMPT + 4) * V * sizeof(float));
            cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, ids, PROMPT, 0, GPT2_STEP_ALL, lg[k], NULL, NULL, 0,
                                               err, sizeof err),
                         0, "%s", err);
            for (int i = 0; i < 4; i++)
                cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, &ids[i], 1, PROMPT + i, GPT2_STEP_ALL,
                                                   lg[k] + (size_t)(PROMPT + i) * V, NULL, NULL, 0, err,
                                                   sizeof err),
                             0, "%s", err);
        }
        cr_expect_eq(be[1]->counters.cpu_fallback_nodes, 0, "%s: every node on the GPU", tn);
        size_t nl = (size_t)(PROMPT + 4) * V;
        double e_deq = vkt_rel_err(lg[1], lg[2], nl), e_cpu = vkt_rel_err(lg[1], lg[0], nl);
        cr_expect_lt(e_deq, 1e-5, "%s: Vulkan vs CPU on the dequantized weights: relative error %.3g", tn,
                     e_deq);
        cr_expect_lt(e_cpu, 5e-2, "%s: Vulkan vs CPU (int8 activations): relative error %.3g", tn, e_cpu);
        cr_log_info("%s: worst relative logit error, Vulkan vs CPU: %.3g (dequantized weights), %.3g (int8 "
                    "activations)\n",
                    tn, e_deq, e_cpu);
        for (int k = 0; k < 3; k++) {
            be[k]->destroy(be[k]);
            free(lg[k]);
        }
        for (int i = 0; i < 2 + 4 * m.hp.n_layer; i++) free(bufs[i]);

        /* Greedy: 32 tokens, the Vulkan default f16 KV cache against the CPU's f32. */
        be[0] = backend(&m, false, 32, GPT2_F32);
        be[1] = backend(&m, true, 32, GPT2_F16);
        int32_t seq[2][PROMPT + GEN];
        for (int k = 0; k < 2; k++) {
            memcpy(seq[k], ids, PROMPT * sizeof(int32_t));
            int32_t next;
            cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, seq[k], PROMPT, 0, GPT2_STEP_ARGMAX, NULL, &next,
                                               NULL, 0, err, sizeof err),
                         0, "%s", err);
            for (int i = PROMPT; i < PROMPT + GEN; i++) {
                seq[k][i] = next;
                if (i + 1 < PROMPT + GEN)
                    cr_assert_eq(gpt2_backend_eval_seq(be[k], 0, &seq[k][i], 1, i, GPT2_STEP_ARGMAX, NULL,
                                                       &next, NULL, 0, err, sizeof err),
                                 0, "%s", err);
            }
        }
        for (int i = PROMPT; i < PROMPT + GEN; i++)
            cr_expect_eq(seq[0][i], seq[1][i], "%s token %d: cpu %d, vulkan %d", tn, i, seq[0][i], seq[1][i]);
        cr_expect_eq(be[1]->counters.validation_messages, 0);
        for (int k = 0; k < 2; k++) be[k]->destroy(be[k]);
        gpt2_model_free(&m);
        unlink(qpath);
    }
    unlink(f32path);
    rmdir(dir);
}
