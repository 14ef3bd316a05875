/* test_model_errors.c - hostile and broken model files: every load fails cleanly with one line
 * naming the file (truncations everywhere, bad headers, absurd sizes, missing/duplicate/misshapen
 * tensors, broken safetensors headers, missing vocabulary, memory refusal). */
#include <limits.h>

#include "formats_util.h"

static void setup(void) { tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(); }

TestSuite(errors, .init = setup, .fini = teardown);

/* Writes a tiny synthetic model as ggml; returns the file's bytes. */
static unsigned char *make_ggml(const char *path, size_t *n, gpt2_dtype wt, bool untied)
{
    gpt2_model a;
    tu_synth(&a, wt, untied);
    char err[512] = "";
    cr_assert(gpt2_write_ggml(&a, path, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&a);
    return tu_read(path, n);
}

/* Offsets of the tensor records of a ggml file (and of the end of the vocabulary). */
static int ggml_records(const unsigned char *b, size_t n, size_t *rec, int max, size_t *vocab_end)
{
    int32_t nv;
    memcpy(&nv, b + 28, 4);
    size_t off = 32;
    for (int i = 0; i < nv; i++) {
        uint32_t len;
        memcpy(&len, b + off, 4);
        off += 4 + len;
    }
    *vocab_end = off;
    int k = 0;
    while (off < n && k < max) {
        rec[k++] = off;
        int32_t nd, nl, tt, ne[2] = {1, 1};
        memcpy(&nd, b + off, 4);
        memcpy(&nl, b + off + 4, 4);
        memcpy(&tt, b + off + 8, 4);
        memcpy(ne, b + off + 12, 4 * (size_t)nd);
        off += 12 + 4 * (size_t)nd + (size_t)nl + (size_t)ne[0] * (size_t)ne[1] * (tt ? 2 : 4);
    }
    return k;
}

static void expect_fail(const char *path, const char *what)
{
    gpt2_model m;
    char err[512] = "";
    memset(&m, 0xab, sizeof m);
    int r = gpt2_model_load(&m, path, err, sizeof err);
    cr_assert(r != 0, "load of %s should fail (%s)", path, what ? what : "");
    cr_assert(strstr(err, path) != NULL, "message must name the file: '%s'", err);
    cr_assert(strchr(err, '\n') == NULL, "one line: '%s'", err);
    if (what) cr_assert(strstr(err, what) != NULL, "expected '%s' in '%s'", what, err);
    cr_assert(m.map == NULL && m.owned == NULL && m.w.layers == NULL, "failed load must leave m empty");
}

static void write_patched_i32(const char *path, const unsigned char *b, size_t n, size_t off, int32_t v)
{
    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    memcpy(c + off, &v, 4);
    tu_write(path, c, n);
    free(c);
}

Test(errors, ggml_truncated_everywhere)
{
    size_t n;
    const char *full = tu_path("full.bin");
    unsigned char *b = make_ggml(full, &n, GPT2_F16, true);
    size_t rec[64], vend;
    int nr = ggml_records(b, n, rec, 64, &vend);
    cr_assert_eq(nr, 5 + 12 * 2);
    size_t cuts[512];
    int nc = 0;
    for (int k = 0; k < 50; k++) cuts[nc++] = n * (size_t)k / 50;
    for (size_t k = 0; k <= 36; k++) cuts[nc++] = k; /* header and the first tokens */
    cuts[nc++] = vend - 1;
    cuts[nc++] = vend;
    cuts[nc++] = vend + 1;
    for (int r = 0; r < nr; r++) {
        int32_t nd, nl;
        memcpy(&nd, b + rec[r], 4);
        memcpy(&nl, b + rec[r] + 4, 4);
        size_t h = rec[r] + 12 + 4 * (size_t)nd;
        size_t pts[] = {rec[r], rec[r] + 4,         rec[r] + 11,    rec[r] + 12,       h - 1,
                        h,      h + (size_t)nl - 1, h + (size_t)nl, h + (size_t)nl + 1};
        for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) cuts[nc++] = pts[i];
    }
    cuts[nc++] = n - 1;
    const char *p = tu_path("cut.bin");
    for (int i = 0; i < nc; i++) {
        if (cuts[i] >= n) continue;
        tu_write(p, b, cuts[i]);
        expect_fail(p, NULL);
    }
    /* The whole file loads. */
    gpt2_model m;
    char err[512];
    cr_assert(gpt2_model_load(&m, full, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&m);
    /* Cut at the last record: that tensor is missing. */
    tu_write(p, b, rec[nr - 1]);
    expect_fail(p, "missing tensor model/h1/mlp/c_proj/b");
    free(b);
}

Test(errors, ggml_header)
{
    size_t n;
    const char *full = tu_path("full.bin");
    unsigned char *b = make_ggml(full, &n, GPT2_F32, false);
    const char *p = tu_path("bad.bin");
    write_patched_i32(p, b, n, 0, 0x12345678);
    expect_fail(p, "unknown model format");
    cr_assert(gpt2_load_ggml(&(gpt2_model){0}, p, (char[256]){0}, 256) != 0);
    {
        gpt2_model m;
        char err[256];
        cr_assert(gpt2_load_ggml(&m, p, err, sizeof err) != 0);
        cr_assert(strstr(err, "bad magic") && strstr(err, p), "%s", err);
    }
    unsigned char gguf[64] = "GGUF";
    tu_write(p, gguf, sizeof gguf);
    expect_fail(p, "GGUF");
    tu_write(p, "lm", 2);
    expect_fail(p, NULL);
    /* n_embd 64 with n_head 5 */
    write_patched_i32(p, b, n, 16, 5);
    expect_fail(p, "n_embd 64 is not divisible by n_head 5");
    write_patched_i32(p, b, n, 16, 0);
    expect_fail(p, "n_head 0");
    write_patched_i32(p, b, n, 4, INT_MAX);
    expect_fail(p, "n_vocab");
    write_patched_i32(p, b, n, 4, -3);
    expect_fail(p, "n_vocab -3");
    write_patched_i32(p, b, n, 8, 0);
    expect_fail(p, "n_ctx 0");
    write_patched_i32(p, b, n, 12, -64);
    expect_fail(p, "n_embd -64");
    write_patched_i32(p, b, n, 20, 100000);
    expect_fail(p, "n_layer 100000");
    write_patched_i32(p, b, n, 20, 0);
    expect_fail(p, "n_layer 0");
    write_patched_i32(p, b, n, 24, 2); /* q4_0 of quantization version 0: an older block layout */
    expect_fail(p, "quantization version 0 not supported");
    write_patched_i32(p, b, n, 24, 2004); /* MOSTLY_Q4_1_SOME_F16 */
    expect_fail(p, "ftype 4 not supported");
    write_patched_i32(p, b, n, 24, 2010); /* q2_k */
    expect_fail(p, "ftype 10 not supported");
    write_patched_i32(p, b, n, 24, -1);
    expect_fail(p, "ftype");
    /* vocabulary count disagreeing with n_vocab */
    write_patched_i32(p, b, n, 28, 12);
    expect_fail(p, "vocabulary");
    /* A quantization version with ftype 0 still loads. */
    write_patched_i32(p, b, n, 24, 1000);
    gpt2_model m;
    char err[512];
    cr_assert(gpt2_model_load(&m, p, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&m);
    free(b);
}

Test(errors, ggml_absurd_sizes)
{
    size_t n;
    unsigned char *b = make_ggml(tu_path("full.bin"), &n, GPT2_F32, false);
    const char *p = tu_path("bad.bin");
    /* Big but in range: refused by the memory check with sizes in the message. */
    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    int32_t big[3] = {GPT2_MAX_VOCAB, 1024, GPT2_MAX_EMBD};
    memcpy(c + 4, &big[0], 4);
    memcpy(c + 12, &big[2], 4);
    memcpy(c + 16, &(int32_t){64}, 4);
    tu_write(p, c, n);
    expect_fail(p, "GiB");
    free(c);
    size_t rec[64], vend;
    int nr = ggml_records(b, n, rec, 64, &vend);
    cr_assert(nr > 6);
    size_t r = rec[6]; /* some tensor record */
    write_patched_i32(p, b, n, r, 3);
    expect_fail(p, "3 dimensions");
    write_patched_i32(p, b, n, r, -1);
    expect_fail(p, "-1 dimensions");
    write_patched_i32(p, b, n, r + 4, 1 << 30);
    expect_fail(p, "name of");
    write_patched_i32(p, b, n, r + 4, -5);
    expect_fail(p, "name of");
    write_patched_i32(p, b, n, r + 8, 4); /* Q4_2, gone from ggml */
    expect_fail(p, "ggml type 4, not supported");
    write_patched_i32(p, b, n, r + 8, 9); /* Q8_1 */
    expect_fail(p, "ggml type 9, not supported");
    write_patched_i32(p, b, n, r + 8, 99);
    expect_fail(p, "unknown type 99");
    /* dims that would overflow: ne0 = ne1 = INT_MAX */
    int32_t nd;
    memcpy(&nd, b + r, 4);
    write_patched_i32(p, b, n, r + 12, INT_MAX);
    expect_fail(p, "has shape");
    if (nd == 2) {
        c = malloc(n);
        memcpy(c, b, n);
        memcpy(c + r + 12, &(int32_t){INT_MAX}, 4);
        memcpy(c + r + 16, &(int32_t){INT_MAX}, 4);
        tu_write(p, c, n);
        expect_fail(p, "has shape");
        free(c);
    }
    write_patched_i32(p, b, n, r + 12, -7);
    expect_fail(p, "has shape");
    free(b);
}

Test(errors, ggml_tensors)
{
    size_t n;
    unsigned char *b = make_ggml(tu_path("full.bin"), &n, GPT2_F32, false);
    size_t rec[64], vend;
    int nr = ggml_records(b, n, rec, 64, &vend);
    const char *p = tu_path("bad.bin");
    /* Find model/h0/attn/c_attn/w and give it a wrong shape. */
    for (int i = 0; i < nr; i++) {
        int32_t nd, nl;
        memcpy(&nd, b + rec[i], 4);
        memcpy(&nl, b + rec[i] + 4, 4);
        const char *name = (const char *)b + rec[i] + 12 + 4 * nd;
        if (nl == 22 && memcmp(name, "model/h0/attn/c_attn/w", 22) == 0) {
            write_patched_i32(p, b, n, rec[i] + 16, 100);
            expect_fail(p, "tensor model/h0/attn/c_attn/w has shape [64, 100], expected [64, 192]");
        }
        if (nl == 12 && memcmp(name, "model/ln_f/g", 12) == 0) {
            unsigned char *c = malloc(n);
            memcpy(c, b, n);
            c[rec[i] + 12 + 4 * nd + 11] = 'x';
            tu_write(p, c, n);
            expect_fail(p, "unknown tensor model/ln_f/x");
            free(c);
        }
    }
    /* Duplicate: the last record appended again. */
    unsigned char *c = malloc(n + (n - rec[nr - 1]));
    memcpy(c, b, n);
    memcpy(c + n, b + rec[nr - 1], n - rec[nr - 1]);
    tu_write(p, c, n + (n - rec[nr - 1]));
    expect_fail(p, "duplicate tensor model/h1/mlp/c_proj/b");
    /* Trailing garbage shorter than a record header. */
    memcpy(c + n, "abc", 3);
    tu_write(p, c, n + 3);
    expect_fail(p, "truncated");
    free(c);
    free(b);
}

Test(errors, memory_refusal)
{
    size_t n;
    const char *f = tu_path("full.bin");
    unsigned char *b = make_ggml(f, &n, GPT2_F32, false);
    free(b);
    gpt2_model a;
    tu_synth(&a, GPT2_F32, false);
    char err[512];
    cr_assert(gpt2_write_hf(&a, tu_path("hf"), err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&a);
    setenv("VKGPT2_MEM_LIMIT", "100000", 1);
    expect_fail(f, "only 0.00 GiB (100000 bytes)");
    expect_fail(tu_path("hf"), "bytes) of RAM is available");
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    cr_assert(gpt2_synth(&a, &p, err, sizeof err) != 0);
    unsetenv("VKGPT2_MEM_LIMIT");
}

/* ---------------------------------------------------------------- Hugging Face */

static const char *make_hf(bool prefix)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F32, false);
    char err[512] = "";
    const char *d = tu_path("hf");
    cr_assert(gpt2_write_hf_ex(&a, d, prefix ? GPT2_HF_PREFIX : 0, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&a);
    return d;
}

static void expect_hf_fail(const char *dir, const char *file, const char *what)
{
    gpt2_model m;
    char err[512] = "";
    int r = gpt2_model_load(&m, dir, err, sizeof err);
    cr_assert(r != 0, "load of %s should fail (%s)", dir, what ? what : "");
    cr_assert(strstr(err, file) != NULL, "message must name %s: '%s'", file, err);
    cr_assert(strchr(err, '\n') == NULL, "one line: '%s'", err);
    if (what) cr_assert(strstr(err, what) != NULL, "expected '%s' in '%s'", what, err);
}

/* The model in dir loads (once its files are whole again). */
static void expect_hf_loads(const char *dir)
{
    gpt2_model m;
    char err[512];
    cr_assert(gpt2_model_load(&m, dir, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&m);
}

Test(errors, hf_truncated_everywhere)
{
    const char *d = make_hf(false);
    char st[512], save[512];
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    snprintf(save, sizeof save, "%s/../orig.safetensors", d);
    tu_copy(st, save);
    size_t n;
    unsigned char *b = tu_read(save, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    size_t cuts[200];
    int nc = 0;
    for (int k = 0; k < 50; k++) cuts[nc++] = n * (size_t)k / 50;
    for (size_t k = 0; k <= 9; k++) cuts[nc++] = k;
    cuts[nc++] = 8 + hl - 1;
    cuts[nc++] = 8 + hl;
    cuts[nc++] = 8 + hl + 1;
    cuts[nc++] = n - 1;
    for (int i = 0; i < nc; i++) {
        if (cuts[i] >= n) continue;
        tu_write(st, b, cuts[i]);
        expect_hf_fail(d, st, NULL);
    }
    tu_write(st, b, n);
    expect_hf_loads(d);
    free(b);
}

Test(errors, hf_header)
{
    const char *d = make_hf(false);
    char st[512], save[512];
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    snprintf(save, sizeof save, "%s/orig.st", tu_dir);
    tu_copy(st, save);
    size_t n;
    unsigned char *b = tu_read(save, &n);
    unsigned char *c = malloc(n);
    /* header length past EOF, and huge */
    memcpy(c, b, n);
    memset(c, 0xff, 8);
    tu_write(st, c, n);
    expect_hf_fail(d, st, "extends past the end");
    memcpy(c, b, n);
    c[6] = 1; /* 2^48 + ... */
    tu_write(st, c, n);
    expect_hf_fail(d, st, "header length");
    free(c);
    /* JSON garbage */
    const char garbage[] = "\x10\0\0\0\0\0\0\0{\"a\":[1,2,,]}   ";
    tu_write(st, garbage, sizeof garbage - 1);
    expect_hf_fail(d, st, NULL);
    const char notobj[] = "\x08\0\0\0\0\0\0\0[1,2,3] ";
    tu_write(st, notobj, sizeof notobj - 1);
    expect_hf_fail(d, st, "not a JSON object");
    long long a0, a1, b0, b1;
    /* ln_f.bias's data_offsets rewritten: past the data, end before begin, a wrong byte count,
     * misaligned, and overlapping (placed on ln_f.weight) */
    tu_copy(save, st);
    tu_st_offsets(st, "ln_f.bias", &a0, &a1);
    tu_st_offsets(st, "ln_f.weight", &b0, &b1);
    char from[128], to[128];
    snprintf(from, sizeof from,
             "\"ln_f.bias\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[%lld,%lld]", a0, a1);
    const struct {
        long long lo, hi;
        const char *want;
    } offsets[] = {
        {a0 + 100000000, a1 + 100000000, "extend past the end"},
        {a1, a0, "bad data_offsets"},
        {a0, a1 - 4, "bytes of data"},
        {a0 + 2, a1 + 2, "misaligned"},
        {b0, b1, "overlap"},
    };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        tu_copy(save, st);
        snprintf(to, sizeof to,
                 "\"ln_f.bias\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[%lld,%lld]",
                 offsets[i].lo, offsets[i].hi);
        tu_st_mutate(st, from, to);
        expect_hf_fail(d, st, offsets[i].want);
    }
    /* one edit of the header each: dtype, shapes, a missing tensor, a layer beyond n_layer */
    static const struct {
        const char *from, *to, *want;
    } edits[] = {
        {"\"ln_f.bias\":{\"dtype\":\"F32\"", "\"ln_f.bias\":{\"dtype\":\"I32\"", "dtype I32"},
        {"\"ln_f.bias\":{\"dtype\":\"F32\",\"shape\":[64]", "\"ln_f.bias\":{\"dtype\":\"F32\",\"shape\":[63]",
         "tensor ln_f.bias has shape [63], expected [64]"},
        {"\"h.1.attn.c_attn.weight\":{\"dtype\":\"F32\",\"shape\":[64,192]",
         "\"h.1.attn.c_attn.weight\":{\"dtype\":\"F32\",\"shape\":[192,64]",
         "tensor h.1.attn.c_attn.weight has shape [192, 64], expected [64, 192]"},
        {"\"shape\":[64],", "\"shape\":[-64],", "bad shape"},
        {"\"shape\":[64],", "\"shape\":[64,1,1],", "dimensions"},
        {"\"shape\":[64],", "\"shapes\":[64],", "lacks"},
        {"\"ln_f.bias\"", "\"ln_f.biaz\"", "missing tensor ln_f.bias"},
        {"\"h.1.ln_1.bias\"", "\"h.7.ln_1.bias\"", "layer 7"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        tu_copy(save, st);
        tu_st_mutate(st, edits[i].from, edits[i].to);
        expect_hf_fail(d, st, edits[i].want);
    }
    /* duplicate: the same tensor with and without the prefix */
    tu_copy(save, st);
    snprintf(from, sizeof from, "\"ln_f.bias\":{");
    snprintf(to, sizeof to,
             "\"transformer.ln_f.bias\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[%lld,%lld]},\"ln_"
             "f.bias\":{",
             a0, a1);
    tu_st_mutate(st, from, to);
    expect_hf_fail(d, st, "duplicate tensor");
    /* Restored, it loads. */
    tu_copy(save, st);
    expect_hf_loads(d);
    free(b);
}

Test(errors, hf_config)
{
    const char *d = make_hf(true);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    size_t n;
    char *orig = (char *)tu_read(cfg, &n);
    orig = realloc(orig, n + 1);
    orig[n] = 0;
    tu_write_str(cfg, "{\"n_embd\": 64, \"n_layer\": ");
    expect_hf_fail(d, cfg, NULL);
    tu_write_str(cfg, "[]");
    expect_hf_fail(d, cfg, "not a JSON object");
    tu_write_str(cfg, "{\"n_embd\":64,\"n_layer\":2,\"n_head\":5,\"vocab_size\":513,\"n_positions\":128}");
    expect_hf_fail(d, cfg, "n_embd 64 is not divisible by n_head 5");
    tu_write_str(cfg, "{\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"n_positions\":128}");
    expect_hf_fail(d, cfg, "missing vocab_size");
    tu_write_str(cfg, "{\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"vocab_size\":1e30,\"n_positions\":128}");
    expect_hf_fail(d, cfg, "vocab_size");
    tu_write_str(cfg,
                 "{\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"vocab_size\":99999999999,\"n_positions\":128}");
    expect_hf_fail(d, cfg, "vocab_size");
    tu_write_str(
        cfg,
        "{\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"vocab_size\":513,\"n_positions\":128,\"n_inner\":100}");
    expect_hf_fail(d, cfg, "n_inner");
    tu_write_str(cfg,
                 "{\"model_type\":\"llama\",\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"vocab_size\":513,\"n_"
                 "positions\":128}");
    expect_hf_fail(d, cfg, "llama");
    /* shapes disagreeing with config: one layer fewer -> h.1 tensors are extra */
    tu_write_str(cfg, "{\"n_embd\":64,\"n_layer\":1,\"n_head\":4,\"vocab_size\":513,\"n_positions\":128}");
    expect_hf_fail(d, "model.safetensors", "layer 1");
    tu_write_str(cfg, "{\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"vocab_size\":513,\"n_positions\":100}");
    expect_hf_fail(d, "model.safetensors", "wpe.weight has shape [128, 64], expected [100, 64]");
    tu_write_str(cfg,
                 "{\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"vocab_size\":513,\"n_positions\":128,"
                 "\"tie_word_embeddings\":false}");
    expect_hf_fail(d, "model.safetensors", "missing tensor lm_head.weight");
    tu_write_str(cfg, orig);
    expect_hf_loads(d);
    remove(cfg);
    expect_hf_fail(d, cfg, NULL);
    free(orig);
}

Test(errors, hf_files)
{
    const char *d = make_hf(false);
    char p[512], q[512];
    /* missing merges, then missing vocabulary altogether */
    snprintf(p, sizeof p, "%s/merges.txt", d);
    snprintf(q, sizeof q, "%s/merges.bak", d);
    rename(p, q);
    expect_hf_fail(d, d, NULL);
    rename(q, p);
    snprintf(p, sizeof p, "%s/vocab.json", d);
    snprintf(q, sizeof q, "%s/vocab.bak", d);
    rename(p, q);
    expect_hf_fail(d, d, NULL);
    snprintf(p, sizeof p, "%s/merges.txt", d);
    remove(p);
    expect_hf_fail(d, d, "no vocabulary");
    gpt2_model m;
    char err[512];
    cr_assert(gpt2_model_load_ex(&m, d, GPT2_LOAD_VOCAB_OPTIONAL, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&m);
    /* no weights */
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    snprintf(q, sizeof q, "%s/weights.bak", d);
    rename(p, q);
    expect_hf_fail(d, d, "no model.safetensors");
    /* an index naming files outside the directory, or missing shards */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    tu_write_str(p, "{\"weight_map\":{\"wte.weight\":\"../../etc/passwd\"}}");
    expect_hf_fail(d, p, "bad file");
    tu_write_str(p, "{\"weight_map\":{\"wte.weight\":\"model-00001-of-00002.safetensors\"}}");
    expect_hf_fail(d, "model-00001-of-00002.safetensors", "cannot open");
    tu_write_str(p, "{\"weight_map\":[]}");
    expect_hf_fail(d, p, "weight_map");
    tu_write_str(p, "{\"weight_map\":{}}");
    expect_hf_fail(d, p, "empty");
    snprintf(q, sizeof q, "%s/model-00001-of-00002.safetensors", d);
    tu_copy(tu_path("hf/weights.bak"), q);
    tu_write_str(p, "{\"weight_map\":{\"wte.weight\":\"model-00001-of-00002.safetensors\"}}");
    cr_assert(gpt2_model_load_ex(&m, d, GPT2_LOAD_VOCAB_OPTIONAL, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&m);
    /* a directory that does not exist */
    expect_hf_fail(tu_path("nothere"), tu_path("nothere"), NULL);
}

Test(errors, hf_sharded_truncated)
{
    gpt2_model a;
    tu_synth(&a, GPT2_F16, true);
    char err[512];
    const char *d = tu_path("sh");
    cr_assert(gpt2_write_hf_ex(&a, d, GPT2_HF_SHARDED, err, sizeof err) == 0, "%s", err);
    gpt2_model_free(&a);
    char p[512];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", d);
    size_t n;
    unsigned char *b = tu_read(p, &n);
    for (int k = 0; k < 50; k += 7) {
        tu_write(p, b, n * (size_t)k / 50);
        expect_hf_fail(d, p, NULL);
    }
    free(b);
}
