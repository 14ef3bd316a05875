/* format_ggml.c - ggml's legacy GPT-2 binary (the format of ggml's examples/gpt-2), reader.
 *
 *   u32 magic 0x67676d6c; i32 n_vocab, n_ctx, n_embd, n_head, n_layer, ftype
 *   i32 n_vocab; n_vocab x (u32 len, len raw bytes)
 *   until EOF: i32 n_dims, i32 name_len, i32 ttype; i32 ne[n_dims]; name; data (ne0 contiguous)
 *
 * ftype is ggml_ftype + 1000 * the quantization version (2 for the block layouts read here); ttype
 * is a ggml_type. Everything is little-endian and unpadded. The file is mapped; tensors point into the mapping
 * when their type fits and their data is aligned, otherwise they are copied into model memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_internal.h"
#include "vocab.h"

#define GGML_MAGIC 0x67676d6cu
#define GGML_QNT_VERSION_FACTOR 1000
#define GGML_QNT_VERSION 2
#define GGML_MAX_NAME 256

typedef struct cursor {
    const unsigned char *p;
    size_t n, pos;
} cursor;

static bool rd_u32(cursor *c, uint32_t *v)
{
    if (c->n - c->pos < 4) return false;
    const unsigned char *b = c->p + c->pos;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    c->pos += 4;
    return true;
}

static bool rd_i32(cursor *c, int32_t *v)
{
    uint32_t u;
    if (!rd_u32(c, &u)) return false;
    memcpy(v, &u, 4);
    return true;
}

/* ggml's ftype (the header's "mostly" type) -> ours, from the dtype table; -1 for types not
 * supported (ggml legacy files have no bf16). */
static int ftype_dtype(int32_t t)
{
    int d = gpt2_dtype_from_ftype(t);
    return d == GPT2_BF16 ? -1 : d;
}

/* ggml's enum ggml_type (a tensor's type) -> ours; -1 for types not supported (no bf16 here). */
static int ttype_dtype(int32_t t)
{
    int d = t < 0 ? -1 : gpt2_dtype_from_ggml_type((uint32_t)t);
    return d == GPT2_BF16 ? -1 : d;
}

static int load_vocab(gpt2_model *m, cursor *c, const char *path, char *err, size_t errlen)
{
    int32_t n;
    if (!rd_i32(c, &n)) {
        gpt2_errf(err, errlen, "%s: truncated before the vocabulary size (file has %zu bytes)", path, c->n);
        return -1;
    }
    if (n != m->hp.n_vocab) {
        gpt2_errf(err, errlen, "%s: vocabulary has %d tokens but n_vocab is %d", path, n, m->hp.n_vocab);
        return -1;
    }
    /* Sizes before allocations: every token takes at least its 4-byte length. */
    if ((uint64_t)n * 4 > c->n - c->pos) {
        gpt2_errf(err, errlen,
                  "%s: vocabulary of %d tokens needs at least %" PRIu64
                  " bytes, but only %zu remain in the file",
                  path, n, (uint64_t)n * 4, c->n - c->pos);
        return -1;
    }
    gpt2_vocab tmp;
    if (gpt2_vocab_scratch(&tmp, n) != 0) {
        gpt2_errf(err, errlen, "%s: out of memory for %d tokens", path, n);
        return -1;
    }
    static const char eot[] = "<|endoftext|>";
    for (int32_t i = 0; i < n; i++) {
        uint32_t len;
        if (!rd_u32(c, &len) || len > c->n - c->pos) {
            gpt2_errf(err, errlen, "%s: truncated in the vocabulary at token %d (offset %zu)", path, i,
                      c->pos);
            free(tmp.tok);
            free(tmp.len);
            return -1;
        }
        tmp.tok[i] = (char *)(c->p + c->pos);
        tmp.len[i] = len;
        if (len == sizeof eot - 1 && memcmp(tmp.tok[i], eot, len) == 0 && tmp.eot < 0) tmp.eot = i;
        c->pos += len;
    }
    int r = gpt2_vocab_copy(&m->vocab, &tmp);
    free(tmp.tok);
    free(tmp.len);
    if (r != 0) {
        gpt2_errf(err, errlen, "%s: out of memory copying the vocabulary", path);
        return -1;
    }
    m->vocab.eot = tmp.eot;
    char e2[200] = "";
    if (gpt2_vocab_derive_merges(&m->vocab, e2, sizeof e2) != 0) {
        gpt2_errf(err, errlen, "%s: cannot derive BPE merges from the vocabulary: %s", path, e2);
        return -1;
    }
    return 0;
}

static int load_tensors(gpt2_model *m, cursor *c, const char *path, char *err, size_t errlen)
{
    int n_t = gpt2_n_tensors(&m->hp);
    unsigned char *seen = calloc((size_t)n_t, 1);
    if (!seen) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int ret = -1;
    char name[GGML_MAX_NAME + 1];
    while (c->pos < c->n) {
        size_t start = c->pos;
        int32_t n_dims, name_len, ttype;
        if (!rd_i32(c, &n_dims) || !rd_i32(c, &name_len) || !rd_i32(c, &ttype)) {
            gpt2_errf(err, errlen, "%s: truncated tensor header at offset %zu", path, start);
            goto out;
        }
        if (n_dims < 1 || n_dims > 2) {
            gpt2_errf(err, errlen, "%s: tensor at offset %zu has %d dimensions (expected 1 or 2)", path,
                      start, n_dims);
            goto out;
        }
        if (name_len < 1 || name_len > GGML_MAX_NAME) {
            gpt2_errf(err, errlen, "%s: tensor at offset %zu has a name of %d bytes (expected 1..%d)", path,
                      start, name_len, GGML_MAX_NAME);
            goto out;
        }
        int64_t ne[2] = {1, 1};
        for (int i = 0; i < n_dims; i++) {
            int32_t d;
            if (!rd_i32(c, &d)) {
                gpt2_errf(err, errlen, "%s: truncated tensor header at offset %zu", path, start);
                goto out;
            }
            ne[i] = d;
        }
        if ((size_t)name_len > c->n - c->pos) {
            gpt2_errf(err, errlen, "%s: truncated tensor name at offset %zu", path, c->pos);
            goto out;
        }
        memcpy(name, c->p + c->pos, (size_t)name_len);
        name[name_len] = 0;
        for (int i = 0; i < name_len; i++)
            if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] >= 0x7f) name[i] = '?';
        c->pos += (size_t)name_len;
        if (ttype_dtype(ttype) < 0) {
            if (ttype >= 2 && ttype < 64)
                gpt2_errf(err, errlen,
                          "%s: tensor %s has ggml type %d, not supported (f32, f16, q4_0, q4_1, q5_0, q5_1, "
                          "q8_0 are)",
                          path, name, ttype);
            else
                gpt2_errf(err, errlen, "%s: tensor %s has unknown type %d", path, name, ttype);
            goto out;
        }
        gpt2_dtype st = (gpt2_dtype)ttype_dtype(ttype);
        int id = gpt2_tensor_id_ggml(name, (size_t)name_len, m->hp.n_layer);
        if (id < 0) {
            gpt2_errf(err, errlen, "%s: unknown tensor %s", path, name);
            goto out;
        }
        if (seen[id]) {
            gpt2_errf(err, errlen, "%s: duplicate tensor %s", path, name);
            goto out;
        }
        seen[id] = 1;
        int64_t want[2];
        gpt2_tensor_shape(&m->hp, id, want);
        bool vec = gpt2_tensor_kind(id) == GPT2_K_VEC;
        if (ne[0] != want[0] || ne[1] != want[1]) {
            char g[48], w[48];
            gpt2_shape_str(g, sizeof g, n_dims, ne);
            gpt2_shape_str(w, sizeof w, vec ? 1 : 2, want);
            gpt2_errf(err, errlen, "%s: tensor %s has shape %s, expected %s", path, name, g, w);
            goto out;
        }
        if (gpt2_dtype_is_quant(st) && ne[0] % GPT2_QBLOCK != 0) {
            gpt2_errf(err, errlen, "%s: tensor %s is %s but has %lld columns, not a multiple of %d", path,
                      name, gpt2_dtype_name(st), (long long)ne[0], GPT2_QBLOCK);
            goto out;
        }
        if (gpt2_dtype_is_quant(st) && (vec || id == GPT2_T_WPE)) {
            gpt2_errf(err, errlen,
                      "%s: tensor %s is %s; only weight matrices, wte and lm_head may be quantized", path,
                      name, gpt2_dtype_name(st));
            goto out;
        }
        /* Shapes now match hp, whose limits keep this product far from overflow. */
        size_t nbytes = gpt2_row_bytes(st, (size_t)ne[0]) * (size_t)ne[1];
        if (nbytes > c->n - c->pos) {
            gpt2_errf(
                err, errlen,
                "%s: tensor %s data (%zu bytes at offset %zu) extends past the end of the file (%zu bytes)",
                path, name, nbytes, c->pos, c->n);
            goto out;
        }
        if (gpt2_place_tensor(m, id, c->p + c->pos, st, false, path, err, errlen) != 0) goto out;
        c->pos += nbytes;
    }
    for (int id = 0; id < n_t; id++) {
        if (seen[id]) continue;
        if (id == GPT2_T_LM_HEAD) {
            m->w.lm_head = m->w.wte; /* tied */
            continue;
        }
        gpt2_tensor_name_ggml(id, name, sizeof name);
        gpt2_errf(err, errlen, "%s: missing tensor %s", path, name);
        goto out;
    }
    ret = 0;
out:
    free(seen);
    return ret;
}

int gpt2_load_ggml(gpt2_model *m, const char *path, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    snprintf(m->format, sizeof m->format, "ggml");
    if (gpt2_map_file(path, &m->map, &m->map_size, err, errlen) != 0) return -1;
    cursor c = {m->map, m->map_size, 0};
    uint32_t magic;
    int32_t h[6];
    if (!rd_u32(&c, &magic)) {
        gpt2_errf(err, errlen, "%s: file too short (%zu bytes) for a ggml header", path, c.n);
        goto fail;
    }
    if (magic != GGML_MAGIC) {
        gpt2_errf(err, errlen, "%s: bad magic 0x%08x (expected ggml 0x%08x)", path, magic, GGML_MAGIC);
        goto fail;
    }
    for (int i = 0; i < 6; i++)
        if (!rd_i32(&c, &h[i])) {
            gpt2_errf(err, errlen, "%s: truncated in the header (file has %zu bytes)", path, c.n);
            goto fail;
        }
    m->hp.n_vocab = h[0];
    m->hp.n_ctx = h[1];
    m->hp.n_embd = h[2];
    m->hp.n_head = h[3];
    m->hp.n_layer = h[4];
    m->hp.ln_eps = 1e-5f;
    m->hp.gelu = GPT2_GELU_TANH;
    int32_t ftype = h[5];
    if (ftype < 0) {
        gpt2_errf(err, errlen, "%s: bad ftype %d", path, ftype);
        goto fail;
    }
    int32_t qnt_version = ftype / GGML_QNT_VERSION_FACTOR;
    ftype %= GGML_QNT_VERSION_FACTOR;
    if (ftype_dtype(ftype) < 0) {
        gpt2_errf(err, errlen,
                  "%s: ftype %d not supported (0 f32, 1 f16, 2 q4_0, 3 q4_1, 7 q8_0, 8 q5_0, 9 q5_1 are)",
                  path, ftype);
        goto fail;
    }
    m->wtype = (gpt2_dtype)ftype_dtype(ftype);
    /* Block layouts changed twice in 2023; only ggml's current one (version 2) is read. */
    if (gpt2_dtype_is_quant(m->wtype) && qnt_version != GGML_QNT_VERSION) {
        gpt2_errf(err, errlen, "%s: quantization version %d not supported (ftype %d; expected version %d)",
                  path, qnt_version, h[5], GGML_QNT_VERSION);
        goto fail;
    }
    if (gpt2_hparams_check(&m->hp, path, err, errlen) != 0) goto fail;
    /* Worst case: every tensor stored untied; the mapping is counted as the weights. */
    if (gpt2_mem_check(gpt2_expected_bytes(&m->hp, m->wtype, false), path, err, errlen) != 0) goto fail;
    if (gpt2_alloc_layers(m, err, errlen) != 0) goto fail;
    if (load_vocab(m, &c, path, err, errlen) != 0) goto fail;
    if (load_tensors(m, &c, path, err, errlen) != 0) goto fail;
    if (gpt2_model_check(m, path, "", err, errlen) != 0) goto fail;
    return 0;
fail:
    gpt2_model_free(m);
    return -1;
}
