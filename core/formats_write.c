/* formats_write.c - writers: ggml's legacy GPT-2 binary, and Hugging Face directories. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "model_internal.h"
#include "vocab.h"

#define CHUNK_ELEMS (1u << 16)

static void put_u32(gpt2_out *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    gpt2_out_write(o, b, 4);
}

static void put_i32(gpt2_out *o, int32_t v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(o, u);
}

/* Writes n elements of src (type st) as type dt. */
static void put_converted(gpt2_out *o, const void *src, gpt2_dtype st, gpt2_dtype dt, size_t n, void *buf)
{
    if (st == dt) {
        gpt2_out_write(o, src, gpt2_row_bytes(st, n));
        return;
    }
    /* CHUNK_ELEMS is a multiple of the block size: chunks start on block boundaries */
    for (size_t i = 0; i < n; i += CHUNK_ELEMS) {
        size_t k = n - i < CHUNK_ELEMS ? n - i : CHUNK_ELEMS;
        gpt2_convert(buf, dt, (const char *)src + gpt2_row_bytes(st, i), st, k);
        gpt2_out_write(o, buf, gpt2_row_bytes(dt, k));
    }
}

/* Writes a [out][in] matrix t back as [in][out] of type dt, a band of rows at a time. */
static int put_transposed(gpt2_out *o, const gpt2_tensor *t, gpt2_dtype dt)
{
    size_t in = (size_t)t->ne[0], out = (size_t)t->ne[1];
    size_t band = CHUNK_ELEMS / (out ? out : 1);
    if (band < 1) band = 1;
    if (band > in) band = in;
    void *tmp = malloc(band * out * 4);
    const bool q = gpt2_dtype_is_quant(t->type); /* block rows are dequantized whole first */
    float *qrow = q ? malloc(in * sizeof *qrow) : NULL;
    if (!tmp || (q && !qrow)) {
        free(tmp);
        free(qrow);
        return -1;
    }
    size_t es = q ? 4 : gpt2_dtype_size(t->type);
    for (size_t i0 = 0; i0 < in; i0 += band) {
        size_t nb = in - i0 < band ? in - i0 : band;
        /* tmp[i][o] = W[o][i0 + i] */
        for (size_t oo = 0; oo < out; oo++) {
            const char *row = (const char *)t->data + (oo * in + i0) * es;
            gpt2_dtype rt = t->type;
            if (q) {
                gpt2_dequantize_row(t->type, (const char *)t->data + oo * gpt2_row_bytes(t->type, in), qrow,
                                    in);
                row = (const char *)(qrow + i0);
                rt = GPT2_F32;
            }
            if (dt == rt) /* memcpy: the row may sit misaligned in a mapped file */
                for (size_t i = 0; i < nb; i++) memcpy((char *)tmp + (i * out + oo) * es, row + i * es, es);
            else
                for (size_t i = 0; i < nb; i++) {
                    float v = gpt2_load(row, rt, i);
                    if (dt == GPT2_F32)
                        ((float *)tmp)[i * out + oo] = v;
                    else if (dt == GPT2_F16)
                        ((uint16_t *)tmp)[i * out + oo] = gpt2_f32_to_f16(v);
                    else
                        ((uint16_t *)tmp)[i * out + oo] = gpt2_f32_to_bf16(v);
                }
        }
        gpt2_out_write(o, tmp, nb * out * gpt2_dtype_size(dt));
    }
    free(tmp);
    free(qrow);
    return 0;
}

static bool tied(const gpt2_model *m) { return m->w.lm_head.data == m->w.wte.data; }

/* ---------------------------------------------------------------- ggml */

/* ggml_ftype of a model whose matrices are t, plus 1000 * quantization version 2 when quantized
 * (writers see only validated models: f32, f16 or a block format). */
static int32_t ggml_ftype(gpt2_dtype t)
{
    return gpt2_dtype_table[t].ftype + (gpt2_dtype_is_quant(t) ? 2000 : 0);
}

/* ggml_type of a tensor */
static int32_t ggml_ttype(gpt2_dtype t) { return (int32_t)gpt2_dtype_table[t].ggml_type; }

int gpt2_write_ggml(const gpt2_model *m, const char *path, char *err, size_t errlen)
{
    return gpt2_write_ggml_ex(m, path, 0, err, errlen);
}

int gpt2_write_ggml_ex(const gpt2_model *m, const char *path, unsigned oflags, char *err, size_t errlen)
{
    if (gpt2_model_check(m, path, "cannot write an invalid model: ", err, errlen) != 0) return -1;
    void *buf = malloc(CHUNK_ELEMS * 4);
    if (!buf) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    gpt2_out o;
    int orc = gpt2_out_open(&o, path, oflags, err, errlen);
    if (orc != 0) {
        free(buf);
        return orc;
    }
    const gpt2_hparams *hp = &m->hp;
    int n = gpt2_n_tensors(hp);
    uint64_t total = 32;
    for (int32_t i = 0; i < hp->n_vocab; i++) total += 4 + (i < m->vocab.n_tokens ? m->vocab.len[i] : 0);
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD && tied(m)) continue;
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        gpt2_tkind kind = gpt2_tensor_kind(id);
        gpt2_dtype dt = (kind == GPT2_K_VEC || id == GPT2_T_WPE) ? GPT2_F32 : m->wtype;
        total += 28 + gpt2_row_bytes(dt, (size_t)t->ne[0] * (size_t)t->ne[1]);
    }
    gpt2_out_expect(&o, total);
    put_u32(&o, 0x67676d6cu);
    put_i32(&o, hp->n_vocab);
    put_i32(&o, hp->n_ctx);
    put_i32(&o, hp->n_embd);
    put_i32(&o, hp->n_head);
    put_i32(&o, hp->n_layer);
    put_i32(&o, ggml_ftype(m->wtype));
    put_i32(&o, hp->n_vocab);
    for (int32_t i = 0; i < hp->n_vocab; i++) {
        if (i < m->vocab.n_tokens) {
            put_u32(&o, m->vocab.len[i]);
            gpt2_out_write(&o, m->vocab.tok[i], m->vocab.len[i]);
        } else {
            put_u32(&o, 0); /* rows without a token (padded vocabularies) */
        }
    }
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD && tied(m)) continue;
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        gpt2_tkind kind = gpt2_tensor_kind(id);
        /* ggml's example makes wte, lm_head and the matrices of the model's type, wpe and vectors f32. */
        gpt2_dtype dt = (kind == GPT2_K_VEC || id == GPT2_T_WPE) ? GPT2_F32 : m->wtype;
        char name[64];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        int n_dims = kind == GPT2_K_VEC ? 1 : 2;
        put_i32(&o, n_dims);
        put_i32(&o, (int32_t)strlen(name));
        put_i32(&o, ggml_ttype(dt));
        for (int d = 0; d < n_dims; d++) put_i32(&o, (int32_t)t->ne[d]);
        gpt2_out_write(&o, name, strlen(name));
        put_converted(&o, t->data, t->type, dt, (size_t)t->ne[0] * (size_t)t->ne[1], buf);
    }
    free(buf);
    return gpt2_out_close(&o, err, errlen);
}

/* ---------------------------------------------------------------- Hugging Face */

typedef struct st_entry {
    int id;
    char name[96];
    gpt2_dtype dt;
    int ndim;
    int64_t shape[2];
    uint64_t nbytes, begin;
} st_entry;

static const char *st_dtype(gpt2_dtype t) { return t == GPT2_F32 ? "F32" : t == GPT2_F16 ? "F16" : "BF16"; }

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* Stable order for the data: 4-byte types first, so every tensor stays aligned. */
static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    size_t sx = gpt2_dtype_size(x->dt), sy = gpt2_dtype_size(y->dt);
    if (sx != sy) return sx > sy ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Writes one safetensors file at path (inside the temporary directory); label names it in
 * messages and progress (its final path). */
static int write_safetensors(const gpt2_model *m, const char *path, const char *label, st_entry *e, int n,
                             char *err, size_t errlen)
{
    qsort(e, (size_t)n, sizeof *e, cmp_entry);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        e[i].begin = off;
        off += e[i].nbytes;
    }
    sbuf h = {0};
    sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        sb_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRId64, e[i].name, st_dtype(e[i].dt),
                  e[i].shape[0]);
        if (e[i].ndim == 2) sb_printf(&h, ",%" PRId64, e[i].shape[1]);
        sb_printf(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", e[i].begin, e[i].begin + e[i].nbytes);
    }
    sb_printf(&h, "}");
    while (!h.oom && (8 + h.n) % 8 != 0) sb_printf(&h, " ");
    if (h.oom) {
        free(h.p);
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    void *buf = malloc(CHUNK_ELEMS * 4);
    gpt2_out o;
    if (!buf || gpt2_out_open(&o, path, 0, err, errlen) != 0) {
        if (!buf) gpt2_errf(err, errlen, "%s: out of memory", label);
        free(buf);
        free(h.p);
        return -1;
    }
    snprintf(o.label, sizeof o.label, "%s", label);
    gpt2_out_expect(&o, 8 + h.n + off);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    gpt2_out_write(&o, len8, 8);
    gpt2_out_write(&o, h.p, h.n);
    free(h.p);
    int r = 0;
    for (int i = 0; i < n && r == 0; i++) {
        const gpt2_tensor *t = gpt2_tensor_at_c(m, e[i].id);
        if (gpt2_tensor_is_conv1d(e[i].id))
            r = put_transposed(&o, t, e[i].dt);
        else
            put_converted(&o, t->data, t->type, e[i].dt, (size_t)t->ne[0] * (size_t)t->ne[1], buf);
    }
    free(buf);
    if (r != 0) {
        gpt2_out_abort(&o);
        gpt2_errf(err, errlen, "%s: out of memory", label);
        return -1;
    }
    return gpt2_out_close(&o, err, errlen);
}

/* config.json into dir (the temporary directory); label: the final directory, for messages. */
static int write_config(const gpt2_model *m, const char *dir, const char *label, char *err, size_t errlen)
{
    char path[4096], name[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(name, sizeof name, "%s/config.json", label);
    const gpt2_hparams *hp = &m->hp;
    sbuf b = {0};
    sb_printf(&b, "{\n  \"activation_function\": \"%s\",\n", hp->gelu == GPT2_GELU_ERF ? "gelu" : "gelu_new");
    sb_printf(&b, "  \"architectures\": [\"GPT2LMHeadModel\"],\n");
    if (m->vocab.eot >= 0)
        sb_printf(&b, "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n", m->vocab.eot, m->vocab.eot);
    sb_printf(&b, "  \"layer_norm_epsilon\": %.9g,\n", (double)hp->ln_eps);
    sb_printf(&b, "  \"model_type\": \"gpt2\",\n");
    sb_printf(&b, "  \"n_ctx\": %d,\n  \"n_embd\": %d,\n  \"n_head\": %d,\n  \"n_inner\": null,\n", hp->n_ctx,
              hp->n_embd, hp->n_head);
    sb_printf(&b, "  \"n_layer\": %d,\n  \"n_positions\": %d,\n", hp->n_layer, hp->n_ctx);
    sb_printf(&b, "  \"tie_word_embeddings\": %s,\n", tied(m) ? "true" : "false");
    sb_printf(&b, "  \"torch_dtype\": \"%s\",\n", m->wtype == GPT2_F16 ? "float16" : "float32");
    sb_printf(&b, "  \"vocab_size\": %d\n}\n", hp->n_vocab);
    if (b.oom) {
        free(b.p);
        gpt2_errf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    gpt2_out o;
    if (gpt2_out_open(&o, path, 0, err, errlen) != 0) {
        free(b.p);
        return -1;
    }
    snprintf(o.label, sizeof o.label, "%s", name);
    gpt2_out_write(&o, b.p, b.n);
    free(b.p);
    return gpt2_out_close(&o, err, errlen);
}

/* The files of an HF model into dir (the temporary directory); label is the final directory. */
static int write_hf_files(const gpt2_model *m, const char *dir, const char *label, unsigned flags, char *err,
                          size_t errlen)
{
    if (write_config(m, dir, label, err, errlen) != 0) return -1;
    int n = gpt2_n_tensors(&m->hp);
    st_entry *e = calloc((size_t)n, sizeof *e);
    if (!e) {
        gpt2_errf(err, errlen, "%s: out of memory", label);
        return -1;
    }
    int k = 0;
    uint64_t total = 0;
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD && tied(m)) continue;
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        st_entry *x = &e[k++];
        char hn[64];
        gpt2_tensor_name_hf(id, hn, sizeof hn);
        snprintf(x->name, sizeof x->name, "%s%s",
                 (flags & GPT2_HF_PREFIX) && id != GPT2_T_LM_HEAD ? "transformer." : "", hn);
        x->id = id;
        x->dt = gpt2_dtype_is_quant(t->type) ? GPT2_F32 : t->type; /* safetensors: blocks written as f32 */
        gpt2_tkind kind = gpt2_tensor_kind(id);
        if (kind == GPT2_K_VEC) {
            x->ndim = 1;
            x->shape[0] = t->ne[0];
        } else if (kind == GPT2_K_MAT) { /* Conv1D: [in][out] */
            x->ndim = 2;
            x->shape[0] = t->ne[0];
            x->shape[1] = t->ne[1];
        } else {
            x->ndim = 2;
            x->shape[0] = t->ne[1];
            x->shape[1] = t->ne[0];
        }
        x->nbytes = (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * gpt2_dtype_size(x->dt);
        total += x->nbytes;
    }
    int r;
    char path[4096], name[4096];
    if (!(flags & GPT2_HF_SHARDED)) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        snprintf(name, sizeof name, "%s/model.safetensors", label);
        r = write_safetensors(m, path, name, e, k, err, errlen);
    } else {
        /* Two shards, split at half the bytes (each gets at least one tensor). */
        int cut = 1;
        uint64_t acc = e[0].nbytes;
        while (cut < k - 1 && acc < total / 2) acc += e[cut++].nbytes;
        static const char *const shard[2] = {"model-00001-of-00002.safetensors",
                                             "model-00002-of-00002.safetensors"};
        sbuf idx = {0};
        sb_printf(&idx, "{\n  \"metadata\": {\"total_size\": %" PRIu64 "},\n  \"weight_map\": {\n", total);
        for (int i = 0; i < k; i++)
            sb_printf(&idx, "    \"%s\": \"%s\"%s\n", e[i].name, shard[i >= cut], i + 1 < k ? "," : "");
        sb_printf(&idx, "  }\n}\n");
        snprintf(path, sizeof path, "%s/%s", dir, shard[0]);
        snprintf(name, sizeof name, "%s/%s", label, shard[0]);
        r = write_safetensors(m, path, name, e, cut, err, errlen);
        if (r == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, shard[1]);
            snprintf(name, sizeof name, "%s/%s", label, shard[1]);
            r = write_safetensors(m, path, name, e + cut, k - cut, err, errlen);
        }
        if (r == 0) {
            snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
            snprintf(name, sizeof name, "%s/model.safetensors.index.json", label);
            gpt2_out o;
            if (idx.oom) {
                gpt2_errf(err, errlen, "%s: out of memory", name);
                r = -1;
            } else if ((r = gpt2_out_open(&o, path, 0, err, errlen)) == 0) {
                snprintf(o.label, sizeof o.label, "%s", name);
                gpt2_out_write(&o, idx.p, idx.n);
                r = gpt2_out_close(&o, err, errlen);
            }
        }
        free(idx.p);
    }
    free(e);
    if (r != 0) return -1;
    if (!(flags & GPT2_HF_NO_VOCAB) && m->vocab.n_tokens > 0) {
        char e3[512] = "";
        if (gpt2_vocab_write_dir(&m->vocab, dir, e3, sizeof e3) != 0) {
            gpt2_errf(err, errlen, "%s: vocabulary: %s", label, e3);
            return -1;
        }
    }
    return 0;
}

int gpt2_write_hf_ex(const gpt2_model *m, const char *dir, unsigned flags, char *err, size_t errlen)
{
    if (gpt2_model_check(m, dir, "cannot write an invalid model: ", err, errlen) != 0) return -1;
    gpt2_outdir d;
    int r = gpt2_outdir_open(&d, dir, flags & GPT2_OUT_NO_REPLACE, err, errlen);
    if (r != 0) return r;
    if (write_hf_files(m, d.tmp, dir, flags, err, errlen) != 0) {
        gpt2_outdir_abort(&d);
        return -1;
    }
    return gpt2_outdir_commit(&d, err, errlen);
}

int gpt2_write_hf(const gpt2_model *m, const char *dir, char *err, size_t errlen)
{
    return gpt2_write_hf_ex(m, dir, 0, err, errlen);
}
