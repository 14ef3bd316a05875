/* format_gguf.c - GGUF v2/v3: a generic parser (every value and tensor checked against the file's
 * bounds before use), the gpt2 model reader on top of it, and the writer.
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

#define GGUF_MAX_COUNT (1u << 24)  /* kvs or tensors in one file */
#define GGUF_MAX_NEST 4            /* arrays of arrays of ... */
#define GGUF_MAX_NAME 256          /* tensor name bytes */

/* ---------------------------------------------------------------- reading primitives */

typedef struct rd {
    const unsigned char *p;
    size_t n, pos;
} rd;

static uint64_t le(const unsigned char *b, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static bool get_u32(rd *c, uint32_t *v)
{
    if (c->n - c->pos < 4) return false;
    *v = (uint32_t)le(c->p + c->pos, 4);
    c->pos += 4;
    return true;
}

static bool get_u64(rd *c, uint64_t *v)
{
    if (c->n - c->pos < 8) return false;
    *v = le(c->p + c->pos, 8);
    c->pos += 8;
    return true;
}

/* A string: u64 length, bytes. */
static bool get_str(rd *c, const char **s, size_t *len)
{
    size_t at = c->pos;
    uint64_t n;
    if (!get_u64(c, &n)) return false;
    if (n > c->n - c->pos) {
        c->pos = at;
        return false;
    }
    *s = (const char *)c->p + c->pos;
    *len = (size_t)n;
    c->pos += (size_t)n;
    return true;
}

static size_t type_size(uint32_t t)
{
    static const unsigned char sz[GGUF_T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < GGUF_T_COUNT ? sz[t] : 0;
}

static const char *type_name(uint32_t t)
{
    static const char *const n[GGUF_T_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
    return t < GGUF_T_COUNT ? n[t] : "?";
}

/* Printable copy of at most 64 bytes of s for messages. */
static const char *show(char *buf, size_t bn, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < bn; i++) {
        if (i == 64) {
            memcpy(buf + k, "...", 3);
            k += 3;
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        buf[k++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    buf[k] = 0;
    return buf;
}

/* Checks and skips one value of type t. Returns NULL or what is wrong. */
static const char *skip_value(rd *c, uint32_t t, int depth)
{
    size_t sz = type_size(t);
    if (sz) {
        if (c->n - c->pos < sz) return "truncated value";
        if (t == GGUF_T_BOOL && c->p[c->pos] > 1) return "bool value is neither 0 nor 1";
        c->pos += sz;
        return NULL;
    }
    if (t == GGUF_T_STRING) {
        const char *s;
        size_t n;
        if (c->n - c->pos < 8) return "truncated string length";
        if (!get_str(c, &s, &n)) return "string length exceeds the file";
        return NULL;
    }
    if (t != GGUF_T_ARRAY) return "unknown value type";
    if (depth >= GGUF_MAX_NEST) return "arrays nested too deeply";
    uint32_t et;
    uint64_t n;
    if (!get_u32(c, &et) || !get_u64(c, &n)) return "truncated array header";
    if (et >= GGUF_T_COUNT) return "array of an unknown value type";
    size_t es = type_size(et);
    size_t rem = c->n - c->pos;
    if (es) {
        if (n > rem / es) return "array length exceeds the file";
        if (et == GGUF_T_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (c->p[c->pos + i] > 1) return "bool value is neither 0 nor 1";
        c->pos += (size_t)n * es;
        return NULL;
    }
    /* strings take at least 8 bytes each, arrays 12 */
    if (n > rem / 8) return "array length exceeds the file";
    for (uint64_t i = 0; i < n; i++) {
        const char *why = skip_value(c, et, depth + 1);
        if (why) return why;
    }
    return NULL;
}

/* ---------------------------------------------------------------- types */

bool gguf_dtype_from_ggml(uint32_t id, vkg_dtype *out)
{
    int t = vkg_dtype_from_ggml_type(id);
    if (t < 0) return false;
    *out = (vkg_dtype)t;
    return true;
}

uint32_t gguf_ggml_from_dtype(vkg_dtype t)
{
    return (unsigned)t < VKG_DTYPE_COUNT ? vkg_dtype_table[t].ggml_type : UINT32_MAX;
}

/* Names of ggml types vkgpt2 knows of but does not read. */
static const char *ggml_other_name(uint32_t id)
{
    static const char *const n[] = {"q8_1",  "q2_K",  "q3_K",    "q4_K",   "q5_K",  "q6_K", "q8_K",
                                    "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s",
                                    "iq4_xs", "i8",    "i16",     "i32",    "i64",   "f64",  "iq1_m"};
    if (id >= 9 && id <= 29) return n[id - 9];
    if (id == 34) return "tq1_0";
    if (id == 35) return "tq2_0";
    if (id == 39) return "mxfp4";
    return NULL;
}

/* ---------------------------------------------------------------- parser */

typedef struct name_ref {
    const char *s;
    size_t n;
    uint32_t idx;
} name_ref;

static int cmp_name(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->s, y->s, n);
    return r ? r : (x->n > y->n) - (x->n < y->n);
}

/* Finds a duplicate key (tensors: false) or tensor name; returns its index, -1 if none, -2 if out
 * of memory. Sorting keeps hostile files with millions of entries fast. */
static int64_t find_duplicate(const gguf_file *g, bool tensors)
{
    uint64_t n = tensors ? g->n_tensors : g->n_kv;
    if (n < 2) return -1;
    name_ref *r = malloc((size_t)n * sizeof *r);
    if (!r) return -2;
    for (uint64_t i = 0; i < n; i++) {
        r[i].s = tensors ? g->t[i].name : g->kv[i].key;
        r[i].n = tensors ? g->t[i].name_len : g->kv[i].key_len;
        r[i].idx = (uint32_t)i;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_name);
    int64_t dup = -1;
    for (uint64_t i = 1; i < n && dup < 0; i++)
        if (cmp_name(&r[i - 1], &r[i]) == 0) dup = r[i].idx;
    free(r);
    return dup;
}

void gguf_free(gguf_file *g)
{
    free(g->kv);
    free(g->t);
    memset(g, 0, sizeof *g);
}

int gguf_parse(gguf_file *g, const void *data, size_t size, const char *path, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    g->p = data;
    g->size = size;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    rd c = {data, size, 0};
    char nb[80];
    if (size < 4 || memcmp(data, "GGUF", 4) != 0) {
        gpt2_errf(err, errlen, "%s: not a GGUF file (bad magic)", path);
        return -1;
    }
    c.pos = 4;
    if (!get_u32(&c, &g->version)) {
        gpt2_errf(err, errlen, "%s: truncated GGUF header (file has %zu bytes)", path, size);
        return -1;
    }
    if (g->version != 2 && g->version != 3) {
        bool be = g->version == 0x02000000u || g->version == 0x03000000u;
        gpt2_errf(err, errlen, "%s: GGUF version %" PRIu32 " is not supported (only 2 and 3%s)", path,
                  g->version,
                  g->version == 1 ? "; version 1 files predate 64-bit counts"
                  : be            ? "; this looks like a big-endian file"
                                  : "");
        return -1;
    }
    if (!get_u64(&c, &g->n_tensors) || !get_u64(&c, &g->n_kv)) {
        gpt2_errf(err, errlen, "%s: truncated GGUF header (file has %zu bytes)", path, size);
        return -1;
    }
    size_t rem = size - c.pos;
    /* Smallest kv: 8-byte key length, 1-byte key, type, 1-byte value; smallest tensor info: 8-byte
     * name length, 1-byte name, n_dims, one dim, type, offset. */
    if (g->n_kv > GGUF_MAX_COUNT || g->n_kv > rem / 14) {
        gpt2_errf(err, errlen, "%s: metadata count %" PRIu64 " is more than the file can hold", path, g->n_kv);
        return -1;
    }
    if (g->n_tensors > GGUF_MAX_COUNT || g->n_tensors > rem / 33) {
        gpt2_errf(err, errlen, "%s: tensor count %" PRIu64 " is more than the file can hold", path, g->n_tensors);
        return -1;
    }
    g->kv = calloc((size_t)g->n_kv + 1, sizeof *g->kv);
    g->t = calloc((size_t)g->n_tensors + 1, sizeof *g->t);
    if (!g->kv || !g->t) {
        gpt2_errf(err, errlen, "%s: out of memory for %" PRIu64 " keys and %" PRIu64 " tensors", path, g->n_kv,
                  g->n_tensors);
        return -1;
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        size_t at = c.pos;
        if (!get_str(&c, &kv->key, &kv->key_len)) {
            gpt2_errf(err, errlen, "%s: metadata key %" PRIu64 " at offset %zu: %s", path, i, at,
                      c.n - c.pos < 8 ? "truncated" : "string length exceeds the file");
            return -1;
        }
        if (kv->key_len == 0) {
            gpt2_errf(err, errlen, "%s: metadata key %" PRIu64 " at offset %zu is empty", path, i, at);
            return -1;
        }
        show(nb, sizeof nb, kv->key, kv->key_len);
        if (!get_u32(&c, &kv->type)) {
            gpt2_errf(err, errlen, "%s: metadata key '%s': truncated value type", path, nb);
            return -1;
        }
        if (kv->type >= GGUF_T_COUNT) {
            gpt2_errf(err, errlen, "%s: metadata key '%s' has unknown value type %" PRIu32, path, nb, kv->type);
            return -1;
        }
        size_t vstart = c.pos;
        const char *why = skip_value(&c, kv->type, 0);
        if (why) {
            gpt2_errf(err, errlen, "%s: metadata key '%s' (%s): %s", path, nb, type_name(kv->type), why);
            return -1;
        }
        if (kv->type == GGUF_T_STRING) {
            kv->val = c.p + vstart + 8;
            kv->val_len = c.pos - vstart - 8;
        } else if (kv->type == GGUF_T_ARRAY) {
            kv->arr_type = (uint32_t)le(c.p + vstart, 4);
            kv->arr_n = le(c.p + vstart + 4, 8);
            kv->val = c.p + vstart + 12;
            kv->val_len = c.pos - vstart - 12;
        } else {
            kv->val = c.p + vstart;
            kv->val_len = c.pos - vstart;
        }
    }
    int64_t dup = find_duplicate(g, false);
    if (dup == -2) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (dup >= 0) {
        gpt2_errf(err, errlen, "%s: duplicate metadata key '%s'", path,
                  show(nb, sizeof nb, g->kv[dup].key, g->kv[dup].key_len));
        return -1;
    }
    const gguf_kv *al = gguf_find(g, "general.alignment");
    if (al) {
        uint32_t a = al->type == GGUF_T_U32 ? (uint32_t)le(al->val, 4) : 0;
        if (al->type != GGUF_T_U32 || a == 0 || (a & (a - 1)) != 0 || a > (1u << 30)) {
            gpt2_errf(err, errlen, "%s: general.alignment must be a u32 power of two (got %s %" PRIu32 ")", path,
                      type_name(al->type), a);
            return -1;
        }
        g->alignment = a;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->t[i];
        size_t at = c.pos;
        if (!get_str(&c, &t->name, &t->name_len)) {
            gpt2_errf(err, errlen, "%s: tensor info %" PRIu64 " at offset %zu: %s", path, i, at,
                      c.n - c.pos < 8 ? "truncated" : "name length exceeds the file");
            return -1;
        }
        show(nb, sizeof nb, t->name, t->name_len);
        if (t->name_len == 0 || t->name_len > GGUF_MAX_NAME) {
            gpt2_errf(err, errlen, "%s: tensor info %" PRIu64 " at offset %zu has a name of %zu bytes (1..%d)", path,
                      i, at, t->name_len, GGUF_MAX_NAME);
            return -1;
        }
        if (!get_u32(&c, &t->n_dims)) goto trunc;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
            gpt2_errf(err, errlen, "%s: tensor %s has %" PRIu32 " dimensions (1..%d)", path, nb, t->n_dims,
                      GGUF_MAX_DIMS);
            return -1;
        }
        uint64_t elems = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            uint64_t v = 1;
            if ((uint32_t)d < t->n_dims && !get_u64(&c, &v)) goto trunc;
            if (v == 0 || v > (uint64_t)INT64_MAX || elems > (uint64_t)INT64_MAX / v) {
                gpt2_errf(err, errlen, "%s: tensor %s has a bad dimension %d (%" PRIu64 ")", path, nb, d, v);
                return -1;
            }
            t->ne[d] = (int64_t)v;
            elems *= v;
        }
        if (!get_u32(&c, &t->ggml_type) || !get_u64(&c, &t->offset)) goto trunc;
        if (!gguf_dtype_from_ggml(t->ggml_type, &t->dtype)) {
            const char *o = ggml_other_name(t->ggml_type);
            if (o)
                gpt2_errf(err, errlen,
                          "%s: tensor %s has ggml type %s (%" PRIu32 "), not supported (f32, f16, bf16, q4_0, q4_1, "
                          "q5_0, q5_1, q8_0 are)",
                          path, nb, o, t->ggml_type);
            else
                gpt2_errf(err, errlen, "%s: tensor %s has unknown ggml type %" PRIu32, path, nb, t->ggml_type);
            return -1;
        }
        if (vkg_dtype_is_quant(t->dtype) && t->ne[0] % VKG_QBLOCK != 0) {
            gpt2_errf(err, errlen, "%s: tensor %s of type %s has rows of %" PRId64 " elements, not a multiple of %d",
                      path, nb, vkg_dtype_name(t->dtype), t->ne[0], VKG_QBLOCK);
            return -1;
        }
        uint64_t bb = vkg_dtype_block_bytes(t->dtype), units = vkg_dtype_is_quant(t->dtype) ? elems / VKG_QBLOCK : elems;
        if (units > (uint64_t)SIZE_MAX / bb) {
            gpt2_errf(err, errlen, "%s: tensor %s is too large", path, nb);
            return -1;
        }
        t->nbytes = (size_t)(units * bb);
        if (t->offset % g->alignment != 0) {
            gpt2_errf(err, errlen, "%s: tensor %s offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                      path, nb, t->offset, g->alignment);
            return -1;
        }
        continue;
    trunc:
        gpt2_errf(err, errlen, "%s: truncated tensor info for %s at offset %zu", path, nb, at);
        return -1;
    }
    dup = find_duplicate(g, true);
    if (dup == -2) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (dup >= 0) {
        gpt2_errf(err, errlen, "%s: duplicate tensor %s", path, show(nb, sizeof nb, g->t[dup].name, g->t[dup].name_len));
        return -1;
    }
    size_t a = g->alignment;
    g->data_off = c.pos % a ? c.pos + (a - c.pos % a) : c.pos;
    size_t dsize = g->data_off <= size ? size - g->data_off : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->t[i];
        if (t->offset > dsize || t->nbytes > dsize - t->offset) {
            gpt2_errf(err, errlen,
                      "%s: tensor %s data (%zu bytes at data offset %" PRIu64 ") extends past the end of the file "
                      "(%zu bytes of data)",
                      path, show(nb, sizeof nb, t->name, t->name_len), t->nbytes, t->offset, dsize);
            return -1;
        }
        t->data = g->p + g->data_off + t->offset;
    }
    return 0;
}

const gguf_kv *gguf_find(const gguf_file *g, const char *key)
{
    size_t n = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == n && memcmp(g->kv[i].key, key, n) == 0) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    size_t n = strlen(name);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->t[i].name_len == n && memcmp(g->t[i].name, name, n) == 0) return &g->t[i];
    return NULL;
}

bool gguf_kv_int(const gguf_kv *kv, int64_t *out)
{
    const unsigned char *b = kv->val;
    uint64_t u;
    switch (kv->type) {
    case GGUF_T_U8: *out = b[0]; return true;
    case GGUF_T_I8: *out = (int8_t)b[0]; return true;
    case GGUF_T_U16: *out = (int64_t)le(b, 2); return true;
    case GGUF_T_I16: *out = (int16_t)le(b, 2); return true;
    case GGUF_T_U32: *out = (int64_t)le(b, 4); return true;
    case GGUF_T_I32: *out = (int32_t)(uint32_t)le(b, 4); return true;
    case GGUF_T_U64:
        u = le(b, 8);
        if (u > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)u;
        return true;
    case GGUF_T_I64:
        u = le(b, 8);
        memcpy(out, &u, 8);
        return true;
    default: return false;
    }
}

bool gguf_kv_float(const gguf_kv *kv, double *out)
{
    if (kv->type == GGUF_T_F32) {
        uint32_t u = (uint32_t)le(kv->val, 4);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
        return true;
    }
    if (kv->type == GGUF_T_F64) {
        uint64_t u = le(kv->val, 8);
        memcpy(out, &u, 8);
        return true;
    }
    return false;
}

bool gguf_kv_str(const gguf_kv *kv, const char **s, size_t *len)
{
    if (kv->type != GGUF_T_STRING) return false;
    *s = (const char *)kv->val;
    *len = kv->val_len;
    return true;
}

/* ---------------------------------------------------------------- gpt2 names */

static const char *const gguf_globals[GPT2_T_GLOBALS] = {
    "token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight",
};
static const char *const gguf_layer[GPT2_L_COUNT] = {
    "attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight",
    "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",  "ffn_up.weight",  "ffn_up.bias",
    "ffn_down.weight",  "ffn_down.bias",
};

static void gguf_tensor_name(int id, char *buf, size_t n)
{
    if (id < GPT2_T_GLOBALS)
        snprintf(buf, n, "%s", gguf_globals[id]);
    else
        snprintf(buf, n, "blk.%d.%s", (id - GPT2_T_GLOBALS) / GPT2_L_COUNT,
                 gguf_layer[(id - GPT2_T_GLOBALS) % GPT2_L_COUNT]);
}

/* "blk.<N>.<suffix>" or a global name -> id, or -1. */
static int gguf_tensor_id(const char *s, size_t n, int n_layer)
{
    for (int i = 0; i < GPT2_T_GLOBALS; i++)
        if (strlen(gguf_globals[i]) == n && memcmp(s, gguf_globals[i], n) == 0) return i;
    if (n < 6 || memcmp(s, "blk.", 4) != 0) return -1;
    size_t i = 4;
    long l = 0;
    if (s[i] < '0' || s[i] > '9' || (s[i] == '0' && i + 1 < n && s[i + 1] != '.')) return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        l = l * 10 + (s[i] - '0');
        if (l >= n_layer) return -1;
        i++;
    }
    if (i >= n || s[i] != '.') return -1;
    i++;
    for (int k = 0; k < GPT2_L_COUNT; k++)
        if (strlen(gguf_layer[k]) == n - i && memcmp(s + i, gguf_layer[k], n - i) == 0)
            return GPT2_T_GLOBALS + (int)l * GPT2_L_COUNT + k;
    return -1;
}

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
        gpt2_errf(err, errlen, "%s: metadata key %s has type %s, expected an integer", path, key, type_name(kv->type));
        return -1;
    }
    if (v < lo || v > hi) {
        gpt2_errf(err, errlen, "%s: metadata key %s = %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", path,
                  key, v, lo, hi);
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
        int id = gguf_tensor_id(t->name, t->name_len, m->hp.n_layer);
        if (id < 0) {
            gpt2_errf(err, errlen, "%s: unexpected tensor %s for a %d-layer gpt2", path,
                      show(nb, sizeof nb, t->name, t->name_len), m->hp.n_layer);
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
    m->wtype = q->dtype == VKG_BF16 ? VKG_F32 : q->dtype;
    for (int id = 0; id < n_t; id++) {
        const gguf_tensor *t = by_id[id];
        gguf_tensor_name(id, name, sizeof name);
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
                snprintf(got, sizeof got, "[%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]", t->ne[0], t->ne[1],
                         t->ne[2], t->ne[3]);
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

static size_t utf8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int k = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (k == 0 || (size_t)k > n) return 0;
    uint32_t v = c & (0x7fu >> k);
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    *cp = v;
    return (size_t)k;
}

/* GPT-2's byte-to-unicode spelling -> raw bytes; returns the byte count, or -1 if a character
 * stands for no byte. out has room for n bytes. */
static long unmap_token(const char *s, size_t n, char *out)
{
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_dec((const unsigned char *)s + i, n - i, &cp);
        int b = l ? gpt2_unicode_to_byte(cp) : -1;
        if (b < 0) return -1;
        out[k++] = (char)b;
        i += l;
    }
    return (long)k;
}

typedef struct tokmap {
    int32_t *slot; /* id + 1, 0 empty */
    size_t mask;
    const gpt2_vocab *v;
} tokmap;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int32_t tokmap_find(const tokmap *m, const char *s, size_t n)
{
    for (size_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t e = m->slot[i];
        if (!e) return -1;
        if (m->v->len[e - 1] == n && memcmp(m->v->tok[e - 1], s, n) == 0) return e - 1;
    }
}

static int tokmap_init(tokmap *m, const gpt2_vocab *v)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)v->n_tokens) cap *= 2;
    m->slot = calloc(cap, sizeof *m->slot);
    if (!m->slot) return -1;
    m->mask = cap - 1;
    m->v = v;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        if (tokmap_find(m, v->tok[id], v->len[id]) >= 0) continue; /* first id wins */
        size_t i = fnv1a(v->tok[id], v->len[id]) & m->mask;
        while (m->slot[i]) i = (i + 1) & m->mask;
        m->slot[i] = id + 1;
    }
    return 0;
}

#define TOKTYPE_CONTROL 3
#define TOKTYPE_USER 4

static int load_vocab(gpt2_model *m, const gguf_file *g, const char *path, char *err, size_t errlen)
{
    const gguf_kv *model = gguf_find(g, "tokenizer.ggml.model"), *toks = gguf_find(g, "tokenizer.ggml.tokens");
    const char *s;
    size_t sl;
    char nb[80];
    if (model) {
        if (!gguf_kv_str(model, &s, &sl)) {
            gpt2_errf(err, errlen, "%s: tokenizer.ggml.model is not a string", path);
            return -1;
        }
        if (!(sl == 4 && memcmp(s, "gpt2", 4) == 0)) {
            gpt2_errf(err, errlen, "%s: tokenizer model '%s' is not supported (only gpt2's byte-level BPE)", path,
                      show(nb, sizeof nb, s, sl));
            return -1;
        }
    }
    if (!toks) return 0; /* no vocabulary: tokenizing fails later with a clear message */
    if (toks->type != GGUF_T_ARRAY || toks->arr_type != GGUF_T_STRING) {
        gpt2_errf(err, errlen, "%s: tokenizer.ggml.tokens is not an array of strings", path);
        return -1;
    }
    if (toks->arr_n == 0 || toks->arr_n > (uint64_t)m->hp.n_vocab) {
        gpt2_errf(err, errlen, "%s: tokenizer.ggml.tokens has %" PRIu64 " tokens for a model of %d rows", path,
                  toks->arr_n, m->hp.n_vocab);
        return -1;
    }
    int32_t n = (int32_t)toks->arr_n;
    const gguf_kv *types = gguf_find(g, "tokenizer.ggml.token_type");
    if (types && (types->type != GGUF_T_ARRAY || (types->arr_type != GGUF_T_I32 && types->arr_type != GGUF_T_U32) ||
                  types->arr_n != toks->arr_n)) {
        gpt2_errf(err, errlen, "%s: tokenizer.ggml.token_type is not an array of %d i32", path, n);
        return -1;
    }
    gpt2_vocab tmp;
    bool tmp_ok = gpt2_vocab_scratch(&tmp, n) == 0;
    char *bytes = malloc(toks->val_len + 1);
    tokmap map = {0};
    int ret = -1;
    if (!tmp_ok || !bytes) {
        gpt2_errf(err, errlen, "%s: out of memory for %d tokens", path, n);
        goto out;
    }
    rd c = {toks->val, toks->val_len, 0};
    size_t used = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!get_str(&c, &s, &sl)) { /* checked by gguf_parse; kept for safety */
            gpt2_errf(err, errlen, "%s: tokenizer.ggml.tokens is truncated at token %d", path, i);
            goto out;
        }
        int32_t ty = types ? (int32_t)(uint32_t)le(types->val + 4 * (size_t)i, 4) : 1;
        long k;
        if (ty == TOKTYPE_CONTROL || ty == TOKTYPE_USER) { /* special tokens: their text as it is */
            memcpy(bytes + used, s, sl);
            k = (long)sl;
        } else if ((k = unmap_token(s, sl, bytes + used)) < 0) {
            gpt2_errf(err, errlen, "%s: token %d '%s' is not in GPT-2's byte-to-unicode spelling", path, i,
                      show(nb, sizeof nb, s, sl));
            goto out;
        }
        tmp.tok[i] = bytes + used;
        tmp.len[i] = (uint32_t)k;
        used += (size_t)k;
    }
    const gguf_kv *merges = gguf_find(g, "tokenizer.ggml.merges");
    if (merges) {
        if (merges->type != GGUF_T_ARRAY || merges->arr_type != GGUF_T_STRING || merges->arr_n > (uint64_t)INT32_MAX) {
            gpt2_errf(err, errlen, "%s: tokenizer.ggml.merges is not an array of strings", path);
            goto out;
        }
        if (tokmap_init(&map, &tmp) != 0) {
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
        rd mc = {merges->val, merges->val_len, 0};
        for (int32_t r = 0; r < tmp.n_merges; r++) {
            const char *sp = NULL;
            if (get_str(&mc, &s, &sl)) sp = memchr(s, ' ', sl);
            long a = -1, b = -1;
            if (sp) {
                a = unmap_token(s, (size_t)(sp - s), buf);
                a = a < 0 ? -1 : tokmap_find(&map, buf, (size_t)a);
                size_t rl = sl - (size_t)(sp - s) - 1;
                b = unmap_token(sp + 1, rl, buf);
                b = b < 0 ? -1 : tokmap_find(&map, buf, (size_t)b);
            }
            if (a < 0 || b < 0) {
                free(buf);
                gpt2_errf(err, errlen, "%s: merge %d '%s' is not two known tokens separated by a space", path, r,
                          sp ? show(nb, sizeof nb, s, sl) : "");
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
    free(map.slot);
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
        gpt2_errf(err, errlen, "%s: %s", path, arch ? "general.architecture is not a string"
                                                    : "missing metadata key general.architecture");
        goto fail;
    }
    if (!(sl == 4 && memcmp(s, "gpt2", 4) == 0)) {
        gpt2_errf(err, errlen, "%s: architecture '%s' is not gpt2", path, show(nb, sizeof nb, s, sl));
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
        gpt2_errf(err, errlen, "%s: gpt2.attention.head_count_kv %d differs from head_count %d", path, kvh, hp->n_head);
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
    vkg_dtype est = !qkv || qkv->dtype == VKG_F32 || qkv->dtype == VKG_BF16 ? VKG_F32 : VKG_F16;
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
    while (w->pos % a) w_bytes(w, z, (size_t)(a - w->pos % a) < sizeof z ? (size_t)(a - w->pos % a) : sizeof z);
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
    for (int32_t i = 0; i < v->n_tokens; i++) w_u(w, is_special(v, i) ? TOKTYPE_CONTROL : 1, 4);
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
static uint32_t file_type(vkg_dtype t) { return (uint32_t)vkg_dtype_table[t].ftype; }

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
        const vkg_tensor *t = gpt2_tensor_at_c(m, id);
        gguf_tensor_name(id, name, sizeof name);
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
        const vkg_tensor *t = gpt2_tensor_at_c(m, id);
        w_bytes(&w, t->data, t->nbytes);
        pad_to(&w, GGUF_DEFAULT_ALIGNMENT);
    }
    free(buf);
    return gpt2_out_close(&w.o, err, errlen);
}
