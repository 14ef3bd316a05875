/* test_quantize_tool.c - vkg_quantize end to end: synthetic models (ggml, HF, untied lm_head) ->
 * every block type -> ggml files with quantized ftypes load, with the right tensors quantized, and
 * their CPU logits stay close to the f32 model's (ordered by the formats' precision); quantized
 * files write back byte for byte; bad arguments fail with a message. */
#include <math.h>

#include "formats_util.h"
#include "vkgpt2.h"

static const char *const TYPES[] = {"q8_0", "q5_1", "q5_0", "q4_1", "q4_0"};
static const gpt2_dtype DT[] = {GPT2_Q8_0, GPT2_Q5_1, GPT2_Q5_0, GPT2_Q4_1, GPT2_Q4_0};
#define NT 5
#define T_POS 24

static void setup(void) { tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(); }
TestSuite(quantize_tool, .init = setup, .fini = teardown);

static void synth_model(gpt2_model *m, const char *size, bool untied, uint64_t seed)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[256];
    cr_assert_eq(gpt2_synth_parse_size(&p, size, err, sizeof err), 0, "%s", err);
    p.seed = seed;
    p.n_ctx = 64;
    p.untied_lm_head = untied;
    cr_assert_eq(gpt2_synth(m, &p, err, sizeof err), 0, "%s", err);
}

/* Logits of every position of a fixed token sequence, CPU backend, one thread. */
static float *logits_of(const char *path, int *n_vocab)
{
    char err[512];
    vkg_model *m = vkg_model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = VKG_BACKEND_CPU;
    sp.n_threads = 1;
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    *n_vocab = vkg_model_get_info(m).n_vocab;
    int32_t ids[T_POS];
    for (int i = 0; i < T_POS; i++) ids[i] = (int32_t)((i * 37 + 5) % *n_vocab);
    float *lg = malloc((size_t)T_POS * *n_vocab * sizeof *lg);
    cr_assert_eq(vkg_eval(s, ids, T_POS, lg, err, sizeof err), 0, "%s", err);
    vkg_session_free(s);
    vkg_model_free(m);
    return lg;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void check_types(const char *path, gpt2_dtype qt, bool untied)
{
    gpt2_model m;
    char err[512];
    cr_assert_eq(gpt2_model_load(&m, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(m.wtype, qt);
    cr_assert_eq(m.w.wte.type, qt);
    cr_assert_eq(m.w.lm_head.type, qt);
    cr_assert_eq(m.w.lm_head.data == m.w.wte.data, !untied, "tying kept");
    cr_assert_eq(m.w.wpe.type, GPT2_F32);
    cr_assert_eq(m.w.ln_f_g.type, GPT2_F32);
    for (int l = 0; l < m.hp.n_layer; l++) {
        const gpt2_layer *L = &m.w.layers[l];
        cr_assert(L->attn_w.type == qt && L->proj_w.type == qt && L->fc_w.type == qt && L->fc2_w.type == qt);
        cr_assert(L->attn_b.type == GPT2_F32 && L->ln1_g.type == GPT2_F32 && L->fc2_b.type == GPT2_F32);
        cr_assert_eq(L->fc_w.nbytes, gpt2_row_bytes(qt, (size_t)m.hp.n_embd) * 4 * m.hp.n_embd);
    }
    gpt2_model_free(&m);
}

/* Quantizes the f32 model at src to every type; logits against the f32 logits. */
static void run_all(const char *src_path, bool untied, const char *tag)
{
    char src[512]; /* tu_path's buffers are a ring of 8: keep a copy */
    snprintf(src, sizeof src, "%s", src_path);
    int nv;
    float *ref = logits_of(src, &nv);
    double rms[NT];
    size_t fsize[NT];
    for (int k = 0; k < NT; k++) {
        char name[64], err[512];
        snprintf(name, sizeof name, "%s-%s.bin", tag, TYPES[k]);
        const char *out = tu_path(name);
        FILE *rep = tmpfile();
        cr_assert_eq(vkg_quantize(src, out, TYPES[k], rep, 0, err, sizeof err), 0, "%s", err);
        /* the report names tensors and sizes */
        char buf[8192];
        rewind(rep);
        size_t got = fread(buf, 1, sizeof buf - 1, rep);
        buf[got] = 0;
        fclose(rep);
        cr_assert(strstr(buf, "model/h0/attn/c_attn/w") && strstr(buf, "model/wte") && strstr(buf, "MiB ->"),
                  "report:\n%s", buf);
        cr_assert_eq(strstr(buf, "model/h0/attn/c_attn/b"), NULL, "biases are not quantized");
        cr_assert_eq(strstr(buf, "model/lm_head") != NULL, untied);
        check_types(out, DT[k], untied);
        struct stat sb;
        cr_assert_eq(stat(out, &sb), 0);
        fsize[k] = (size_t)sb.st_size;
        float *lg = logits_of(out, &nv);
        double se = 0, sr = 0;
        int agree = 0;
        for (int t = 0; t < T_POS; t++) {
            const float *a = lg + (size_t)t * nv, *b = ref + (size_t)t * nv;
            agree += argmax(a, nv) == argmax(b, nv);
            for (int i = 0; i < nv; i++) {
                se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
                sr += (double)b[i] * b[i];
            }
        }
        rms[k] = sqrt(se / ((double)T_POS * nv));
        double rel = sqrt(se / sr);
        cr_log_info("%s %s: logit rms error %.4g (relative %.4g), top-1 %d/%d, %zu bytes", tag, TYPES[k],
                    rms[k], rel, agree, T_POS, fsize[k]);
        cr_expect_lt(rel, k == 0 ? 0.02 : 0.15, "%s %s: relative logit error %g", tag, TYPES[k], rel);
        cr_expect_geq(agree, k == 0 ? T_POS - 1 : T_POS / 2, "%s %s: top-1 agreement %d/%d", tag, TYPES[k],
                      agree, T_POS);
        free(lg);
    }
    /* q8_0 < q5_1 <= q5_0 < q4_1 <= q4_0, with some slack between the pairs */
    cr_expect(rms[0] < rms[1] && rms[0] < rms[2], "%s: q8_0 %g vs q5 %g %g", tag, rms[0], rms[1], rms[2]);
    cr_expect(fmax(rms[1], rms[2]) < fmin(rms[3], rms[4]), "%s: q5 %g %g vs q4 %g %g", tag, rms[1], rms[2],
              rms[3], rms[4]);
    cr_expect(rms[1] <= rms[2] * 1.3 && rms[3] <= rms[4] * 1.3, "%s: rms %g %g %g %g", tag, rms[1], rms[2],
              rms[3], rms[4]);
    /* sizes: q8_0 > q5_1 > q5_0 > q4_1 > q4_0 */
    for (int k = 1; k < NT; k++) cr_expect_gt(fsize[k - 1], fsize[k], "%s: sizes", tag);
    free(ref);
}

Test(quantize_tool, ggml_every_type, .timeout = 120)
{
    gpt2_model m;
    synth_model(&m, "2x64x4", false, 11);
    char err[512];
    const char *src = tu_path("f32.bin");
    cr_assert_eq(gpt2_write_ggml(&m, src, err, sizeof err), 0, "%s", err);
    gpt2_model_free(&m);
    run_all(src, false, "ggml");
}

Test(quantize_tool, hf_untied_every_type, .timeout = 120)
{
    gpt2_model m;
    synth_model(&m, "2x64x4", true, 12);
    char err[512];
    const char *src = tu_path("hf");
    cr_assert_eq(gpt2_write_hf(&m, src, err, sizeof err), 0, "%s", err);
    gpt2_model_free(&m);
    run_all(src, true, "hf-untied");
}

/* A quantized file loads, writes back to the same bytes, and its header says ftype N + 2000. */
Test(quantize_tool, quantized_ggml_round_trip)
{
    gpt2_model m;
    synth_model(&m, "1x32x2", false, 13);
    char err[512];
    const char *src = tu_path("f32.bin");
    cr_assert_eq(gpt2_write_ggml(&m, src, err, sizeof err), 0, "%s", err);
    gpt2_model_free(&m);
    static const int32_t ftype[NT] = {2007, 2009, 2008, 2003, 2002};
    static const int32_t ttype[NT] = {8, 7, 6, 3, 2};
    char q[512], q2[512];
    snprintf(q, sizeof q, "%s", tu_path("q.bin"));
    snprintf(q2, sizeof q2, "%s", tu_path("q2.bin"));
    for (int k = 0; k < NT; k++) {
        cr_assert_eq(vkg_quantize(src, q, TYPES[k], NULL, VKG_OUT_FORCE, err, sizeof err), 0, "%s", err);
        size_t n1, n2;
        unsigned char *a = tu_read(q, &n1);
        int32_t ft;
        memcpy(&ft, a + 24, 4);
        cr_assert_eq(ft, ftype[k], "%s: ftype %d", TYPES[k], ft);
        cr_assert_eq(gpt2_model_load(&m, q, err, sizeof err), 0, "%s", err);
        cr_assert_eq(gpt2_write_ggml(&m, q2, err, sizeof err), 0, "%s", err);
        gpt2_model_free(&m);
        unsigned char *b = tu_read(q2, &n2);
        cr_assert(n1 == n2 && memcmp(a, b, n1) == 0, "%s: rewritten file differs", TYPES[k]);
        /* ttype of some matrix record: find the name and read the header before it */
        const char *nm = "model/h0/mlp/c_fc/w";
        unsigned char *hit = memmem(a, n1, nm, strlen(nm));
        cr_assert(hit);
        int32_t tt;
        memcpy(&tt, hit - 8 - 4, 4); /* [n_dims, name_len, ttype, ne0, ne1] then the name */
        cr_assert_eq(tt, ttype[k], "%s: ttype %d", TYPES[k], tt);
        free(a);
        free(b);
        /* requantizing a quantized model works too (q -> q8_0) */
        cr_assert_eq(vkg_quantize(q, q2, "q8_0", NULL, VKG_OUT_FORCE, err, sizeof err), 0, "%s", err);
        check_types(q2, GPT2_Q8_0, false);
    }
}

Test(quantize_tool, errors)
{
    gpt2_model m;
    synth_model(&m, "1x48x2", false, 14); /* n_embd 48: not a multiple of 32 */
    char err[512];
    const char *odd = tu_path("odd.bin");
    cr_assert_eq(gpt2_write_ggml(&m, odd, err, sizeof err), 0, "%s", err);
    gpt2_model_free(&m);
    cr_assert_eq(vkg_quantize(odd, tu_path("o.bin"), "q4_0", NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "multiple of 32"), "%s", err);
    cr_assert_eq(vkg_quantize(odd, tu_path("o.bin"), "q3_k", NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "q3_k"), "%s", err);
    cr_assert_eq(vkg_quantize(tu_path("missing.bin"), tu_path("o.bin"), "q8_0", NULL, 0, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "missing.bin"), "%s", err);
    cr_assert_eq(vkg_quantize(odd, odd, "q8_0", NULL, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "is the input"), "%s", err);
    cr_assert_eq(vkg_quantize(odd, tu_path("nodir/o.bin"), "q8_0", NULL, 0, err, sizeof err), -1);
    /* a tensor with a quantized ttype where f32 is required (a bias) is refused */
    synth_model(&m, "1x32x2", false, 15);
    const char *src = tu_path("v.bin");
    cr_assert_eq(gpt2_write_ggml(&m, src, err, sizeof err), 0, "%s", err);
    gpt2_model_free(&m);
    size_t n;
    unsigned char *b = tu_read(src, &n);
    const char *nm = "model/h0/attn/c_attn/b";
    unsigned char *hit = memmem(b, n, nm, strlen(nm));
    cr_assert(hit);
    int32_t q8 = 8;
    memcpy(hit - 4 - 4, &q8, 4); /* [n_dims, name_len, ttype, ne0] then the name */
    tu_write(src, b, n);
    free(b);
    cr_assert_eq(gpt2_model_load(&m, src, err, sizeof err), -1);
    cr_assert(strstr(err, "c_attn/b is q8_0"), "%s", err);
}

/* OUT.gguf is written as GGUF: it loads with the same quantized tensors and logits as the ggml file. */
Test(quantize_tool, gguf_output)
{
    gpt2_model m;
    synth_model(&m, "1x64x2", false, 16);
    char err[512], src[512], g[512], l[512]; /* tu_path's buffers are a ring of 8: keep copies */
    snprintf(src, sizeof src, "%s", tu_path("f32.bin"));
    snprintf(g, sizeof g, "%s", tu_path("q.gguf"));
    snprintf(l, sizeof l, "%s", tu_path("q.bin"));
    cr_assert_eq(gpt2_write_ggml(&m, src, err, sizeof err), 0, "%s", err);
    gpt2_model_free(&m);
    for (int k = 0; k < NT; k++) {
        cr_assert_eq(vkg_quantize(src, g, TYPES[k], NULL, VKG_OUT_FORCE, err, sizeof err), 0, "%s", err);
        cr_assert_eq(vkg_quantize(src, l, TYPES[k], NULL, VKG_OUT_FORCE, err, sizeof err), 0, "%s", err);
        size_t n;
        unsigned char *b = tu_read(g, &n);
        cr_assert(n > 4 && memcmp(b, "GGUF", 4) == 0);
        free(b);
        check_types(g, DT[k], false);
        int nv;
        float *a = logits_of(g, &nv), *c = logits_of(l, &nv);
        cr_assert(memcmp(a, c, (size_t)T_POS * nv * sizeof *a) == 0, "%s: gguf and ggml logits differ",
                  TYPES[k]);
        free(a);
        free(c);
    }
}
