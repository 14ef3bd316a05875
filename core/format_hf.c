/* format_hf.c - Hugging Face GPT-2 directories: config.json, model.safetensors (or shards listed in
 * model.safetensors.index.json), vocab.json + merges.txt.
 *
 * safetensors: u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [a, b], "data_offsets": [begin, end]}, "__metadata__": {...}}
 * then the data buffer; offsets are relative to its start (byte 8 + N).
 * GPT-2's Conv1D weights are stored [in][out]; they are transposed here into [out][in].
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "model.h"
#include "model_internal.h"
#include "vocab.h"

#define ST_MAX_HEADER (100u << 20)
#define ST_MAX_FILES 64

typedef struct st_tensor {
    bool present;
    gpt2_dtype dtype;
    const unsigned char *data;
    int file;            /* index into the file list */
    uint64_t begin, end; /* data_offsets */
    char name[96];       /* as spelled in the file (for messages) */
} st_tensor;

typedef struct hf_ctx {
    gpt2_model *m;
    const char *dir;
    char files[ST_MAX_FILES][1024];
    int n_files;
    st_tensor *t; /* one per tensor id */
    char *err;
    size_t errlen;
} hf_ctx;

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---------------------------------------------------------------- config.json */

static int cfg_int(const json_value *root, const char *key, bool required, int64_t *out, const char *file,
                   char *err, size_t errlen)
{
    const json_value *v = json_get(root, key);
    if (!v || v->type == JSON_NULL) {
        if (required) gpt2_errf(err, errlen, "%s: missing %s", file, key);
        return required ? -1 : 0;
    }
    if (!json_as_int(v, out) || *out < INT32_MIN || *out > INT32_MAX) {
        gpt2_errf(err, errlen, "%s: %s is not a 32-bit integer", file, key);
        return -1;
    }
    return 1;
}

static int cfg_bool(const json_value *root, const char *key, int def, const char *file, char *err,
                    size_t errlen)
{
    const json_value *v = json_get(root, key);
    if (!v || v->type == JSON_NULL) return def;
    if (v->type != JSON_BOOL) {
        gpt2_errf(err, errlen, "%s: %s is not true or false", file, key);
        return -1;
    }
    return v->b ? 1 : 0;
}

static int read_config(gpt2_model *m, const char *dir, int *tie, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text;
    size_t len;
    if (gpt2_read_file(path, 1u << 20, &text, &len, err, errlen) != 0) return -1;
    char e2[200];
    json_doc *d = json_parse(text, len, e2, sizeof e2);
    free(text);
    if (!d) {
        gpt2_errf(err, errlen, "%s: %s", path, e2);
        return -1;
    }
    int ret = -1;
    const json_value *root = json_root(d);
    if (!root || root->type != JSON_OBJECT) {
        gpt2_errf(err, errlen, "%s: not a JSON object", path);
        goto out;
    }
    const json_value *mt = json_get(root, "model_type");
    if (mt && mt->type == JSON_STRING && strcmp(mt->str, "gpt2") != 0) {
        gpt2_errf(err, errlen, "%s: model_type '%.40s' is not supported (expected gpt2)", path, mt->str);
        goto out;
    }
    int64_t n_embd, n_layer, n_head, n_vocab, n_pos = 0, n_ctx = 0, n_inner = 0;
    if (cfg_int(root, "n_embd", true, &n_embd, path, err, errlen) < 0) goto out;
    if (cfg_int(root, "n_layer", true, &n_layer, path, err, errlen) < 0) goto out;
    if (cfg_int(root, "n_head", true, &n_head, path, err, errlen) < 0) goto out;
    if (cfg_int(root, "vocab_size", true, &n_vocab, path, err, errlen) < 0) goto out;
    int hp_ = cfg_int(root, "n_positions", false, &n_pos, path, err, errlen);
    if (hp_ < 0) goto out;
    int hc = cfg_int(root, "n_ctx", false, &n_ctx, path, err, errlen);
    if (hc < 0) goto out;
    if (!hp_ && !hc) {
        gpt2_errf(err, errlen, "%s: missing n_positions", path);
        goto out;
    }
    int hi = cfg_int(root, "n_inner", false, &n_inner, path, err, errlen);
    if (hi < 0) goto out;
    if (hi && n_inner != 4 * n_embd) {
        gpt2_errf(err, errlen, "%s: n_inner %lld is not supported (only 4*n_embd = %lld)", path,
                  (long long)n_inner, (long long)(4 * n_embd));
        goto out;
    }
    m->hp.n_embd = (int32_t)n_embd;
    m->hp.n_layer = (int32_t)n_layer;
    m->hp.n_head = (int32_t)n_head;
    m->hp.n_vocab = (int32_t)n_vocab;
    m->hp.n_ctx = (int32_t)(hp_ ? n_pos : n_ctx);
    m->hp.ln_eps = 1e-5f;
    const json_value *v = json_get(root, "layer_norm_epsilon");
    if (v && v->type != JSON_NULL) {
        double e;
        if (!json_as_num(v, &e)) {
            gpt2_errf(err, errlen, "%s: layer_norm_epsilon is not a number", path);
            goto out;
        }
        m->hp.ln_eps = (float)e;
    }
    m->hp.gelu = GPT2_GELU_TANH;
    v = json_get(root, "activation_function");
    if (v && v->type != JSON_NULL) {
        if (v->type != JSON_STRING) {
            gpt2_errf(err, errlen, "%s: activation_function is not a string", path);
            goto out;
        }
        if (strcmp(v->str, "gelu_new") == 0 || strcmp(v->str, "gelu_pytorch_tanh") == 0 ||
            strcmp(v->str, "gelu_fast") == 0)
            m->hp.gelu = GPT2_GELU_TANH;
        else if (strcmp(v->str, "gelu") == 0)
            m->hp.gelu = GPT2_GELU_ERF;
        else {
            gpt2_errf(err, errlen,
                      "%s: activation_function '%.40s' is not supported (expected gelu_new, "
                      "gelu_pytorch_tanh or gelu)",
                      path, v->str);
            goto out;
        }
    }
    int b = cfg_bool(root, "scale_attn_by_inverse_layer_idx", 0, path, err, errlen);
    if (b < 0) goto out;
    if (b) {
        gpt2_errf(err, errlen, "%s: scale_attn_by_inverse_layer_idx is not supported", path);
        goto out;
    }
    b = cfg_bool(root, "scale_attn_weights", 1, path, err, errlen);
    if (b < 0) goto out;
    if (!b) {
        gpt2_errf(err, errlen, "%s: scale_attn_weights false is not supported", path);
        goto out;
    }
    b = cfg_bool(root, "add_cross_attention", 0, path, err, errlen);
    if (b < 0) goto out;
    if (b) {
        gpt2_errf(err, errlen, "%s: add_cross_attention is not supported", path);
        goto out;
    }
    *tie = cfg_bool(root, "tie_word_embeddings", 1, path, err, errlen);
    if (*tie < 0) goto out;
    if (gpt2_hparams_check(&m->hp, path, err, errlen) != 0) goto out;
    ret = 0;
out:
    json_free(d);
    return ret;
}

/* ---------------------------------------------------------------- safetensors */

static bool parse_dtype(const char *s, gpt2_dtype *t)
{
    if (strcmp(s, "F32") == 0)
        *t = GPT2_F32;
    else if (strcmp(s, "F16") == 0)
        *t = GPT2_F16;
    else if (strcmp(s, "BF16") == 0)
        *t = GPT2_BF16;
    else
        return false;
    return true;
}

static bool ends_with_n(const char *s, size_t n, const char *suf)
{
    size_t b = strlen(suf);
    return n >= b && memcmp(s + n - b, suf, b) == 0;
}

/* Reads one safetensors file's header and records the tensors it holds. */
static int read_st_file(hf_ctx *c, int fi, const unsigned char *map, size_t size)
{
    const char *path = c->files[fi];
    char *err = c->err;
    size_t errlen = c->errlen;
    if (size < 8) {
        gpt2_errf(err, errlen, "%s: file too short (%zu bytes) for a safetensors header", path, size);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | map[i];
    if (hlen > size - 8) {
        gpt2_errf(err, errlen, "%s: header length %llu extends past the end of the file (%zu bytes)", path,
                  (unsigned long long)hlen, size);
        return -1;
    }
    if (hlen > ST_MAX_HEADER) {
        gpt2_errf(err, errlen, "%s: header length %llu is too large (at most %u)", path,
                  (unsigned long long)hlen, ST_MAX_HEADER);
        return -1;
    }
    const unsigned char *data = map + 8 + hlen;
    uint64_t data_len = size - 8 - hlen;
    char e2[200];
    json_doc *d = json_parse((const char *)map + 8, (size_t)hlen, e2, sizeof e2);
    if (!d) {
        gpt2_errf(err, errlen, "%s: bad safetensors header: %s", path, e2);
        return -1;
    }
    int ret = -1;
    const json_value *root = json_root(d);
    if (!root || root->type != JSON_OBJECT) {
        gpt2_errf(err, errlen, "%s: safetensors header is not a JSON object", path);
        goto out;
    }
    const gpt2_hparams *hp = &c->m->hp;
    for (size_t k = 0; k < root->len; k++) {
        const char *full = root->keys[k];
        size_t flen = root->key_lens[k];
        if (strcmp(full, "__metadata__") == 0) continue;
        char shown[96];
        snprintf(shown, sizeof shown, "%.*s", (int)(flen < 80 ? flen : 80), full);
        for (char *p = shown; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) *p = '?';
        const char *name = full;
        size_t nlen = flen;
        if (nlen > 12 && memcmp(name, "transformer.", 12) == 0) {
            name += 12;
            nlen -= 12;
        }
        if (ends_with_n(name, nlen, ".attn.bias") || ends_with_n(name, nlen, ".attn.masked_bias")) continue;
        int id = gpt2_tensor_id_hf(name, nlen, hp->n_layer);
        if (id < 0) {
            if (nlen > 2 && memcmp(name, "h.", 2) == 0) {
                long layer = strtol(name + 2, NULL, 10);
                if (layer >= hp->n_layer) {
                    gpt2_errf(err, errlen,
                              "%s: tensor %s belongs to layer %ld but config.json has n_layer %d", path,
                              shown, layer, hp->n_layer);
                    goto out;
                }
            }
            continue; /* not part of the LM (other heads, buffers) */
        }
        st_tensor *t = &c->t[id];
        if (t->present) {
            gpt2_errf(err, errlen, "%s: duplicate tensor %s (also %s in %s)", path, shown, t->name,
                      c->files[t->file]);
            goto out;
        }
        const json_value *e = root->items[k];
        const json_value *dt = json_get(e, "dtype"), *sh = json_get(e, "shape"),
                         *of = json_get(e, "data_offsets");
        if (e->type != JSON_OBJECT || !dt || dt->type != JSON_STRING || !sh || sh->type != JSON_ARRAY ||
            !of || of->type != JSON_ARRAY) {
            gpt2_errf(err, errlen, "%s: tensor %s: entry lacks dtype, shape or data_offsets", path, shown);
            goto out;
        }
        gpt2_dtype dtype;
        if (!parse_dtype(dt->str, &dtype)) {
            gpt2_errf(err, errlen, "%s: tensor %s has dtype %.16s, expected F32, F16 or BF16", path, shown,
                      dt->str);
            goto out;
        }
        int64_t shape[2] = {0, 0};
        if (sh->len < 1 || sh->len > 2) {
            gpt2_errf(err, errlen, "%s: tensor %s has %zu dimensions", path, shown, sh->len);
            goto out;
        }
        for (size_t i = 0; i < sh->len; i++)
            if (!json_as_int(sh->items[i], &shape[i]) || shape[i] < 0) {
                gpt2_errf(err, errlen, "%s: tensor %s has a bad shape", path, shown);
                goto out;
            }
        /* Expected file shape: Conv1D [in][out]; embeddings [rows][n_embd]; vectors [n]. */
        int64_t ne[2], want[2];
        gpt2_tensor_shape(hp, id, ne);
        int want_dims = gpt2_tensor_kind(id) == GPT2_K_VEC ? 1 : 2;
        if (gpt2_tensor_is_conv1d(id)) {
            want[0] = ne[0];
            want[1] = ne[1];
        } else if (want_dims == 2) {
            want[0] = ne[1];
            want[1] = ne[0];
        } else {
            want[0] = ne[0];
            want[1] = 0;
        }
        if ((int)sh->len != want_dims || shape[0] != want[0] || (want_dims == 2 && shape[1] != want[1])) {
            char g[48], w[48];
            gpt2_shape_str(g, sizeof g, (int)sh->len, shape);
            gpt2_shape_str(w, sizeof w, want_dims, want);
            gpt2_errf(err, errlen, "%s: tensor %s has shape %s, expected %s", path, shown, g, w);
            goto out;
        }
        int64_t b, en;
        if (of->len != 2 || !json_as_int(of->items[0], &b) || !json_as_int(of->items[1], &en) || b < 0 ||
            en < b) {
            gpt2_errf(err, errlen, "%s: tensor %s has bad data_offsets", path, shown);
            goto out;
        }
        uint64_t esz = gpt2_dtype_size(dtype);
        uint64_t need = (uint64_t)ne[0] * (uint64_t)ne[1] * esz;
        if ((uint64_t)en > data_len) {
            gpt2_errf(err, errlen,
                      "%s: tensor %s data_offsets [%lld, %lld] extend past the end of the data (%llu bytes)",
                      path, shown, (long long)b, (long long)en, (unsigned long long)data_len);
            goto out;
        }
        if ((uint64_t)(en - b) != need) {
            gpt2_errf(err, errlen, "%s: tensor %s has %lld bytes of data, expected %llu", path, shown,
                      (long long)(en - b), (unsigned long long)need);
            goto out;
        }
        if ((uint64_t)b % esz != 0) {
            gpt2_errf(err, errlen, "%s: tensor %s data offset %lld is misaligned for %s", path, shown,
                      (long long)b, dt->str);
            goto out;
        }
        t->present = true;
        t->dtype = dtype;
        t->data = data + b;
        t->file = fi;
        t->begin = (uint64_t)b;
        t->end = (uint64_t)en;
        snprintf(t->name, sizeof t->name, "%s", shown);
    }
    ret = 0;
out:
    json_free(d);
    return ret;
}

static int cmp_by_begin(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* No two tensors may share bytes. */
static int check_overlaps(hf_ctx *c, int n)
{
    const st_tensor **v = malloc(sizeof *v * (size_t)n);
    if (!v) {
        gpt2_errf(c->err, c->errlen, "%s: out of memory", c->dir);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (c->t[i].present) v[k++] = &c->t[i];
    qsort(v, (size_t)k, sizeof *v, cmp_by_begin);
    for (int i = 1; i < k; i++)
        if (v[i]->file == v[i - 1]->file && v[i]->begin < v[i - 1]->end) {
            gpt2_errf(c->err, c->errlen, "%s: tensors %s and %s overlap", c->files[v[i]->file],
                      v[i - 1]->name, v[i]->name);
            free(v);
            return -1;
        }
    free(v);
    return 0;
}

/* Fills c->files from model.safetensors or the index. */
static int find_files(hf_ctx *c)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", c->dir);
    if (file_exists(path)) {
        snprintf(c->files[0], sizeof c->files[0], "%s", path);
        c->n_files = 1;
        return 0;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", c->dir);
    if (!file_exists(path)) {
        gpt2_errf(c->err, c->errlen, "%s: no model.safetensors or model.safetensors.index.json", c->dir);
        return -1;
    }
    char *text;
    size_t len;
    if (gpt2_read_file(path, 64u << 20, &text, &len, c->err, c->errlen) != 0) return -1;
    char e2[200];
    json_doc *d = json_parse(text, len, e2, sizeof e2);
    free(text);
    if (!d) {
        gpt2_errf(c->err, c->errlen, "%s: %s", path, e2);
        return -1;
    }
    int ret = -1;
    const json_value *wm = json_get(json_root(d), "weight_map");
    if (!wm || wm->type != JSON_OBJECT) {
        gpt2_errf(c->err, c->errlen, "%s: no weight_map object", path);
        goto out;
    }
    for (size_t i = 0; i < wm->len; i++) {
        const json_value *f = wm->items[i];
        if (f->type != JSON_STRING || f->len == 0 || f->len > 255 || strlen(f->str) != f->len ||
            strchr(f->str, '/') || f->str[0] == '.') {
            gpt2_errf(c->err, c->errlen, "%s: weight_map entry %.80s names a bad file", path, wm->keys[i]);
            goto out;
        }
        char full[1024];
        if (snprintf(full, sizeof full, "%s/%s", c->dir, f->str) >= (int)sizeof full) {
            gpt2_errf(c->err, c->errlen, "%s: path too long", path);
            goto out;
        }
        int j;
        for (j = 0; j < c->n_files; j++)
            if (strcmp(c->files[j], full) == 0) break;
        if (j < c->n_files) continue;
        if (c->n_files == ST_MAX_FILES) {
            gpt2_errf(c->err, c->errlen, "%s: more than %d shard files", path, ST_MAX_FILES);
            goto out;
        }
        snprintf(c->files[c->n_files++], sizeof c->files[0], "%s", full);
    }
    if (c->n_files == 0) {
        gpt2_errf(c->err, c->errlen, "%s: weight_map is empty", path);
        goto out;
    }
    ret = 0;
out:
    json_free(d);
    return ret;
}

static int load_vocab(gpt2_model *m, const char *dir, unsigned flags, char *err, size_t errlen)
{
    static const char *const names[] = {"vocab.json", "merges.txt", "encoder.json", "vocab.bpe"};
    bool any = false;
    for (int i = 0; i < 4; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (file_exists(p)) any = true;
    }
    if (!any) {
        if (flags & GPT2_LOAD_VOCAB_OPTIONAL) return 0;
        gpt2_errf(err, errlen, "%s: no vocabulary (vocab.json + merges.txt, or encoder.json + vocab.bpe)",
                  dir);
        return -1;
    }
    char e2[512] = "";
    if (gpt2_vocab_load_dir(&m->vocab, dir, e2, sizeof e2) != 0) {
        if (strstr(e2, dir))
            gpt2_errf(err, errlen, "%s", e2);
        else
            gpt2_errf(err, errlen, "%s: %s", dir, e2);
        return -1;
    }
    if (m->vocab.n_tokens > m->hp.n_vocab) {
        gpt2_errf(err, errlen, "%s: vocabulary has %d tokens but config.json vocab_size is %d", dir,
                  m->vocab.n_tokens, m->hp.n_vocab);
        return -1;
    }
    return 0;
}

int gpt2_load_hf_ex(gpt2_model *m, const char *dir, unsigned flags, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    snprintf(m->format, sizeof m->format, "hf");
    if (strlen(dir) > 900) {
        gpt2_errf(err, errlen, "%.200s...: path too long", dir);
        return -1;
    }
    hf_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        gpt2_errf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    c->m = m;
    c->dir = dir;
    c->err = err;
    c->errlen = errlen;
    int tie = 1, n = 0;
    if (read_config(m, dir, &tie, err, errlen) != 0) goto fail;
    n = gpt2_n_tensors(&m->hp);
    c->t = calloc((size_t)n, sizeof *c->t);
    if (!c->t) {
        gpt2_errf(err, errlen, "%s: out of memory", dir);
        goto fail;
    }
    if (find_files(c) != 0) goto fail;
    for (int i = 0; i < c->n_files; i++) {
        void *map;
        size_t size;
        if (gpt2_map_file(c->files[i], &map, &size, err, errlen) != 0) goto fail;
        if (i == 0) {
            m->map = map;
            m->map_size = size;
        } else {
            m->extra_maps[m->n_extra] = map;
            m->extra_sizes[m->n_extra++] = size;
        }
        if (read_st_file(c, i, map, size) != 0) goto fail;
    }
    if (check_overlaps(c, n) != 0) goto fail;
    const char *where = c->n_files == 1 ? c->files[0] : dir;
    for (int id = 0; id < n; id++) {
        if (c->t[id].present || (id == GPT2_T_LM_HEAD && tie)) continue;
        char name[64];
        gpt2_tensor_name_hf(id, name, sizeof name);
        gpt2_errf(err, errlen, "%s: missing tensor %s", where, name);
        goto fail;
    }
    m->wtype = GPT2_F16;
    for (int id = 0; id < n; id++)
        if (gpt2_tensor_kind(id) == GPT2_K_MAT && c->t[id].dtype != GPT2_F16) m->wtype = GPT2_F32;
    bool untied = c->t[GPT2_T_LM_HEAD].present;
    if (gpt2_mem_check(gpt2_expected_bytes(&m->hp, m->wtype, untied), where, err, errlen) != 0) goto fail;
    if (gpt2_alloc_layers(m, err, errlen) != 0) goto fail;
    for (int id = 0; id < n; id++) {
        const st_tensor *t = &c->t[id];
        if (!t->present) continue;
        if (gpt2_place_tensor(m, id, t->data, t->dtype, gpt2_tensor_is_conv1d(id), c->files[t->file], err,
                              errlen) != 0)
            goto fail;
    }
    if (!untied) m->w.lm_head = m->w.wte;
    if (load_vocab(m, dir, flags, err, errlen) != 0) goto fail;
    if (gpt2_model_check(m, dir, "", err, errlen) != 0) goto fail;
    free(c->t);
    free(c);
    return 0;
fail:
    if (c) {
        free(c->t);
        free(c);
    }
    gpt2_model_free(m);
    return -1;
}

int gpt2_load_hf(gpt2_model *m, const char *dir, char *err, size_t errlen)
{
    return gpt2_load_hf_ex(m, dir, 0, err, errlen);
}
