/* gguf_write.c - the GGUF v3 writer of a GPT-2: llama.cpp's gpt2 architecture (the names and
 * layout format_gguf.c reads), the vocabulary in GPT-2's byte-to-unicode spelling. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "outfile.h"
#include "vocab.h"

/* ---------------------------------------------------------------- writer */

typedef struct gw {
    gpt2_out o;
    uint64_t pos;
} gw;

static void w_bytes(gw *w, const void *p, size_t n)
{
    gpt2_out_write(&w->o, p, n);
    w->pos += n;
}

static void w_u(gw *w, uint64_t v, int k)
{
    unsigned char b[8];
    for (int i = 0; i < k; i++) b[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, b, (size_t)k);
}

static void w_str(gw *w, const char *s, size_t n)
{
    w_u(w, n, 8);
    w_bytes(w, s, n);
}

static void w_key(gw *w, const char *key, uint32_t type)
{
    w_str(w, key, strlen(key));
    w_u(w, type, 4);
}

static void kv_u32(gw *w, const char *key, uint32_t v)
{
    w_key(w, key, GGUF_T_U32);
    w_u(w, v, 4);
}

static void kv_str(gw *w, const char *key, const char *v)
{
    w_key(w, key, GGUF_T_STRING);
    w_str(w, v, strlen(v));
}

static void pad_to(gw *w, uint64_t a)
{
    static const unsigned char z[64];
    while (w->pos % a)
        w_bytes(w, z, (size_t)(a - w->pos % a) < sizeof z ? (size_t)(a - w->pos % a) : sizeof z);
}

/* bytes of the token in GPT-2's byte-to-unicode spelling (at most 2 per byte) */
static size_t map_token(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = gpt2_byte_to_unicode((uint8_t)s[i]);
        if (cp < 0x80) {
            out[k++] = (char)cp;
        } else {
            out[k++] = (char)(0xc0 | cp >> 6);
            out[k++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return k;
}

static bool is_special(const gpt2_vocab *v, int32_t id)
{
    const char *t = v->tok[id];
    size_t n = v->len[id];
    return id == v->eot || (n >= 4 && t[0] == '<' && t[1] == '|' && t[n - 2] == '|' && t[n - 1] == '>');
}

static int write_vocab(gw *w, const gpt2_vocab *v, char *buf)
{
    kv_str(w, "tokenizer.ggml.model", "gpt2");
    w_key(w, "tokenizer.ggml.tokens", GGUF_T_ARRAY);
    w_u(w, GGUF_T_STRING, 4);
    w_u(w, (uint64_t)v->n_tokens, 8);
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (is_special(v, i))
            w_str(w, v->tok[i], v->len[i]);
        else
            w_str(w, buf, map_token(v->tok[i], v->len[i], buf));
    }
    w_key(w, "tokenizer.ggml.token_type", GGUF_T_ARRAY);
    w_u(w, GGUF_T_I32, 4);
    w_u(w, (uint64_t)v->n_tokens, 8);
    for (int32_t i = 0; i < v->n_tokens; i++) w_u(w, is_special(v, i) ? GGUF_TOKTYPE_CONTROL : 1, 4);
    if (v->n_merges > 0) {
        w_key(w, "tokenizer.ggml.merges", GGUF_T_ARRAY);
        w_u(w, GGUF_T_STRING, 4);
        w_u(w, (uint64_t)v->n_merges, 8);
        for (int32_t r = 0; r < v->n_merges; r++) {
            int32_t a = v->merges[r][0], b = v->merges[r][1];
            size_t k = map_token(v->tok[a], v->len[a], buf);
            buf[k++] = ' ';
            k += map_token(v->tok[b], v->len[b], buf + k);
            w_str(w, buf, k);
        }
    }
    if (v->eot >= 0) {
        kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->eot);
        kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eot);
    }
    return 0;
}

/* llama.cpp's file_type for the model's weight type. */
static uint32_t file_type(gpt2_dtype t) { return (uint32_t)gpt2_dtype_table[t].ftype; }

int gpt2_write_gguf(const gpt2_model *m, const char *path, char *err, size_t errlen)
{
    return gpt2_write_gguf_ex(m, path, 0, err, errlen);
}

int gpt2_write_gguf_ex(const gpt2_model *m, const char *path, unsigned oflags, char *err, size_t errlen)
{
    if (gpt2_model_check(m, path, "cannot write an invalid model: ", err, errlen) != 0) return -1;
    if (m->hp.gelu != GPT2_GELU_TANH) {
        gpt2_errf(err, errlen, "%s: GGUF's gpt2 architecture has no erf GELU (this model uses it)", path);
        return -1;
    }
    const gpt2_vocab *v = &m->vocab;
    size_t maxlen = 2;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->len[i] > maxlen) maxlen = v->len[i];
    char *buf = malloc(4 * maxlen + 8);
    if (!buf) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    bool tied = m->w.lm_head.data == m->w.wte.data;
    int n = gpt2_n_tensors(&m->hp);
    int n_written = n - (tied ? 1 : 0);
    gw w = {.pos = 0};
    int orc = gpt2_out_open(&w.o, path, oflags, err, errlen);
    if (orc != 0) {
        free(buf);
        return orc;
    }
    const gpt2_hparams *hp = &m->hp;
    uint64_t n_kv = 11 + (v->n_tokens > 0 ? 3 + (v->n_merges > 0) + 2 * (v->eot >= 0) : 0);
    w_bytes(&w, "GGUF", 4);
    w_u(&w, 3, 4);
    w_u(&w, (uint64_t)n_written, 8);
    w_u(&w, n_kv, 8);
    kv_str(&w, "general.architecture", "gpt2");
    kv_str(&w, "general.name", "gpt2");
    kv_u32(&w, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
    kv_u32(&w, "general.file_type", file_type(m->wtype));
    kv_u32(&w, "general.quantization_version", 2);
    kv_u32(&w, "gpt2.context_length", (uint32_t)hp->n_ctx);
    kv_u32(&w, "gpt2.embedding_length", (uint32_t)hp->n_embd);
    kv_u32(&w, "gpt2.feed_forward_length", (uint32_t)(4 * hp->n_embd));
    kv_u32(&w, "gpt2.block_count", (uint32_t)hp->n_layer);
    kv_u32(&w, "gpt2.attention.head_count", (uint32_t)hp->n_head);
    w_key(&w, "gpt2.attention.layer_norm_epsilon", GGUF_T_F32);
    uint32_t eb;
    memcpy(&eb, &hp->ln_eps, 4);
    w_u(&w, eb, 4);
    if (v->n_tokens > 0) write_vocab(&w, v, buf);
    uint64_t off = 0;
    char name[96];
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD && tied) continue;
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        gpt2_tensor_name_gguf(id, name, sizeof name);
        w_str(&w, name, strlen(name));
        bool vec = gpt2_tensor_kind(id) == GPT2_K_VEC;
        w_u(&w, vec ? 1 : 2, 4);
        w_u(&w, (uint64_t)t->ne[0], 8);
        if (!vec) w_u(&w, (uint64_t)t->ne[1], 8);
        w_u(&w, gguf_ggml_from_dtype(t->type), 4);
        w_u(&w, off, 8);
        off += (t->nbytes + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
    }
    pad_to(&w, GGUF_DEFAULT_ALIGNMENT);
    gpt2_out_expect(&w.o, w.pos + off);
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD && tied) continue;
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        w_bytes(&w, t->data, t->nbytes);
        pad_to(&w, GGUF_DEFAULT_ALIGNMENT);
    }
    free(buf);
    return gpt2_out_close(&w.o, err, errlen);
}
