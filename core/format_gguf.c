/* format_gguf.c - the GPT-2 model reader of GGUF files, on the container parser (gguf.c).
 *
 * The model reader expects llama.cpp's gpt2 architecture: hyper-parameters under "gpt2.", tensors
 * token_embd, position_embd, output_norm, output (optional: tied), blk.N.{attn_norm, attn_qkv,
 * attn_output, ffn_norm, ffn_up, ffn_down}.{weight,bias}. Matrices are stored [out][in] (ne0 = in),
 * as vkgpt2 keeps them; the vocabulary is in GPT-2's byte-to-unicode spelling.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "vocab.h"
#include "hashmap.h"

/* ---------------------------------------------------------------- model reader */

static int req_int(const gguf_file *g, const char *key, int64_t lo, int64_t hi, bool required, int32_t *out,
                   const char *path, char *err, size_t errlen)
{
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) {
        if (required) gpt2_errf(err, errlen, "%s: missing metadata key %s", path, key);
        return required ? -1 : 0;
    }
    int64_t v;
    if (!gguf_kv_int(kv, &v)) {
        gpt2_errf(err, errlen, "%s: metadata key %s has type %s, expected an integer", path, key,
                  gguf_type_name(kv->type));
        return -1;
    }
    if (v < lo || v > hi) {
        gpt2_errf(err, errlen, "%s: metadata key %s = %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")",
                  path, key, v, lo, hi);
        return -1;
    }
    *out = (int32_t)v;
    return 1;
}

static int load_tensors(gpt2_model *m, const gguf_file *g, const char *path, char *err, size_t errlen)
{
    int n_t = gpt2_n_tensors(&m->hp);
    const gguf_tensor **by_id = calloc((size_t)n_t, sizeof *by_id);
    if (!by_id) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int ret = -1;
    char nb[80], name[96];
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->t[i];
        int id = gpt2_tensor_id_gguf(t->name, t->name_len, m->hp.n_layer);
        if (id < 0) {
            gpt2_errf(err, errlen, "%s: unexpected tensor %s for a %d-layer gpt2", path,
                      gguf_show(nb, sizeof nb, t->name, t->name_len), m->hp.n_layer);
            goto out;
        }
        by_id[id] = t; /* names are unique (gguf_parse) */
    }
    /* The weight type is that of the first layer's QKV matrix (bf16 is widened to f32); matrices of
     * other types are converted to it. */
    const gguf_tensor *q = by_id[GPT2_T_GLOBALS + GPT2_L_ATTN_W];
    if (!q) {
        gpt2_errf(err, errlen, "%s: missing tensor blk.0.attn_qkv.weight", path);
        goto out;
    }
    m->wtype = q->dtype == GPT2_BF16 ? GPT2_F32 : q->dtype;
    for (int id = 0; id < n_t; id++) {
        const gguf_tensor *t = by_id[id];
        gpt2_tensor_name_gguf(id, name, sizeof name);
        if (!t) {
            if (id == GPT2_T_LM_HEAD) continue;
            gpt2_errf(err, errlen, "%s: missing tensor %s", path, name);
            goto out;
        }
        int64_t want[2];
        gpt2_tensor_shape(&m->hp, id, want);
        gpt2_tkind kind = gpt2_tensor_kind(id);
        if (t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != 1 || t->ne[3] != 1) {
            char got[64], w[48];
            if (t->ne[2] != 1 || t->ne[3] != 1)
                snprintf(got, sizeof got, "[%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]", t->ne[0],
                         t->ne[1], t->ne[2], t->ne[3]);
            else
                gpt2_shape_str(got, sizeof got, t->n_dims >= 2 ? 2 : 1, t->ne);
            gpt2_shape_str(w, sizeof w, kind == GPT2_K_VEC ? 1 : 2, want);
            gpt2_errf(err, errlen, "%s: tensor %s has shape %s, expected %s", path, name, got, w);
            goto out;
        }
        /* Block formats stay as they are where the model keeps them (matrices of the weight type,
         * wte, lm_head); anything else is converted (a matrix of another type to the weight type). */
        if (gpt2_place_tensor(m, id, t->data, t->dtype, false, path, err, errlen) != 0) goto out;
    }
    if (!by_id[GPT2_T_LM_HEAD]) m->w.lm_head = m->w.wte; /* tied */
    ret = 0;
out:
    free(by_id);
    return ret;
}

static int load_vocab(gpt2_model *m, const gguf_file *g, const char *path, char *err, size_t errlen)
{
    const gguf_kv *model = gguf_find(g, "tokenizer.ggml.model"),
                  *toks = gguf_find(g, "tokenizer.ggml.tokens");
    const char *s;
    size_t sl;
    char nb[80];
    if (model) {
        if (!gguf_kv_str(model, &s, &sl)) {
            gpt2_errf(err, errlen, "%s: tokenizer.ggml.model is not a string", path);
            return -1;
        }
        if (!(sl == 4 && memcmp(s, "gpt2", 4) == 0)) {
            gpt2_errf(err, errlen, "%s: tokenizer model '%s' is not supported (only gpt2's byte-level BPE)",
                      path, gguf_show(nb, sizeof nb, s, sl));
            return -1;
        }
    }
    if (!toks) return 0; /* no vocabulary: tokenizing fails later with a clear message */
    if (toks->type != GGUF_T_ARRAY || toks->arr_type != GGUF_T_STRING) {
        gpt2_errf(err, errlen, "%s: tokenizer.ggml.tokens is not an array of strings", path);
        return -1;
    }
    if (toks->arr_n == 0 || toks->arr_n > (uint64_t)m->hp.n_vocab) {
        gpt2_errf(err, errlen, "%s: tokenizer.ggml.tokens has %" PRIu64 " tokens for a model of %d rows",
                  path, toks->arr_n, m->hp.n_vocab);
        return -1;
    }
    int32_t n = (int32_t)toks->arr_n;
    const gguf_kv *types = gguf_find(g, "tokenizer.ggml.token_type");
    if (types &&
        (types->type != GGUF_T_ARRAY || (types->arr_type != GGUF_T_I32 && types->arr_type != GGUF_T_U32) ||
         types->arr_n != toks->arr_n)) {
        gpt2_errf(err, errlen, "%s: tokenizer.ggml.token_type is not an array of %d i32", path, n);
        return -1;
    }
    gpt2_vocab tmp;
    bool tmp_ok = gpt2_vocab_scratch(&tmp, n) == 0;
    char *bytes = malloc(toks->val_len + 1);
    gpt2_tokmap map = {0};
    int ret = -1;
    if (!tmp_ok || !bytes) {
        gpt2_errf(err, errlen, "%s: out of memory for %d tokens", path, n);
        goto out;
    }
    gguf_reader c = {toks->val, toks->val_len, 0};
    size_t used = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!gguf_get_str(&c, &s, &sl)) { /* checked by gguf_parse; kept for safety */
            gpt2_errf(err, errlen, "%s: tokenizer.ggml.tokens is truncated at token %d", path, i);
            goto out;
        }
        int32_t ty = types ? (int32_t)(uint32_t)gguf_le(types->val + 4 * (size_t)i, 4) : 1;
        long k;
        if (ty == GGUF_TOKTYPE_CONTROL || ty == GGUF_TOKTYPE_USER) { /* special tokens: their text as it is */
            memcpy(bytes + used, s, sl);
            k = (long)sl;
        } else if ((k = gpt2_unmap_token(s, sl, bytes + used)) < 0) {
            gpt2_errf(err, errlen, "%s: token %d '%s' is not in GPT-2's byte-to-unicode spelling", path, i,
                      gguf_show(nb, sizeof nb, s, sl));
            goto out;
        }
        tmp.tok[i] = bytes + used;
        tmp.len[i] = (uint32_t)k;
        used += (size_t)k;
    }
    const gguf_kv *merges = gguf_find(g, "tokenizer.ggml.merges");
    if (merges) {
        if (merges->type != GGUF_T_ARRAY || merges->arr_type != GGUF_T_STRING ||
            merges->arr_n > (uint64_t)INT32_MAX) {
            gpt2_errf(err, errlen, "%s: tokenizer.ggml.merges is not an array of strings", path);
            goto out;
        }
        if (gpt2_tokmap_build(&map, &tmp) != 0) {
            gpt2_errf(err, errlen, "%s: out of memory", path);
            goto out;
        }
        tmp.n_merges = (int32_t)merges->arr_n;
        tmp.merges = malloc(((size_t)tmp.n_merges + 1) * sizeof *tmp.merges);
        char *buf = malloc(merges->val_len + 1);
        if (!tmp.merges || !buf) {
            free(buf);
            gpt2_errf(err, errlen, "%s: out of memory for %d merges", path, tmp.n_merges);
            goto out;
        }
        gguf_reader mc = {merges->val, merges->val_len, 0};
        for (int32_t r = 0; r < tmp.n_merges; r++) {
            const char *sp = NULL;
            if (gguf_get_str(&mc, &s, &sl)) sp = memchr(s, ' ', sl);
            long a = -1, b = -1;
            if (sp) {
                a = gpt2_unmap_token(s, (size_t)(sp - s), buf);
                a = a < 0 ? -1 : gpt2_tokmap_find(&map, buf, (size_t)a);
                size_t rl = sl - (size_t)(sp - s) - 1;
                b = gpt2_unmap_token(sp + 1, rl, buf);
                b = b < 0 ? -1 : gpt2_tokmap_find(&map, buf, (size_t)b);
            }
            if (a < 0 || b < 0) {
                free(buf);
                gpt2_errf(err, errlen, "%s: merge %d '%s' is not two known tokens separated by a space", path,
                          r, sp ? gguf_show(nb, sizeof nb, s, sl) : "");
                goto out;
            }
            tmp.merges[r][0] = (int32_t)a;
            tmp.merges[r][1] = (int32_t)b;
        }
        free(buf);
    }
    const gguf_kv *eos = gguf_find(g, "tokenizer.ggml.eos_token_id");
    if (eos) {
        int64_t e;
        if (!gguf_kv_int(eos, &e) || e < 0 || e >= n) {
            gpt2_errf(err, errlen, "%s: tokenizer.ggml.eos_token_id is not a token id (0..%d)", path, n - 1);
            goto out;
        }
        tmp.eot = (int32_t)e;
    } else {
        for (int32_t i = n - 1; i >= 0 && tmp.eot < 0; i--)
            if (tmp.len[i] == 13 && memcmp(tmp.tok[i], "<|endoftext|>", 13) == 0) tmp.eot = i;
    }
    if (gpt2_vocab_copy(&m->vocab, &tmp) != 0) {
        gpt2_errf(err, errlen, "%s: out of memory copying the vocabulary", path);
        goto out;
    }
    if (!merges) {
        char e2[200] = "";
        if (gpt2_vocab_derive_merges(&m->vocab, e2, sizeof e2) != 0) {
            gpt2_errf(err, errlen, "%s: no tokenizer.ggml.merges, and none can be derived: %s", path, e2);
            goto out;
        }
    }
    ret = 0;
out:
    gpt2_tokmap_free(&map);
    free(tmp.tok);
    free(tmp.len);
    free(tmp.merges);
    free(bytes);
    return ret;
}

int gpt2_load_gguf(gpt2_model *m, const char *path, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->vocab.eot = -1;
    snprintf(m->format, sizeof m->format, "gguf");
    gguf_file g;
    memset(&g, 0, sizeof g);
    if (gpt2_map_file(path, &m->map, &m->map_size, err, errlen) != 0) goto fail;
    if (gguf_parse(&g, m->map, m->map_size, path, err, errlen) != 0) goto fail;
    const gguf_kv *arch = gguf_find(&g, "general.architecture");
    const char *s;
    size_t sl;
    char nb[80];
    if (!arch || !gguf_kv_str(arch, &s, &sl)) {
        gpt2_errf(err, errlen, "%s: %s", path,
                  arch ? "general.architecture is not a string"
                       : "missing metadata key general.architecture");
        goto fail;
    }
    if (!(sl == 4 && memcmp(s, "gpt2", 4) == 0)) {
        gpt2_errf(err, errlen, "%s: architecture '%s' is not gpt2", path, gguf_show(nb, sizeof nb, s, sl));
        goto fail;
    }
    gpt2_hparams *hp = &m->hp;
    if (req_int(&g, "gpt2.context_length", 1, GPT2_MAX_CTX, true, &hp->n_ctx, path, err, errlen) < 0 ||
        req_int(&g, "gpt2.embedding_length", 1, GPT2_MAX_EMBD, true, &hp->n_embd, path, err, errlen) < 0 ||
        req_int(&g, "gpt2.block_count", 1, GPT2_MAX_LAYERS, true, &hp->n_layer, path, err, errlen) < 0 ||
        req_int(&g, "gpt2.attention.head_count", 1, GPT2_MAX_EMBD, true, &hp->n_head, path, err, errlen) < 0)
        goto fail;
    int32_t ff = 0, kvh = 0;
    int r = req_int(&g, "gpt2.feed_forward_length", 1, INT32_MAX, false, &ff, path, err, errlen);
    if (r < 0) goto fail;
    if (r > 0 && ff != 4 * hp->n_embd) {
        gpt2_errf(err, errlen, "%s: gpt2.feed_forward_length %d is not 4 * embedding_length (%d)", path, ff,
                  4 * hp->n_embd);
        goto fail;
    }
    r = req_int(&g, "gpt2.attention.head_count_kv", 1, INT32_MAX, false, &kvh, path, err, errlen);
    if (r < 0) goto fail;
    if (r > 0 && kvh != hp->n_head) {
        gpt2_errf(err, errlen, "%s: gpt2.attention.head_count_kv %d differs from head_count %d", path, kvh,
                  hp->n_head);
        goto fail;
    }
    hp->ln_eps = 1e-5f;
    const gguf_kv *eps = gguf_find(&g, "gpt2.attention.layer_norm_epsilon");
    if (eps) {
        double e;
        if (!gguf_kv_float(eps, &e)) {
            gpt2_errf(err, errlen, "%s: gpt2.attention.layer_norm_epsilon is not a float", path);
            goto fail;
        }
        hp->ln_eps = (float)e;
    }
    hp->gelu = GPT2_GELU_TANH;
    const gguf_tensor *wte = gguf_find_tensor(&g, "token_embd.weight");
    if (!wte) {
        gpt2_errf(err, errlen, "%s: missing tensor token_embd.weight", path);
        goto fail;
    }
    if (wte->ne[1] > GPT2_MAX_VOCAB) {
        gpt2_errf(err, errlen, "%s: token_embd.weight has %" PRId64 " rows (at most %d)", path, wte->ne[1],
                  GPT2_MAX_VOCAB);
        goto fail;
    }
    hp->n_vocab = (int32_t)wte->ne[1];
    if (gpt2_hparams_check(hp, path, err, errlen) != 0) goto fail;
    /* Worst case: f32 weights stay f32 (or bf16 is widened), smaller types are kept or become f16. */
    const gguf_tensor *qkv = gguf_find_tensor(&g, "blk.0.attn_qkv.weight");
    gpt2_dtype est = !qkv || qkv->dtype == GPT2_F32 || qkv->dtype == GPT2_BF16 ? GPT2_F32 : GPT2_F16;
    if (gpt2_mem_check(gpt2_expected_bytes(hp, est, gguf_find_tensor(&g, "output.weight") != NULL), path, err,
                       errlen) != 0)
        goto fail;
    if (gpt2_alloc_layers(m, err, errlen) != 0) goto fail;
    if (load_tensors(m, &g, path, err, errlen) != 0) goto fail;
    if (load_vocab(m, &g, path, err, errlen) != 0) goto fail;
    gguf_free(&g);
    if (gpt2_model_check(m, path, "", err, errlen) != 0) goto fail;
    return 0;
fail:
    gguf_free(&g);
    gpt2_model_free(m);
    return -1;
}
