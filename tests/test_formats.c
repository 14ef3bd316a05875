/* test_formats.c - model file formats: synth -> write -> load round trips (ggml, HF f32/f16/bf16,
 * prefixed names, shards, tied/untied lm_head, activation), the Conv1D transposition, synth itself. */
#include <math.h>

#include "formats_util.h"

static void setup(void) { tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(); }

TestSuite(formats, .init = setup, .fini = teardown);

static void ggml_roundtrip(gpt2_dtype wt, bool untied)
{
    gpt2_model a, b;
    tu_synth(&a, wt, untied);
    char err[512] = "";
    const char *p = tu_path("m.bin");
    cr_assert(gpt2_write_ggml(&a, p, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, p, err, sizeof err) == 0, "%s", err);
    cr_assert_str_eq(b.format, "ggml");
    tu_same_model(&a, &b);
    cr_assert(b.map != NULL);
    /* Aligned tensors of the right type point into the mapping. */
    int mapped = 0, n = gpt2_n_tensors(&b.hp);
    for (int id = 0; id < n; id++) {
        const char *d = gpt2_tensor_at_c(&b, id)->data, *m0 = b.map;
        if (d >= m0 && d < m0 + b.map_size) mapped++;
    }
    cr_assert(mapped > 0);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
}

/* A ggml file written here by hand with unusual types: f16 vectors (widened to f32), an f32 matrix in
 * an f16 file (converted to f16), f16 wpe (kept f16). */
Test(formats, ggml_mixed_types)
{
    gpt2_model a, b;
    tu_synth(&a, GPT2_F32, false);
    const char *p = tu_path("mixed.bin");
    FILE *f = fopen(p, "wb");
    int32_t h[8] = {0x67676d6c,  a.hp.n_vocab, a.hp.n_ctx, a.hp.n_embd,
                    a.hp.n_head, a.hp.n_layer, 1,          a.hp.n_vocab};
    fwrite(h, 4, 8, f);
    for (int i = 0; i < a.hp.n_vocab; i++) {
        fwrite(&a.vocab.len[i], 4, 1, f);
        fwrite(a.vocab.tok[i], 1, a.vocab.len[i], f);
    }
    int n = gpt2_n_tensors(&a.hp);
    int f32_matrix = GPT2_T_GLOBALS + GPT2_L_ATTN_W;
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD) continue;
        const gpt2_tensor *t = gpt2_tensor_at_c(&a, id);
        char name[64];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        int32_t tt = id == f32_matrix ? 0 : 1, nd = gpt2_tensor_kind(id) == GPT2_K_VEC ? 1 : 2;
        int32_t rec[5] = {nd, (int32_t)strlen(name), tt, (int32_t)t->ne[0], (int32_t)t->ne[1]};
        fwrite(rec, 4, 3 + (size_t)nd, f);
        fwrite(name, 1, strlen(name), f);
        size_t cnt = (size_t)t->ne[0] * (size_t)t->ne[1];
        for (size_t i = 0; i < cnt; i++) {
            float v = gpt2_load(t->data, GPT2_F32, i);
            if (tt == 0) {
                fwrite(&v, 4, 1, f);
            } else {
                uint16_t x = gpt2_f32_to_f16(v);
                fwrite(&x, 2, 1, f);
            }
        }
    }
    fclose(f);
    char err[512] = "";
    cr_assert(gpt2_model_load(&b, p, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.wtype, GPT2_F16);
    cr_assert_eq(b.w.wpe.type, GPT2_F16);
    cr_assert_eq(b.w.wte.type, GPT2_F16);
    cr_assert_eq(b.w.layers[0].attn_w.type, GPT2_F16);
    cr_assert_eq(b.w.layers[1].fc_b.type, GPT2_F32);
    cr_assert_eq(b.w.ln_f_g.type, GPT2_F32);
    /* Matrices and embeddings stored in the model's type are views into the mapping, aligned or
     * not (no copy of the weights); the file's unpadded records leave some of them misaligned. The
     * f32 matrix is converted to the model's f16. */
    int misaligned = 0;
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *y = gpt2_tensor_at_c(&b, id);
        if (id == GPT2_T_LM_HEAD || id == f32_matrix || gpt2_tensor_kind(id) == GPT2_K_VEC) continue;
        cr_assert((const char *)y->data >= (const char *)b.map &&
                      (const char *)y->data + y->nbytes <= (const char *)b.map + b.map_size,
                  "tensor %d was copied out of the mapping", id);
        misaligned += (uintptr_t)y->data % gpt2_dtype_size(y->type) != 0;
    }
    cr_assert_gt(misaligned, 0, "no misaligned tensor: the case is not exercised");
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD) continue;
        const gpt2_tensor *x = gpt2_tensor_at_c(&a, id), *y = gpt2_tensor_at_c(&b, id);
        size_t cnt = (size_t)x->ne[0] * (size_t)x->ne[1];
        for (size_t i = 0; i < cnt; i++) {
            float want = gpt2_f16_to_f32(gpt2_f32_to_f16(gpt2_load(x->data, GPT2_F32, i)));
            cr_assert_eq(gpt2_load(y->data, y->type, i), want, "tensor %d elem %zu", id, i);
        }
    }
    char e2[256];
    cr_assert(gpt2_model_validate(&b, e2, sizeof e2) == 0, "%s", e2);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
}

Test(formats, ggml_f32) { ggml_roundtrip(GPT2_F32, false); }
Test(formats, ggml_f16) { ggml_roundtrip(GPT2_F16, false); }
Test(formats, ggml_f16_untied) { ggml_roundtrip(GPT2_F16, true); }
Test(formats, ggml_f32_untied) { ggml_roundtrip(GPT2_F32, true); }

/* The layout ggml's gpt-2 example expects, checked byte by byte at the start of the file. */
Test(formats, ggml_layout)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F16, false);
    char err[512] = "";
    const char *p = tu_path("m.bin");
    cr_assert(gpt2_write_ggml(&a, p, err, sizeof err) == 0, "%s", err);
    size_t n;
    unsigned char *b = tu_read(p, &n);
    int32_t h[8];
    memcpy(h, b, sizeof h);
    cr_assert_eq((uint32_t)h[0], 0x67676d6cu);
    cr_assert(memcmp(b, "lmgg", 4) == 0);
    cr_assert_eq(h[1], a.hp.n_vocab);
    cr_assert_eq(h[2], a.hp.n_ctx);
    cr_assert_eq(h[3], a.hp.n_embd);
    cr_assert_eq(h[4], a.hp.n_head);
    cr_assert_eq(h[5], a.hp.n_layer);
    cr_assert_eq(h[6], 1); /* ftype mostly f16 */
    cr_assert_eq(h[7], a.hp.n_vocab);
    size_t off = 32;
    for (int i = 0; i < a.hp.n_vocab; i++) {
        uint32_t len;
        memcpy(&len, b + off, 4);
        cr_assert_eq(len, a.vocab.len[i]);
        cr_assert(memcmp(b + off + 4, a.vocab.tok[i], len) == 0);
        off += 4 + len;
    }
    /* Walk the tensors: wte f16 2-D, wpe f32, vectors f32 1-D, matrices f16 [in, out]. */
    int seen = 0;
    while (off < n) {
        int32_t nd, nl, tt, ne[2] = {1, 1};
        memcpy(&nd, b + off, 4);
        memcpy(&nl, b + off + 4, 4);
        memcpy(&tt, b + off + 8, 4);
        memcpy(ne, b + off + 12, 4 * (size_t)nd);
        char name[64] = {0};
        memcpy(name, b + off + 12 + 4 * nd, (size_t)nl);
        off += 12 + 4 * (size_t)nd + (size_t)nl;
        if (strcmp(name, "model/wpe") == 0) cr_assert_eq(tt, 0);
        if (strcmp(name, "model/wte") == 0)
            cr_assert(tt == 1 && nd == 2 && ne[0] == 64 && ne[1] == a.hp.n_vocab);
        if (strcmp(name, "model/h1/mlp/c_fc/w") == 0)
            cr_assert(tt == 1 && nd == 2 && ne[0] == 64 && ne[1] == 256);
        if (strcmp(name, "model/h1/mlp/c_fc/b") == 0) cr_assert(tt == 0 && nd == 1 && ne[0] == 256);
        cr_assert(strcmp(name, "model/lm_head") != 0, "tied model must not write lm_head");
        off += (size_t)ne[0] * (size_t)ne[1] * (tt ? 2 : 4);
        seen++;
    }
    cr_assert_eq(off, n);
    cr_assert_eq(seen, 4 + 12 * a.hp.n_layer);
    free(b);
    gpt2_model_free(&a);
}

Test(formats, ggml_real_vocab)
{
    const char *root = getenv("VKGPT2_SOURCE_ROOT");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/data/gpt2-vocab", root ? root : ".");
    gpt2_vocab v;
    char err[512] = "";
    if (gpt2_vocab_load_dir(&v, dir, err, sizeof err) != 0) cr_skip_test("no GPT-2 vocabulary: %s", err);
    cr_assert_eq(v.n_tokens, 50257);
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    p.vocab = &v;
    p.wtype = GPT2_F16;
    gpt2_model a, b;
    cr_assert(gpt2_synth(&a, &p, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(a.hp.n_vocab, 50257);
    const char *f = tu_path("real.bin");
    cr_assert(gpt2_write_ggml(&a, f, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, f, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.vocab.eot, 50256);
    cr_assert_eq(b.vocab.n_merges, 50000); /* derived from ids */
    tu_same_model(&a, &b);
    gpt2_model_free(&b);
    /* HF too: vocab.json + merges.txt written by the vocab writer, read back. */
    const char *d = tu_path("real_hf");
    cr_assert(gpt2_write_hf(&a, d, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, d, err, sizeof err) == 0, "%s", err);
    tu_same_model(&a, &b);
    gpt2_model_free(&b);
    gpt2_model_free(&a);
    gpt2_vocab_free(&v);
}

static void hf_roundtrip(gpt2_dtype wt, bool untied, unsigned flags)
{
    gpt2_model a, b;
    tu_synth(&a, wt, untied);
    char err[512] = "";
    const char *d = tu_path("hf");
    cr_assert(gpt2_write_hf_ex(&a, d, flags, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, d, err, sizeof err) == 0, "%s", err);
    cr_assert_str_eq(b.format, "hf");
    tu_same_model(&a, &b);
    if (!(flags & GPT2_HF_SHARDED)) { /* embeddings stay in the mapping */
        const char *w = b.w.wte.data, *m0 = b.map;
        cr_assert(w >= m0 && w < m0 + b.map_size);
    }
    if (!(flags & GPT2_HF_SHARDED)) {
        size_t n;
        unsigned char *buf = tu_read(tu_path("hf/model.safetensors"), &n);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
        cr_assert_eq((8 + hl) % 8, 0, "data must start 8-aligned");
        char *h = calloc(1, hl + 1);
        memcpy(h, buf + 8, hl);
        cr_assert_eq(strstr(h, "\"transformer.h.0.ln_1.weight\"") != NULL, (flags & GPT2_HF_PREFIX) != 0);
        cr_assert_eq(strstr(h, "\"lm_head.weight\"") != NULL, untied);
        /* Conv1D layout in the file: c_fc [in=64][out=256] */
        cr_assert(strstr(h, "mlp.c_fc.weight\":{\"dtype\":\"") != NULL);
        cr_assert(strstr(h, "\"shape\":[64,256]") != NULL);
        free(h);
        free(buf);
    } else {
        struct stat st;
        cr_assert(stat(tu_path("hf/model-00001-of-00002.safetensors"), &st) == 0);
        cr_assert(stat(tu_path("hf/model-00002-of-00002.safetensors"), &st) == 0);
        cr_assert(stat(tu_path("hf/model.safetensors"), &st) != 0);
        cr_assert_eq(b.n_extra, 1);
    }
    gpt2_model_free(&b);
    /* Loading through config.json's path gives the same model. */
    cr_assert(gpt2_model_load(&b, tu_path("hf/config.json"), err, sizeof err) == 0, "%s", err);
    tu_same_model(&a, &b);
    gpt2_model_free(&b);
    gpt2_model_free(&a);
}

Test(formats, hf_f32) { hf_roundtrip(GPT2_F32, false, 0); }
Test(formats, hf_f16) { hf_roundtrip(GPT2_F16, false, 0); }
Test(formats, hf_f32_prefix) { hf_roundtrip(GPT2_F32, false, GPT2_HF_PREFIX); }
Test(formats, hf_f16_prefix_untied) { hf_roundtrip(GPT2_F16, true, GPT2_HF_PREFIX); }
Test(formats, hf_f32_untied) { hf_roundtrip(GPT2_F32, true, 0); }
Test(formats, hf_sharded) { hf_roundtrip(GPT2_F32, false, GPT2_HF_SHARDED); }
Test(formats, hf_sharded_f16_prefix_untied)
{
    hf_roundtrip(GPT2_F16, true, GPT2_HF_SHARDED | GPT2_HF_PREFIX);
}

/* ggml -> model -> HF -> model -> ggml: the two ggml files are identical. */
Test(formats, convert_chain)
{
    gpt2_model a, b, c;
    tu_synth(&a, GPT2_F16, true);
    char err[512] = "";
    cr_assert(gpt2_write_ggml(&a, tu_path("1.bin"), err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, tu_path("1.bin"), err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_write_hf(&b, tu_path("hf"), err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&c, tu_path("hf"), err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_write_ggml(&c, tu_path("2.bin"), err, sizeof err) == 0, "%s", err);
    size_t n1, n2;
    unsigned char *x = tu_read(tu_path("1.bin"), &n1), *y = tu_read(tu_path("2.bin"), &n2);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(x, y, n1) == 0);
    free(x);
    free(y);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
    gpt2_model_free(&c);
}

/* A BF16 safetensors written by hand from a synthetic model: loads as f32 within bf16 rounding. */
Test(formats, hf_bf16)
{
    gpt2_model a, b;
    tu_synth(&a, GPT2_F32, true);
    char err[512] = "";
    const char *d = tu_path("hf");
    cr_assert(gpt2_write_hf(&a, d, err, sizeof err) == 0, "%s", err);
    int n = gpt2_n_tensors(&a.hp);
    tu_st *t = calloc((size_t)n, sizeof *t);
    char(*names)[64] = calloc((size_t)n, 64);
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *x = gpt2_tensor_at_c(&a, id);
        size_t ne0 = (size_t)x->ne[0], ne1 = (size_t)x->ne[1], cnt = ne0 * ne1;
        uint16_t *h = malloc(cnt * 2);
        const float *f = x->data;
        gpt2_tensor_name_hf(id, names[id], 64);
        t[id].name = names[id];
        t[id].dtype = "BF16";
        t[id].data = h;
        t[id].nbytes = cnt * 2;
        gpt2_tkind k = gpt2_tensor_kind(id);
        if (k == GPT2_K_VEC) {
            t[id].ndim = 1;
            t[id].shape[0] = (int64_t)ne0;
            for (size_t i = 0; i < cnt; i++) h[i] = gpt2_f32_to_bf16(f[i]);
        } else if (k == GPT2_K_MAT) { /* [in][out] */
            t[id].ndim = 2;
            t[id].shape[0] = (int64_t)ne0;
            t[id].shape[1] = (int64_t)ne1;
            for (size_t o = 0; o < ne1; o++)
                for (size_t i = 0; i < ne0; i++) h[i * ne1 + o] = gpt2_f32_to_bf16(f[o * ne0 + i]);
        } else {
            t[id].ndim = 2;
            t[id].shape[0] = (int64_t)ne1;
            t[id].shape[1] = (int64_t)ne0;
            for (size_t i = 0; i < cnt; i++) h[i] = gpt2_f32_to_bf16(f[i]);
        }
    }
    tu_write_st(tu_path("hf/model.safetensors"), t, n);
    cr_assert(gpt2_model_load(&b, d, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.wtype, GPT2_F32);
    cr_assert(b.w.lm_head.data != b.w.wte.data);
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *x = gpt2_tensor_at_c(&a, id), *y = gpt2_tensor_at_c(&b, id);
        cr_assert_eq(y->type, GPT2_F32);
        cr_assert_eq(y->ne[0], x->ne[0]);
        cr_assert_eq(y->ne[1], x->ne[1]);
        const float *fx = x->data, *fy = y->data;
        size_t cnt = (size_t)x->ne[0] * (size_t)x->ne[1];
        for (size_t i = 0; i < cnt; i++) {
            cr_assert(fabsf(fy[i] - fx[i]) <= fabsf(fx[i]) * (1.0f / 256.0f), "%s[%zu]: %g vs %g", names[id],
                      i, (double)fy[i], (double)fx[i]);
            cr_assert_eq(fy[i], gpt2_bf16_to_f32(gpt2_f32_to_bf16(fx[i])));
        }
        free((void *)t[id].data);
    }
    free(t);
    free(names);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
}

/* A hand-made 1-layer model (n_embd 4) whose every value encodes its position in the file. */
static float handval(int tensor, size_t flat) { return (float)(tensor * 100 + (int)flat); }
static const char *hand_dtype; /* type of the 2-D weights in the hand-made file */
/* handval as stored: 16-bit matrices round (f16 is exact below 2048, bf16 is not). */
static float handval_as(int tensor, size_t flat)
{
    float v = handval(tensor, flat);
    if (strcmp(hand_dtype, "F16") == 0) return gpt2_f16_to_f32(gpt2_f32_to_f16(v));
    if (strcmp(hand_dtype, "BF16") == 0) return gpt2_bf16_to_f32(gpt2_f32_to_bf16(v));
    return v;
}

static void write_hand_model(const char *dir, const char *dtype, const char *act, bool prefix)
{
    mkdir(dir, 0755);
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\":\"gpt2\",\"vocab_size\":5,\"n_positions\":3,\"n_embd\":4,\"n_layer\":1,"
             "\"n_head\":2,\"layer_norm_epsilon\":1e-05,\"activation_function\":\"%s\"}",
             act);
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tu_write_str(path, cfg);
    static const struct {
        const char *name;
        int ndim;
        int64_t s0, s1;
    } spec[] = {
        {"wte.weight", 2, 5, 4},
        {"wpe.weight", 2, 3, 4},
        {"ln_f.weight", 1, 4, 0},
        {"ln_f.bias", 1, 4, 0},
        {"h.0.ln_1.weight", 1, 4, 0},
        {"h.0.ln_1.bias", 1, 4, 0},
        {"h.0.attn.c_attn.weight", 2, 4, 12},
        {"h.0.attn.c_attn.bias", 1, 12, 0},
        {"h.0.attn.c_proj.weight", 2, 4, 4},
        {"h.0.attn.c_proj.bias", 1, 4, 0},
        {"h.0.ln_2.weight", 1, 4, 0},
        {"h.0.ln_2.bias", 1, 4, 0},
        {"h.0.mlp.c_fc.weight", 2, 4, 16},
        {"h.0.mlp.c_fc.bias", 1, 16, 0},
        {"h.0.mlp.c_proj.weight", 2, 16, 4},
        {"h.0.mlp.c_proj.bias", 1, 4, 0},
        {"h.0.attn.bias", 2, 3, 3}, /* a buffer the loader must ignore */
    };
    int n = (int)(sizeof spec / sizeof spec[0]);
    tu_st t[32];
    char names[32][64];
    for (int k = 0; k < n; k++) {
        size_t cnt = (size_t)spec[k].s0 * (size_t)(spec[k].ndim == 2 ? spec[k].s1 : 1);
        bool is16 = strcmp(dtype, "F32") != 0 && strstr(spec[k].name, "weight") && spec[k].ndim == 2;
        bool isvec = spec[k].ndim == 1;
        const char *dt = isvec ? "F32" : is16 ? dtype : "F32";
        void *data = malloc(cnt * 4);
        for (size_t i = 0; i < cnt; i++) {
            float v = handval(k, i);
            if (strcmp(dt, "F32") == 0)
                ((float *)data)[i] = v;
            else if (strcmp(dt, "F16") == 0)
                ((uint16_t *)data)[i] = gpt2_f32_to_f16(v);
            else
                ((uint16_t *)data)[i] = gpt2_f32_to_bf16(v);
        }
        snprintf(names[k], 64, "%s%s", prefix ? "transformer." : "", spec[k].name);
        t[k] = (tu_st){names[k],     dt,
                       spec[k].ndim, {spec[k].s0, spec[k].s1},
                       data,         cnt * (strcmp(dt, "F32") == 0 ? 4 : 2)};
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tu_write_st(path, t, n);
    for (int k = 0; k < n; k++) free((void *)t[k].data);
}

static float elem(const gpt2_tensor *t, size_t row, size_t col)
{
    return gpt2_load((const char *)t->data + row * (size_t)t->ne[0] * gpt2_dtype_size(t->type), t->type, col);
}

static void check_hand_model(const char *dtype, bool prefix)
{
    const char *d = tu_path("hand");
    hand_dtype = dtype;
    write_hand_model(d, dtype, "gelu_new", prefix);
    gpt2_model m;
    char err[512] = "";
    cr_assert(gpt2_load_hf(&m, d, err, sizeof err) != 0, "no vocabulary must fail");
    cr_assert(strstr(err, d) && strstr(err, "vocab"), "%s", err);
    cr_assert(gpt2_model_load_ex(&m, d, GPT2_LOAD_VOCAB_OPTIONAL, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(m.vocab.n_tokens, 0);
    cr_assert_eq(m.hp.n_embd, 4);
    cr_assert_eq(m.hp.n_ctx, 3);
    cr_assert_eq(m.hp.n_vocab, 5);
    cr_assert_eq(m.wtype, strcmp(dtype, "F16") == 0 ? GPT2_F16 : GPT2_F32);
    const gpt2_layer *L = &m.w.layers[0];
    /* Non-square: c_attn file [in=4][out=12] (tensor 6) -> attn_w [out=12][in=4]. */
    cr_assert_eq(L->attn_w.ne[0], 4);
    cr_assert_eq(L->attn_w.ne[1], 12);
    for (size_t o = 0; o < 12; o++)
        for (size_t i = 0; i < 4; i++)
            cr_assert_eq(elem(&L->attn_w, o, i), handval_as(6, i * 12 + o), "c_attn W[%zu][%zu]", o, i);
    cr_assert_eq(elem(&L->attn_w, 7, 2), handval_as(6, 2 * 12 + 7));
    /* Square: c_proj file [4][4] (tensor 8): W[o][i] = file[i][o]. */
    cr_assert_eq(elem(&L->proj_w, 1, 3), handval_as(8, 3 * 4 + 1));
    cr_assert_eq(elem(&L->proj_w, 3, 1), handval_as(8, 1 * 4 + 3));
    for (size_t o = 0; o < 4; o++)
        for (size_t i = 0; i < 4; i++) cr_assert_eq(elem(&L->proj_w, o, i), handval_as(8, i * 4 + o));
    /* MLP: c_fc [4][16] -> [16][4]; c_proj [16][4] -> [4][16]. */
    cr_assert_eq(elem(&L->fc_w, 13, 2), handval_as(12, 2 * 16 + 13));
    cr_assert_eq(elem(&L->fc2_w, 3, 13), handval_as(14, 13 * 4 + 3));
    /* Embeddings are not transposed: wte [5][4]. */
    cr_assert_eq(elem(&m.w.wte, 3, 2), handval_as(0, 3 * 4 + 2));
    cr_assert_eq(elem(&m.w.wpe, 2, 1), handval_as(1, 2 * 4 + 1));
    cr_assert_eq(elem(&m.w.lm_head, 3, 2), handval_as(0, 3 * 4 + 2));
    cr_assert_eq(m.w.lm_head.data, m.w.wte.data);
    cr_assert_eq(((const float *)L->fc_b.data)[15], handval(13, 15)); /* vectors stay f32 */
    cr_assert_eq(((const float *)m.w.ln_f_b.data)[2], handval(3, 2));
    gpt2_model_free(&m);
}

Test(formats, transpose_f32) { check_hand_model("F32", false); }
Test(formats, transpose_f16_prefix) { check_hand_model("F16", true); }
Test(formats, transpose_bf16) { check_hand_model("BF16", false); }

static gpt2_gelu load_with_act(const char *act, int *ok, char *err, size_t errlen)
{
    const char *d = tu_path("act");
    write_hand_model(d, "F32", act, false);
    gpt2_model m;
    *ok = gpt2_model_load_ex(&m, d, GPT2_LOAD_VOCAB_OPTIONAL, err, errlen) == 0;
    gpt2_gelu g = m.hp.gelu;
    if (*ok) gpt2_model_free(&m);
    return g;
}

Test(formats, activation)
{
    char err[512] = "";
    int ok;
    cr_assert_eq(load_with_act("gelu_new", &ok, err, sizeof err), GPT2_GELU_TANH);
    cr_assert(ok, "%s", err);
    cr_assert_eq(load_with_act("gelu_pytorch_tanh", &ok, err, sizeof err), GPT2_GELU_TANH);
    cr_assert(ok, "%s", err);
    cr_assert_eq(load_with_act("gelu", &ok, err, sizeof err), GPT2_GELU_ERF);
    cr_assert(ok, "%s", err);
    load_with_act("relu", &ok, err, sizeof err);
    cr_assert(!ok);
    cr_assert(strstr(err, "config.json") && strstr(err, "relu"), "%s", err);
    /* And the writer keeps the erf form. */
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    p.gelu = GPT2_GELU_ERF;
    gpt2_model a, b;
    cr_assert(gpt2_synth(&a, &p, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_write_hf(&a, tu_path("erf"), err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, tu_path("erf"), err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.hp.gelu, GPT2_GELU_ERF);
    tu_same_model(&a, &b);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
}

/* ---- synth ---- */

Test(formats, synth_deterministic)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    p.seed = 7;
    p.n_threads = 1;
    gpt2_model a, b, c;
    char err[256] = "";
    cr_assert(gpt2_synth(&a, &p, err, sizeof err) == 0, "%s", err);
    p.n_threads = 3;
    cr_assert(gpt2_synth(&b, &p, err, sizeof err) == 0, "%s", err);
    tu_same_model(&a, &b);
    p.seed = 8;
    cr_assert(gpt2_synth(&c, &p, err, sizeof err) == 0, "%s", err);
    cr_assert(memcmp(a.w.wte.data, c.w.wte.data, a.w.wte.nbytes) != 0);
    /* gpt2_synth_value regenerates any element. */
    int id = GPT2_T_GLOBALS + GPT2_L_COUNT + GPT2_L_FC2_W;
    const gpt2_tensor *t = gpt2_tensor_at_c(&a, id);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(gpt2_load(t->data, GPT2_F32, i * 97), gpt2_synth_value(&a.hp, 7, id, i * 97));
    /* Scales: wte ~ N(0, 0.02), ln gains ~ 1, residual projections smaller. */
    double s = 0, s2 = 0;
    size_t n = (size_t)a.w.wte.ne[0] * (size_t)a.w.wte.ne[1];
    for (size_t i = 0; i < n; i++) {
        double v = ((const float *)a.w.wte.data)[i];
        s += v;
        s2 += v * v;
    }
    double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    cr_assert(fabs(mean) < 0.002 && fabs(sd - 0.02) < 0.002, "wte mean %g sd %g", mean, sd);
    const float *g = a.w.layers[1].ln2_g.data;
    for (int i = 0; i < a.hp.n_embd; i++) cr_assert(g[i] > 0.7f && g[i] < 1.3f);
    cr_assert_eq(gpt2_weights_bytes(&a), (size_t)gpt2_expected_bytes(&a.hp, GPT2_F32, false));
    gpt2_model_free(&a);
    gpt2_model_free(&b);
    gpt2_model_free(&c);
}

Test(formats, synth_sizes)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    char err[256] = "";
    cr_assert(gpt2_synth_parse_size(&p, "124M", err, sizeof err) == 0);
    cr_assert_eq(p.size, GPT2_SYNTH_124M);
    cr_assert(gpt2_synth_parse_size(&p, "gpt2-xl", err, sizeof err) == 0);
    cr_assert_eq(p.size, GPT2_SYNTH_1558M);
    cr_assert(gpt2_synth_parse_size(&p, "3x96x6", err, sizeof err) == 0);
    cr_assert_eq(p.size, GPT2_SYNTH_CUSTOM);
    cr_assert(p.n_layer == 3 && p.n_embd == 96 && p.n_head == 6);
    cr_assert(gpt2_synth_parse_size(&p, "3x96x5", err, sizeof err) != 0);
    cr_assert(gpt2_synth_parse_size(&p, "huge", err, sizeof err) != 0);
    cr_assert(strstr(err, "huge"), "%s", err);
    cr_assert(gpt2_synth_parse_size(&p, "3x96x6", err, sizeof err) == 0);
    p.n_ctx = 50;
    p.wtype = GPT2_F16;
    const char *f = tu_path("c.bin");
    gpt2_model m;
    cr_assert(gpt2_synth_write(&p, "ggml", f, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&m, f, err, sizeof err) == 0, "%s", err);
    cr_assert(m.hp.n_layer == 3 && m.hp.n_embd == 96 && m.hp.n_head == 6 && m.hp.n_ctx == 50);
    cr_assert_eq(m.wtype, GPT2_F16);
    char e2[256];
    cr_assert(gpt2_model_validate(&m, e2, sizeof e2) == 0, "%s", e2);
    gpt2_model_free(&m);
    p.n_vocab = 600; /* padded rows beyond the vocabulary */
    cr_assert(gpt2_synth_write(&p, "hf", tu_path("c_hf"), err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&m, tu_path("c_hf"), err, sizeof err) == 0, "%s", err);
    cr_assert_eq(m.hp.n_ctx, 50);
    cr_assert_eq(m.hp.n_vocab, 600);
    cr_assert(m.vocab.n_tokens < 600);
    gpt2_model_free(&m);
    cr_assert(gpt2_synth_write(&p, "onnx", f, err, sizeof err) != 0);
}

Test(formats, validate_catches_bad_shapes)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F32, false);
    char err[256] = "";
    cr_assert(gpt2_model_validate(&a, err, sizeof err) == 0, "%s", err);
    a.w.layers[1].fc_w.ne[1] = 255;
    cr_assert(gpt2_model_validate(&a, err, sizeof err) != 0);
    cr_assert(strstr(err, "model/h1/mlp/c_fc/w has shape [64, 255], expected [64, 256]"), "%s", err);
    a.w.layers[1].fc_w.ne[1] = 256;
    a.w.layers[0].ln1_b.type = GPT2_F16;
    cr_assert(gpt2_model_validate(&a, err, sizeof err) != 0);
    cr_assert(strstr(err, "model/h0/ln_1/b has type f16"), "%s", err);
    a.w.layers[0].ln1_b.type = GPT2_F32;
    gpt2_model_free(&a);
}
