/* test_gguf.c - GGUF and llm.c files: write -> read round trips (f32, f16, the five block formats),
 * the generic GGUF parser on hand-built files (every value type, nested arrays, raw block tensors),
 * the same logits from HF, ggml, GGUF and llm.c files of one synthetic model, vkg_convert, and
 * hostile files (bad magic/version, overflowing counts and lengths, bad offsets, duplicates, unknown
 * types, too many dims, truncation at many offsets), each a one-line error naming the file. */
#include <math.h>

#include "cpu/quant.h"
#include "formats_util.h"
#include "core/backend.h"
#include "core/format_gguf.h"
#include "vkgpt2.h"

static void setup(void) { tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(); }

TestSuite(gguf, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- helpers */

/* A load must fail with one line that names the file. */
#define expect_fail(path, needle) expect_fail_at(path, needle, __LINE__)
static void expect_fail_at(const char *path, const char *needle, int line)
{
    gpt2_model m;
    char err[512] = "";
    int r = gpt2_model_load(&m, path, err, sizeof err);
    cr_assert_neq(r, 0, "line %d: %s loaded but should not (%s)", line, path, needle ? needle : "");
    if (r == 0) gpt2_model_free(&m);
    cr_assert(strstr(err, path) != NULL, "line %d: message does not name the file: %s", line, err);
    cr_assert(strchr(err, '\n') == NULL, "line %d: message is not one line: %s", line, err);
    if (needle) cr_assert(strstr(err, needle) != NULL, "line %d: message '%s' lacks '%s'", line, err, needle);
}

static void put_le(unsigned char *b, uint64_t v, int k)
{
    for (int i = 0; i < k; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *b, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* A copy of file `from` with k bytes at off replaced by v, written to `to`. */
static void patch(const char *from, const char *to, size_t off, uint64_t v, int k)
{
    size_t n;
    unsigned char *b = tu_read(from, &n);
    cr_assert(off + (size_t)k <= n);
    put_le(b + off, v, k);
    tu_write(to, b, n);
    free(b);
}

/* Offset of the first occurrence of a GGUF string (u64 length + bytes) s in the file's bytes. */
static size_t find_gguf_str(const unsigned char *b, size_t n, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = 0; i + 8 + l <= n; i++)
        if (get_le(b + i, 8) == l && memcmp(b + i + 8, s, l) == 0) return i;
    cr_assert_fail("string %s not in file", s);
    return 0;
}

static void synth_params(gpt2_synth_params *p, gpt2_dtype wt, bool untied)
{
    gpt2_synth_defaults(p);
    p->wtype = wt;
    p->untied_lm_head = untied;
    p->seed = 42;
}

/* Quantizes a float model in place: every matrix, wte and lm_head to t. */
static void quantize_model(gpt2_model *m, gpt2_dtype t)
{
    int n = gpt2_n_tensors(&m->hp);
    bool tied = m->w.lm_head.data == m->w.wte.data;
    for (int id = 0; id < n; id++) {
        gpt2_tkind k = gpt2_tensor_kind(id);
        if (k == GPT2_K_VEC || id == GPT2_T_WPE || (id == GPT2_T_LM_HEAD && tied)) continue;
        gpt2_tensor *x = gpt2_tensor_at(m, id);
        size_t cols = (size_t)x->ne[0], rows = (size_t)x->ne[1], rb = gpt2_row_bytes(t, cols);
        unsigned char *q = gpt2_model_alloc(m, rb * rows);
        float *row = malloc(cols * sizeof *row);
        cr_assert(q && row);
        for (size_t r = 0; r < rows; r++) {
            gpt2_dequantize_row(x->type, (const char *)x->data + gpt2_row_bytes(x->type, cols) * r, row,
                                cols);
            gpt2_quantize_row(t, row, q + rb * r, cols);
        }
        free(row);
        x->type = t;
        x->data = q;
        x->nbytes = rb * rows;
    }
    if (tied) m->w.lm_head = m->w.wte;
    m->wtype = t;
    char err[256];
    cr_assert(gpt2_model_validate(m, err, sizeof err) == 0, "%s", err);
}

/* ---------------------------------------------------------------- round trips */

static void gguf_roundtrip(gpt2_dtype wt, bool untied, gpt2_dtype quant)
{
    gpt2_synth_params p;
    synth_params(&p, wt, untied);
    gpt2_model a, b;
    char err[512] = "";
    cr_assert(gpt2_synth(&a, &p, err, sizeof err) == 0, "%s", err);
    if (gpt2_dtype_is_quant(quant)) quantize_model(&a, quant);
    const char *f = tu_path("m.gguf");
    cr_assert(gpt2_write_gguf(&a, f, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, f, err, sizeof err) == 0, "%s", err);
    cr_assert_str_eq(b.format, "gguf");
    tu_same_model(&a, &b);
    /* Matrices of the model's type point into the mapping (the data section is aligned). */
    const char *d = b.w.layers[0].attn_w.data, *m0 = b.map;
    cr_assert(d >= m0 && d < m0 + b.map_size);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
}

Test(gguf, roundtrip_f32) { gguf_roundtrip(GPT2_F32, false, GPT2_F32); }
Test(gguf, roundtrip_f16) { gguf_roundtrip(GPT2_F16, false, GPT2_F16); }
Test(gguf, roundtrip_f32_untied) { gguf_roundtrip(GPT2_F32, true, GPT2_F32); }
Test(gguf, roundtrip_f16_untied) { gguf_roundtrip(GPT2_F16, true, GPT2_F16); }
Test(gguf, roundtrip_q4_0) { gguf_roundtrip(GPT2_F32, false, GPT2_Q4_0); }
Test(gguf, roundtrip_q4_1) { gguf_roundtrip(GPT2_F32, true, GPT2_Q4_1); }
Test(gguf, roundtrip_q5_0) { gguf_roundtrip(GPT2_F32, false, GPT2_Q5_0); }
Test(gguf, roundtrip_q5_1) { gguf_roundtrip(GPT2_F32, false, GPT2_Q5_1); }
Test(gguf, roundtrip_q8_0) { gguf_roundtrip(GPT2_F16, true, GPT2_Q8_0); }

/* What the writer puts in the file, read with the generic parser: metadata and tensor infos as
 * llama.cpp's gpt2 converter writes them. */
Test(gguf, layout)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F16, false);
    char err[512] = "";
    const char *f = tu_path("m.gguf");
    cr_assert(gpt2_write_gguf(&a, f, err, sizeof err) == 0, "%s", err);
    size_t n;
    unsigned char *b = tu_read(f, &n);
    cr_assert(memcmp(b, "GGUF", 4) == 0);
    cr_assert_eq(get_le(b + 4, 4), 3);
    gguf_file g;
    cr_assert(gguf_parse(&g, b, n, f, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(g.alignment, 32);
    cr_assert_eq(g.data_off % 32, 0);
    cr_assert_eq(g.n_tensors, (uint64_t)(4 + 12 * a.hp.n_layer)); /* tied: no output.weight */
    const char *s;
    size_t sl;
    cr_assert(gguf_kv_str(gguf_find(&g, "general.architecture"), &s, &sl) && sl == 4 &&
              !memcmp(s, "gpt2", 4));
    cr_assert(gguf_kv_str(gguf_find(&g, "tokenizer.ggml.model"), &s, &sl) && sl == 4 &&
              !memcmp(s, "gpt2", 4));
    int64_t v;
    cr_assert(gguf_kv_int(gguf_find(&g, "gpt2.context_length"), &v) && v == a.hp.n_ctx);
    cr_assert(gguf_kv_int(gguf_find(&g, "gpt2.embedding_length"), &v) && v == a.hp.n_embd);
    cr_assert(gguf_kv_int(gguf_find(&g, "gpt2.feed_forward_length"), &v) && v == 4 * a.hp.n_embd);
    cr_assert(gguf_kv_int(gguf_find(&g, "gpt2.block_count"), &v) && v == a.hp.n_layer);
    cr_assert(gguf_kv_int(gguf_find(&g, "gpt2.attention.head_count"), &v) && v == a.hp.n_head);
    cr_assert(gguf_kv_int(gguf_find(&g, "tokenizer.ggml.eos_token_id"), &v) && v == a.vocab.eot);
    cr_assert(gguf_kv_int(gguf_find(&g, "general.alignment"), &v) && v == 32);
    double e;
    cr_assert(gguf_kv_float(gguf_find(&g, "gpt2.attention.layer_norm_epsilon"), &e) &&
              (float)e == a.hp.ln_eps);
    const gguf_kv *toks = gguf_find(&g, "tokenizer.ggml.tokens");
    cr_assert(toks && toks->type == GGUF_T_ARRAY && toks->arr_type == GGUF_T_STRING);
    cr_assert_eq(toks->arr_n, (uint64_t)a.vocab.n_tokens);
    const gguf_kv *mg = gguf_find(&g, "tokenizer.ggml.merges");
    cr_assert(mg && mg->arr_n == (uint64_t)a.vocab.n_merges);
    /* token 256+ of the byte vocabulary: a space-led merge is spelt with U+0120 'Ġ' */
    const gguf_tensor *t = gguf_find_tensor(&g, "blk.1.ffn_up.weight");
    cr_assert(t && t->n_dims == 2 && t->ne[0] == a.hp.n_embd && t->ne[1] == 4 * a.hp.n_embd);
    cr_assert_eq(t->ggml_type, GGML_ID_F16);
    cr_assert(memcmp(t->data, a.w.layers[1].fc_w.data, t->nbytes) == 0, "ffn_up is [out][in] as in memory");
    t = gguf_find_tensor(&g, "blk.0.attn_qkv.bias");
    cr_assert(t && t->n_dims == 1 && t->ne[0] == 3 * a.hp.n_embd && t->ggml_type == GGML_ID_F32);
    t = gguf_find_tensor(&g, "position_embd.weight");
    cr_assert(t && t->ne[0] == a.hp.n_embd && t->ne[1] == a.hp.n_ctx);
    cr_assert(gguf_find_tensor(&g, "output.weight") == NULL);
    for (uint64_t i = 0; i < g.n_tensors; i++) cr_assert_eq(g.t[i].offset % 32, 0);
    gguf_free(&g);
    free(b);
    gpt2_model_free(&a);
}

/* GGUF v2 has the same little-endian layout as v3. */
Test(gguf, version2)
{
    gpt2_model a, b;
    tu_synth(&a, GPT2_F32, false);
    char err[512] = "";
    cr_assert(gpt2_write_gguf(&a, tu_path("v3.gguf"), err, sizeof err) == 0, "%s", err);
    patch(tu_path("v3.gguf"), tu_path("v2.gguf"), 4, 2, 4);
    cr_assert(gpt2_model_load(&b, tu_path("v2.gguf"), err, sizeof err) == 0, "%s", err);
    tu_same_model(&a, &b);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
}

/* ---------------------------------------------------------------- a hand-built GGUF */

typedef struct gb {
    unsigned char *p;
    size_t n, cap;
} gb;

static void gb_put(gb *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void gb_u(gb *b, uint64_t v, int k)
{
    unsigned char x[8];
    put_le(x, v, k);
    gb_put(b, x, (size_t)k);
}
static void gb_str(gb *b, const char *s)
{
    gb_u(b, strlen(s), 8);
    gb_put(b, s, strlen(s));
}
static void gb_key(gb *b, const char *k, uint32_t t)
{
    gb_str(b, k);
    gb_u(b, t, 4);
}
static void gb_pad(gb *b, size_t a)
{
    while (b->n % a) gb_u(b, 0, 1);
}

/* Every value type, nested arrays, and raw block tensors of each format: what the parser sees. */
Test(gguf, parser_all_types)
{
    gb b = {0};
    gb_put(&b, "GGUF", 4);
    gb_u(&b, 3, 4);
    gb_u(&b, 6, 8);  /* tensors */
    gb_u(&b, 16, 8); /* kvs */
    gb_key(&b, "u8", GGUF_T_U8), gb_u(&b, 200, 1);
    gb_key(&b, "i8", GGUF_T_I8), gb_u(&b, (uint8_t)-5, 1);
    gb_key(&b, "u16", GGUF_T_U16), gb_u(&b, 60000, 2);
    gb_key(&b, "i16", GGUF_T_I16), gb_u(&b, (uint16_t)-300, 2);
    gb_key(&b, "u32", GGUF_T_U32), gb_u(&b, 4000000000u, 4);
    gb_key(&b, "i32", GGUF_T_I32), gb_u(&b, (uint32_t)-70000, 4);
    float f = 1.5f;
    uint32_t fb;
    memcpy(&fb, &f, 4);
    gb_key(&b, "f32", GGUF_T_F32), gb_u(&b, fb, 4);
    gb_key(&b, "bool", GGUF_T_BOOL), gb_u(&b, 1, 1);
    gb_key(&b, "str", GGUF_T_STRING), gb_str(&b, "h\xc3\xa9llo");
    gb_key(&b, "u64", GGUF_T_U64), gb_u(&b, 1ull << 40, 8);
    gb_key(&b, "i64", GGUF_T_I64), gb_u(&b, (uint64_t) - (1ll << 40), 8);
    double d = -2.25;
    uint64_t db;
    memcpy(&db, &d, 8);
    gb_key(&b, "f64", GGUF_T_F64), gb_u(&b, db, 8);
    gb_key(&b, "arr_i16", GGUF_T_ARRAY), gb_u(&b, GGUF_T_I16, 4), gb_u(&b, 3, 8);
    gb_u(&b, 1, 2), gb_u(&b, 2, 2), gb_u(&b, 3, 2);
    gb_key(&b, "arr_str", GGUF_T_ARRAY), gb_u(&b, GGUF_T_STRING, 4), gb_u(&b, 2, 8), gb_str(&b, "a"),
        gb_str(&b, "");
    /* [[1.0f], [], [[true, false]]] as arrays of arrays */
    gb_key(&b, "nested", GGUF_T_ARRAY), gb_u(&b, GGUF_T_ARRAY, 4), gb_u(&b, 2, 8);
    gb_u(&b, GGUF_T_F32, 4), gb_u(&b, 1, 8), gb_u(&b, fb, 4);
    gb_u(&b, GGUF_T_ARRAY, 4), gb_u(&b, 1, 8);
    gb_u(&b, GGUF_T_BOOL, 4), gb_u(&b, 2, 8), gb_u(&b, 1, 1), gb_u(&b, 0, 1);
    gb_key(&b, "general.alignment", GGUF_T_U32), gb_u(&b, 64, 4);
    /* tensors: one per block format plus a 3-D f32, each 64 columns */
    static const uint32_t types[6] = {GGML_ID_Q4_0, GGML_ID_Q4_1, GGML_ID_Q5_0,
                                      GGML_ID_Q5_1, GGML_ID_Q8_0, GGML_ID_BF16};
    static const gpt2_dtype dts[6] = {GPT2_Q4_0, GPT2_Q4_1, GPT2_Q5_0, GPT2_Q5_1, GPT2_Q8_0, GPT2_BF16};
    size_t off = 0, sizes[6];
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", i);
        gb_str(&b, name);
        gb_u(&b, 3, 4);
        gb_u(&b, 64, 8), gb_u(&b, 2, 8), gb_u(&b, 3, 8);
        gb_u(&b, types[i], 4);
        gb_u(&b, off, 8);
        sizes[i] = gpt2_row_bytes(dts[i], 64) * 6;
        off += (sizes[i] + 63) / 64 * 64;
    }
    gb_pad(&b, 64);
    size_t data = b.n;
    for (int i = 0; i < 6; i++) {
        for (size_t k = 0; k < sizes[i]; k++) gb_u(&b, (uint8_t)(i * 31 + k), 1);
        gb_pad(&b, 64);
    }
    gguf_file g;
    char err[512] = "";
    cr_assert(gguf_parse(&g, b.p, b.n, "mem", err, sizeof err) == 0, "%s", err);
    int64_t v;
    double x;
    const char *s;
    size_t sl;
    cr_assert(gguf_kv_int(gguf_find(&g, "u8"), &v) && v == 200);
    cr_assert(gguf_kv_int(gguf_find(&g, "i8"), &v) && v == -5);
    cr_assert(gguf_kv_int(gguf_find(&g, "u16"), &v) && v == 60000);
    cr_assert(gguf_kv_int(gguf_find(&g, "i16"), &v) && v == -300);
    cr_assert(gguf_kv_int(gguf_find(&g, "u32"), &v) && v == 4000000000ll);
    cr_assert(gguf_kv_int(gguf_find(&g, "i32"), &v) && v == -70000);
    cr_assert(gguf_kv_int(gguf_find(&g, "u64"), &v) && v == 1ll << 40);
    cr_assert(gguf_kv_int(gguf_find(&g, "i64"), &v) && v == -(1ll << 40));
    cr_assert(gguf_kv_float(gguf_find(&g, "f32"), &x) && x == 1.5);
    cr_assert(gguf_kv_float(gguf_find(&g, "f64"), &x) && x == -2.25);
    cr_assert(!gguf_kv_int(gguf_find(&g, "f64"), &v));
    cr_assert(gguf_find(&g, "bool")->type == GGUF_T_BOOL && gguf_find(&g, "bool")->val[0] == 1);
    cr_assert(gguf_kv_str(gguf_find(&g, "str"), &s, &sl) && sl == 6 && !memcmp(s, "h\xc3\xa9llo", 6));
    cr_assert_eq(gguf_find(&g, "arr_i16")->arr_n, 3);
    cr_assert_eq(gguf_find(&g, "arr_str")->arr_n, 2);
    cr_assert_eq(gguf_find(&g, "nested")->arr_type, GGUF_T_ARRAY);
    cr_assert_eq(g.alignment, 64);
    cr_assert_eq(g.data_off, data);
    for (int i = 0; i < 6; i++) {
        const gguf_tensor *t = &g.t[i];
        cr_assert_eq(t->dtype, dts[i]);
        cr_assert(t->ne[0] == 64 && t->ne[1] == 2 && t->ne[2] == 3 && t->ne[3] == 1 && t->n_dims == 3);
        cr_assert_eq(t->nbytes, sizes[i]);
        cr_assert_eq(t->data[0], (uint8_t)(i * 31));
        cr_assert_eq(t->data[sizes[i] - 1], (uint8_t)(i * 31 + sizes[i] - 1));
    }
    gguf_free(&g);

    /* Corruptions of this file: each a one-line error, never a crash. */
    struct {
        const char *key; /* patch the value type after this key */
        uint32_t type;
        const char *want;
    } bad[] = {
        {"u8", 13, "unknown value type"},
        {"u8", 9, "array"}, /* 200 as an array header: truncated or too long */
        {"str", GGUF_T_ARRAY, "array"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        unsigned char *c = malloc(b.n);
        memcpy(c, b.p, b.n);
        size_t at = find_gguf_str(c, b.n, bad[k].key) + 8 + strlen(bad[k].key);
        put_le(c + at, bad[k].type, 4);
        cr_assert(gguf_parse(&g, c, b.n, "mem", err, sizeof err) != 0, "case %zu parsed", k);
        cr_assert(strstr(err, "mem: ") == err && strstr(err, bad[k].want), "case %zu: %s", k, err);
        gguf_free(&g);
        free(c);
    }
    /* bool 2, an alignment of 48, an i16 array longer than the file, a tensor row of 48 q8_0 */
    unsigned char *c = malloc(b.n);
    memcpy(c, b.p, b.n);
    c[find_gguf_str(c, b.n, "bool") + 8 + 4 + 4] = 2;
    cr_assert(gguf_parse(&g, c, b.n, "mem", err, sizeof err) != 0 && strstr(err, "bool"), "%s", err);
    gguf_free(&g);
    memcpy(c, b.p, b.n);
    put_le(c + find_gguf_str(c, b.n, "general.alignment") + 8 + 17 + 4, 48, 4);
    cr_assert(gguf_parse(&g, c, b.n, "mem", err, sizeof err) != 0 && strstr(err, "alignment"), "%s", err);
    gguf_free(&g);
    memcpy(c, b.p, b.n);
    put_le(c + find_gguf_str(c, b.n, "arr_i16") + 8 + 7 + 4 + 4, 1ull << 62, 8);
    cr_assert(gguf_parse(&g, c, b.n, "mem", err, sizeof err) != 0 && strstr(err, "exceeds"), "%s", err);
    gguf_free(&g);
    memcpy(c, b.p, b.n);
    put_le(c + find_gguf_str(c, b.n, "t4") + 8 + 2 + 4, 48, 8);
    cr_assert(gguf_parse(&g, c, b.n, "mem", err, sizeof err) != 0 && strstr(err, "multiple of 32"), "%s",
              err);
    gguf_free(&g);
    /* a duplicate key: rename "u16" to "u32" */
    memcpy(c, b.p, b.n);
    memcpy(c + find_gguf_str(c, b.n, "u16") + 8, "u32", 3);
    cr_assert(gguf_parse(&g, c, b.n, "mem", err, sizeof err) != 0 &&
                  strstr(err, "duplicate metadata key 'u32'"),
              "%s", err);
    gguf_free(&g);
    free(c);
    free(b.p);
}

/* Arrays nested deeper than the parser follows are refused (no unbounded recursion). */
Test(gguf, nesting_limit)
{
    gb b = {0};
    gb_put(&b, "GGUF", 4);
    gb_u(&b, 3, 4);
    gb_u(&b, 0, 8);
    gb_u(&b, 1, 8);
    gb_key(&b, "deep", GGUF_T_ARRAY);
    for (int i = 0; i < 100; i++) gb_u(&b, GGUF_T_ARRAY, 4), gb_u(&b, 1, 8);
    gb_u(&b, GGUF_T_U8, 4), gb_u(&b, 0, 8);
    gguf_file g;
    char err[256] = "";
    cr_assert(gguf_parse(&g, b.p, b.n, "mem", err, sizeof err) != 0);
    cr_assert(strstr(err, "nested"), "%s", err);
    gguf_free(&g);
    free(b.p);
}

/* ---------------------------------------------------------------- same logits from every format */

static float *logits_of(const char *path, int n_ids, const int32_t *ids, int *n_vocab)
{
    gpt2_model m;
    char err[512] = "";
    cr_assert(gpt2_model_load(&m, path, err, sizeof err) == 0, "%s", err);
    gpt2_backend_params bp = {.n_threads = 2, .n_batch = 8, .kv_type = GPT2_F32, .device = -1};
    gpt2_backend *be = gpt2_backend_cpu_create(&m, &bp, NULL, err, sizeof err);
    cr_assert(be, "%s", err);
    *n_vocab = m.hp.n_vocab;
    float *out = malloc(sizeof(float) * (size_t)n_ids * (size_t)m.hp.n_vocab);
    cr_assert_eq(
        gpt2_backend_eval_seq(be, 0, ids, n_ids, 0, GPT2_STEP_ALL, out, NULL, NULL, 0, err, sizeof err), 0,
        "%s", err);
    be->destroy(be);
    gpt2_model_free(&m);
    return out;
}

static void same_logits(gpt2_dtype wt, bool with_llmc)
{
    gpt2_model a;
    tu_synth(&a, wt, false);
    char err[512] = "";
    char paths[4][512];
    const char *names[4] = {"hf", "m.bin", "m.gguf", "llmc/gpt2.bin"};
    for (int k = 0; k < 4; k++) snprintf(paths[k], sizeof paths[k], "%s", tu_path(names[k]));
    cr_assert(gpt2_write_hf(&a, paths[0], err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_write_ggml(&a, paths[1], err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_write_gguf(&a, paths[2], err, sizeof err) == 0, "%s", err);
    int n_files = 3;
    if (with_llmc) {
        cr_assert(mkdir(tu_path("llmc"), 0755) == 0);
        cr_assert(gpt2_write_llmc(&a, paths[3], false, err, sizeof err) == 0, "%s", err);
        cr_assert(gpt2_write_llmc_tokenizer(&a.vocab, tu_path("llmc/gpt2_tokenizer.bin"), err, sizeof err) ==
                      0,
                  "%s", err);
        n_files = 4;
    }
    const int32_t ids[6] = {a.vocab.eot, 72, 101, 300, 7, 500};
    int V0, V;
    float *ref = logits_of(paths[0], 6, ids, &V0);
    for (int k = 1; k < n_files; k++) {
        float *x = logits_of(paths[k], 6, ids, &V);
        cr_assert_eq(V, V0);
        for (size_t i = 0; i < (size_t)6 * (size_t)V; i++)
            cr_assert(x[i] == ref[i], "%s: logit %zu: %g vs %g", paths[k], i, (double)x[i], (double)ref[i]);
        free(x);
    }
    free(ref);
    if (with_llmc) { /* the llm.c file found its tokenizer */
        gpt2_model b;
        cr_assert(gpt2_model_load(&b, paths[3], err, sizeof err) == 0, "%s", err);
        cr_assert_str_eq(b.format, "llm.c");
        cr_assert_eq(b.vocab.n_tokens, a.vocab.n_tokens);
        cr_assert_eq(b.vocab.eot, a.vocab.eot);
        for (int i = 0; i < a.vocab.n_tokens; i++)
            cr_assert(b.vocab.len[i] == a.vocab.len[i] &&
                      !memcmp(b.vocab.tok[i], a.vocab.tok[i], a.vocab.len[i]));
        gpt2_model_free(&b);
    }
    gpt2_model_free(&a);
}

Test(gguf, same_logits_f32) { same_logits(GPT2_F32, true); }
Test(gguf, same_logits_f16) { same_logits(GPT2_F16, false); }

/* A quantized model gives the same logits from ggml and GGUF files. */
Test(gguf, same_logits_q8_0)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F32, false);
    quantize_model(&a, GPT2_Q8_0);
    char err[512] = "";
    cr_assert(gpt2_write_ggml(&a, tu_path("q.bin"), err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_write_gguf(&a, tu_path("q.gguf"), err, sizeof err) == 0, "%s", err);
    const int32_t ids[3] = {1, 2, 3};
    int V;
    float *x = logits_of(tu_path("q.bin"), 3, ids, &V), *y = logits_of(tu_path("q.gguf"), 3, ids, &V);
    cr_assert(memcmp(x, y, sizeof(float) * 3 * (size_t)V) == 0);
    free(x);
    free(y);
    gpt2_model_free(&a);
}

/* ---------------------------------------------------------------- llm.c */

Test(gguf, llmc_roundtrip_and_bf16)
{
    gpt2_model a, b;
    tu_synth(&a, GPT2_F32, false);
    char err[512] = "";
    cr_assert(gpt2_write_llmc(&a, tu_path("f32.bin"), false, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, tu_path("f32.bin"), err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.vocab.n_tokens, 0); /* no vocabulary next to it */
    cr_assert(b.w.lm_head.data == b.w.wte.data);
    int n = gpt2_n_tensors(&a.hp);
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *x = gpt2_tensor_at_c(&a, id), *y = gpt2_tensor_at_c(&b, id);
        cr_assert(x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes), "tensor %d", id);
    }
    /* header: padded vocabulary, parameters grouped by kind */
    size_t fn;
    unsigned char *raw = tu_read(tu_path("f32.bin"), &fn);
    cr_assert_eq(get_le(raw, 4), 20240326);
    cr_assert_eq(get_le(raw + 4, 4), 3);
    cr_assert_eq(get_le(raw + 28, 4), 640); /* 513 rounded up to 128 */
    size_t C = (size_t)a.hp.n_embd, qkvw = 1024 + 4 * (640 * C + (size_t)a.hp.n_ctx * C + 4 * C);
    cr_assert(memcmp(raw + qkvw, a.w.layers[0].attn_w.data, 3 * C * C * 4) == 0);
    cr_assert(memcmp(raw + qkvw + 3 * C * C * 4, a.w.layers[1].attn_w.data, 3 * C * C * 4) == 0);
    free(raw);
    gpt2_model_free(&b);
    /* bf16: every weight is the f32 one rounded to bf16 */
    cr_assert(gpt2_write_llmc(&a, tu_path("bf16.bin"), true, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, tu_path("bf16.bin"), err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.wtype, GPT2_F32);
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *x = gpt2_tensor_at_c(&a, id), *y = gpt2_tensor_at_c(&b, id);
        size_t cnt = (size_t)x->ne[0] * (size_t)x->ne[1];
        for (size_t i = 0; i < cnt; i += 7)
            cr_assert_eq(((const float *)y->data)[i],
                         gpt2_bf16_to_f32(gpt2_f32_to_bf16(((const float *)x->data)[i])));
    }
    gpt2_model_free(&b);
    /* a HF vocabulary beside the checkpoint wins */
    cr_assert(mkdir(tu_path("d"), 0755) == 0);
    cr_assert(gpt2_vocab_write_dir(&a.vocab, tu_path("d"), err, sizeof err) == 0, "%s", err);
    tu_copy(tu_path("f32.bin"), tu_path("d/model.bin"));
    cr_assert(gpt2_model_load(&b, tu_path("d/model.bin"), err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.vocab.n_tokens, a.vocab.n_tokens);
    cr_assert_eq(b.vocab.n_merges, a.vocab.n_merges);
    gpt2_model_free(&b);
    gpt2_model_free(&a);
}

Test(gguf, llmc_hostile)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F32, false);
    char err[512] = "";
    char f[512], p[512];
    snprintf(f, sizeof f, "%s", tu_path("ok.bin"));
    snprintf(p, sizeof p, "%s", tu_path("bad.bin"));
    cr_assert(gpt2_write_llmc(&a, f, false, err, sizeof err) == 0, "%s", err);
    size_t n;
    unsigned char *b = tu_read(f, &n);
    /* bad version (the magic decides the format, so a bad magic is "unknown model format") */
    patch(f, p, 4, 4, 4);
    expect_fail(p, "version 4");
    patch(f, p, 0, 20240327, 4);
    expect_fail(p, "unknown model format");
    patch(f, p, 28, 100, 4); /* Vp < V */
    expect_fail(p, "padded vocabulary");
    patch(f, p, 24, 0, 4); /* C = 0 */
    expect_fail(p, "n_embd");
    patch(f, p, 16, 0x7fffffff, 4); /* L huge */
    expect_fail(p, "n_layer");
    patch(f, p, 8, 0x7fffffff, 4); /* maxT huge: exceeds the file */
    expect_fail(p, NULL);
    /* truncated anywhere, trailing data */
    size_t cuts[] = {3, 4, 100, 1023, 1024, 1025, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        tu_write(p, b, cuts[i]);
        expect_fail(p, NULL);
    }
    unsigned char *big = malloc(n + 4);
    memcpy(big, b, n);
    memset(big + n, 0, 4);
    tu_write(p, big, n + 4);
    expect_fail(p, "trailing");
    free(big);
    /* a broken tokenizer beside a good checkpoint */
    cr_assert(mkdir(tu_path("t"), 0755) == 0);
    char mp[512], tp[512], tmp[512];
    snprintf(mp, sizeof mp, "%s", tu_path("t/m.bin"));
    snprintf(tp, sizeof tp, "%s", tu_path("t/gpt2_tokenizer.bin"));
    snprintf(tmp, sizeof tmp, "%s", tu_path("tok.tmp"));
    tu_copy(f, mp);
    cr_assert(gpt2_write_llmc_tokenizer(&a.vocab, tp, err, sizeof err) == 0, "%s", err);
    size_t tn;
    unsigned char *tb = tu_read(tp, &tn);
    struct {
        size_t off;
        uint32_t v;
        const char *want;
    } tk[] = {
        {0, 1234, "bad magic"}, {4, 3, "version 3"}, {8, 0x7fffffff, "token count"}, {12, 99999, "eot"}};
    for (size_t i = 0; i < sizeof tk / sizeof *tk; i++) {
        patch(tp, tmp, tk[i].off, tk[i].v, 4);
        tu_copy(tmp, tp);
        expect_fail(mp, tk[i].want);
        tu_write(tp, tb, tn);
    }
    size_t tcuts[] = {10, 1024, 1025, 1030, tn - 1};
    for (size_t i = 0; i < sizeof tcuts / sizeof *tcuts; i++) {
        tu_write(tp, tb, tcuts[i]);
        expect_fail(mp, "gpt2_tokenizer.bin");
    }
    tu_write(tp, tb, tn);
    gpt2_model m;
    cr_assert(gpt2_model_load(&m, mp, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(m.vocab.eot, a.vocab.eot);
    gpt2_model_free(&m);
    free(tb);
    free(b);
    gpt2_model_free(&a);
}

/* ---------------------------------------------------------------- hostile GGUF */

/* A synthetic model in *a, written to ok.gguf (path in f); p gets the path of `damaged`, where a
 * test writes its altered copies. */
static void write_ok_gguf(gpt2_model *a, gpt2_dtype wt, bool untied, char f[512], char p[512],
                          const char *damaged)
{
    tu_synth(a, wt, untied);
    char err[512] = "";
    snprintf(f, 512, "%s", tu_path("ok.gguf"));
    snprintf(p, 512, "%s", tu_path(damaged));
    cr_assert(gpt2_write_gguf(a, f, err, sizeof err) == 0, "%s", err);
}

Test(gguf, hostile_header)
{
    gpt2_model a;
    char f[512], p[512];
    write_ok_gguf(&a, GPT2_F32, false, f, p, "bad.gguf");
    patch(f, p, 0, 0x46554748, 4); /* "HGUF" */
    expect_fail(p, "unknown model format");
    patch(f, p, 4, 1, 4);
    expect_fail(p, "version 1");
    patch(f, p, 4, 4, 4);
    expect_fail(p, "version 4");
    patch(f, p, 4, 0x03000000, 4); /* big-endian file */
    expect_fail(p, "big-endian");
    patch(f, p, 8, UINT64_MAX, 8);
    expect_fail(p, "tensor count");
    patch(f, p, 8, 1ull << 32, 8);
    expect_fail(p, "tensor count");
    patch(f, p, 16, UINT64_MAX, 8);
    expect_fail(p, "metadata count");
    patch(f, p, 16, 1ull << 40, 8);
    expect_fail(p, "metadata count");
    /* counts that fit the file but not its contents */
    size_t n;
    unsigned char *b = tu_read(f, &n);
    uint64_t nt = get_le(b + 8, 8), nkv = get_le(b + 16, 8);
    patch(f, p, 8, nt + 1, 8);
    expect_fail(p, NULL);
    patch(f, p, 16, nkv + 1, 8);
    expect_fail(p, NULL);
    patch(f, p, 16, nkv - 1, 8);
    expect_fail(p, NULL);
    patch(f, p, 8, nt - 1, 8); /* a tensor fewer: missing */
    expect_fail(p, "missing tensor");
    /* string lengths: the first key, a value, a tensor name */
    patch(f, p, 24, UINT64_MAX, 8);
    expect_fail(p, "string length exceeds");
    patch(f, p, 24, (1ull << 63) + 5, 8);
    expect_fail(p, "string length exceeds");
    size_t at = find_gguf_str(b, n, "general.architecture") + 8 + 20 + 4;
    patch(f, p, at, UINT64_MAX - 3, 8);
    expect_fail(p, "general.architecture");
    at = find_gguf_str(b, n, "tokenizer.ggml.tokens") + 8 + 21 + 4 + 4; /* array count */
    patch(f, p, at, 1ull << 61, 8);
    expect_fail(p, "tokenizer.ggml.tokens");
    at = find_gguf_str(b, n, "tokenizer.ggml.tokens") + 8 + 21 + 4 + 4 + 8; /* first token's length */
    patch(f, p, at, UINT64_MAX, 8);
    expect_fail(p, "tokenizer.ggml.tokens");
    at = find_gguf_str(b, n, "token_embd.weight");
    patch(f, p, at, UINT64_MAX - 7, 8);
    expect_fail(p, "exceeds the file");
    /* value types */
    at = find_gguf_str(b, n, "gpt2.block_count") + 8 + 16;
    patch(f, p, at, 99, 4);
    expect_fail(p, "unknown value type 99");
    patch(f, p, at, GGUF_T_F32, 4);
    expect_fail(p, "expected an integer");
    at = find_gguf_str(b, n, "general.alignment") + 8 + 17 + 4;
    patch(f, p, at, 0, 4);
    expect_fail(p, "alignment");
    patch(f, p, at, 3, 4);
    expect_fail(p, "alignment");
    patch(f, p, at, 1u << 24, 4); /* a valid alignment the offsets do not follow */
    expect_fail(p, "alignment 16777216");
    /* architecture, hyper-parameters */
    at = find_gguf_str(b, n, "gpt2"); /* the architecture's value */
    b[at + 8] = 'G';
    tu_write(p, b, n);
    expect_fail(p, "architecture 'Gpt2'");
    b[at + 8] = 'g';
    at = find_gguf_str(b, n, "gpt2.feed_forward_length") + 8 + 24 + 4;
    patch(f, p, at, 100, 4);
    expect_fail(p, "feed_forward_length");
    at = find_gguf_str(b, n, "gpt2.attention.head_count") + 8 + 25 + 4;
    patch(f, p, at, 0, 4);
    expect_fail(p, "head_count");
    patch(f, p, at, 7, 4);
    expect_fail(p, "divisible");
    at = find_gguf_str(b, n, "gpt2.block_count") + 8 + 16 + 4;
    patch(f, p, at, 3, 4);
    expect_fail(p, "missing tensor blk.2");
    patch(f, p, at, 1, 4);
    expect_fail(p, "unexpected tensor blk.1");
    at = find_gguf_str(b, n, "tokenizer.ggml.eos_token_id") + 8 + 27 + 4;
    patch(f, p, at, 100000, 4);
    expect_fail(p, "eos_token_id");
    at = find_gguf_str(b, n, "tokenizer.ggml.model") + 8 + 20 + 4 + 8;
    b[at] = 'l';
    tu_write(p, b, n);
    expect_fail(p, "tokenizer model");
    b[at] = 'g';
    free(b);
    gpt2_model_free(&a);
}

Test(gguf, hostile_tensors)
{
    gpt2_model a;
    char f[512], p[512];
    write_ok_gguf(&a, GPT2_F32, false, f, p, "bad.gguf");
    char err[512] = "";
    size_t n;
    unsigned char *b = tu_read(f, &n);
    /* blk.0.attn_qkv.weight: name, n_dims (2), ne0, ne1, type, offset */
    const char *nm = "blk.0.attn_qkv.weight";
    size_t t = find_gguf_str(b, n, nm) + 8 + strlen(nm);
    size_t nd = t, ne0 = t + 4, ne1 = t + 12, ty = t + 20, of = t + 24;
    uint64_t off = get_le(b + of, 8);
    patch(f, p, nd, 5, 4);
    expect_fail(p, "5 dimensions");
    patch(f, p, nd, 0, 4);
    expect_fail(p, "0 dimensions");
    patch(f, p, nd, 3, 4); /* swallows the type and offset as dims: garbage follows */
    expect_fail(p, NULL);
    patch(f, p, ne0, 0, 8);
    expect_fail(p, "dimension");
    patch(f, p, ne0, UINT64_MAX, 8);
    expect_fail(p, "dimension");
    patch(f, p, ne1, 1ull << 62, 8);
    expect_fail(p, NULL);
    patch(f, p, ne0, 32, 8);
    expect_fail(p, "shape");
    patch(f, p, ty, 4, 4);
    expect_fail(p, "unknown ggml type 4");
    patch(f, p, ty, 99, 4);
    expect_fail(p, "unknown ggml type 99");
    patch(f, p, ty, 12, 4);
    expect_fail(p, "q4_K");
    patch(f, p, ty, UINT32_MAX, 4);
    expect_fail(p, "unknown ggml type");
    patch(f, p, of, off + 1, 8);
    expect_fail(p, "not a multiple of the alignment");
    patch(f, p, of, off + 4, 8);
    expect_fail(p, "not a multiple of the alignment");
    patch(f, p, of, 1ull << 40, 8);
    expect_fail(p, "past the end");
    patch(f, p, of, UINT64_MAX - 31, 8);
    expect_fail(p, "past the end");
    /* the last tensor's offset pushed past the end of the data */
    size_t last = find_gguf_str(b, n, "output_norm.bias") + 8 + 16;
    patch(f, p, last + 4 + 8 + 4, (uint64_t)(n / 32 * 32), 8);
    expect_fail(p, "past the end");
    /* duplicate tensor names: blk.1.attn_norm.bias renamed blk.0.attn_norm.bias */
    size_t dn = find_gguf_str(b, n, "blk.1.attn_norm.bias");
    b[dn + 8 + 4] = '0';
    tu_write(p, b, n);
    expect_fail(p, "duplicate tensor blk.0.attn_norm.bias");
    b[dn + 8 + 4] = '1';
    /* an unknown tensor name */
    b[dn + 8 + 6] = 'x';
    tu_write(p, b, n);
    expect_fail(p, "unexpected tensor blk.1.xttn_norm.bias");
    b[dn + 8 + 6] = 'a';
    /* a quantized bias is refused or converted, never mis-sized: a q8_0 tag on a 64-wide f32 vector */
    size_t bias = find_gguf_str(b, n, "blk.0.attn_norm.bias") + 8 + 20;
    patch(f, p, bias + 4 + 8, GGML_ID_Q8_0, 4);
    gpt2_model m;
    if (gpt2_model_load(&m, p, err, sizeof err) == 0) {
        cr_assert_eq(m.w.layers[0].ln1_b.type, GPT2_F32);
        cr_assert_eq(m.w.layers[0].ln1_b.nbytes, 64 * 4);
        gpt2_model_free(&m);
    } else {
        cr_assert(strstr(err, p) && !strchr(err, '\n'), "%s", err);
    }
    free(b);
    gpt2_model_free(&a);
}

/* Every prefix of a GGUF file is refused with one line naming the file. */
Test(gguf, truncated_everywhere, .timeout = 300)
{
    gpt2_model a;
    char f[512], p[512];
    write_ok_gguf(&a, GPT2_F16, true, f, p, "cut.gguf");
    char err[512] = "";
    size_t n;
    unsigned char *b = tu_read(f, &n);
    gguf_file g;
    cr_assert(gguf_parse(&g, b, n, f, err, sizeof err) == 0, "%s", err);
    size_t data = g.data_off;
    gguf_free(&g);
    size_t count = 0;
    for (size_t cut = 0; cut < n; cut += cut < data + 64 ? 1 + cut / 4096 : (n - data) / 97 + 1) {
        /* the parser alone on every prefix (fast), the whole loader on a sample of them */
        if (cut >= 4) {
            int r = gguf_parse(&g, b, cut, "cut", err, sizeof err);
            gguf_free(&g);
            cr_assert(r != 0, "prefix of %zu bytes parsed", cut);
            cr_assert(strncmp(err, "cut: ", 5) == 0 && !strchr(err, '\n'), "%zu: %s", cut, err);
        }
        if (cut % 37 == 0 || cut > data) {
            tu_write(p, b, cut);
            if (cut == 0) continue; /* an empty file is refused by the mapper, also naming it */
            expect_fail(p, NULL);
        }
        count++;
    }
    cr_assert(count > 1000);
    free(b);
    gpt2_model_free(&a);
}

/* ---------------------------------------------------------------- convert */

Test(gguf, convert_api)
{
    gpt2_model a, b;
    tu_synth(&a, GPT2_F16, true);
    char err[512] = "";
    cr_assert(gpt2_write_ggml(&a, tu_path("m.bin"), err, sizeof err) == 0, "%s", err);
    cr_assert(vkg_convert(tu_path("m.bin"), tu_path("m.gguf"), 0, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_model_load(&b, tu_path("m.gguf"), err, sizeof err) == 0, "%s", err);
    tu_same_model(&a, &b);
    gpt2_model_free(&b);
    cr_assert(vkg_convert(tu_path("m.bin"), tu_path("m.out"), 0, err, sizeof err) != 0);
    cr_assert(strstr(err, ".gguf"), "%s", err);
    cr_assert(vkg_convert(tu_path("missing"), tu_path("x.gguf"), 0, err, sizeof err) != 0);
    cr_assert(strstr(err, "missing"), "%s", err);
    gpt2_model_free(&a);
}
