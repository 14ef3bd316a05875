/* gguf.c - the GGUF v2/v3 container: a generic parser (every value and tensor checked against
 * the file's bounds before use) and typed access to its metadata. Knows nothing of GPT-2. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format_gguf.h"
#include "model_internal.h"

#define GGUF_MAX_COUNT (1u << 24) /* kvs or tensors in one file */
#define GGUF_MAX_NEST 4           /* arrays of arrays of ... */
#define GGUF_MAX_NAME 256         /* tensor name bytes */

/* ---------------------------------------------------------------- reading primitives */

typedef gguf_reader rd;

uint64_t gguf_le(const unsigned char *b, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static bool get_u32(rd *c, uint32_t *v)
{
    if (c->n - c->pos < 4) return false;
    *v = (uint32_t)gguf_le(c->p + c->pos, 4);
    c->pos += 4;
    return true;
}

static bool get_u64(rd *c, uint64_t *v)
{
    if (c->n - c->pos < 8) return false;
    *v = gguf_le(c->p + c->pos, 8);
    c->pos += 8;
    return true;
}

/* A string: u64 length, bytes. */
bool gguf_get_str(gguf_reader *c, const char **s, size_t *len)
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

const char *gguf_type_name(uint32_t t)
{
    static const char *const n[GGUF_T_COUNT] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
    return t < GGUF_T_COUNT ? n[t] : "?";
}

/* Printable copy of at most 64 bytes of s for messages. */
const char *gguf_show(char *buf, size_t bn, const char *s, size_t n)
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
        if (!gguf_get_str(c, &s, &n)) return "string length exceeds the file";
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

bool gguf_dtype_from_ggml(uint32_t id, gpt2_dtype *out)
{
    int t = gpt2_dtype_from_ggml_type(id);
    if (t < 0) return false;
    *out = (gpt2_dtype)t;
    return true;
}

uint32_t gguf_ggml_from_dtype(gpt2_dtype t)
{
    return (unsigned)t < GPT2_DTYPE_COUNT ? gpt2_dtype_table[t].ggml_type : UINT32_MAX;
}

/* Names of ggml types vkgpt2 knows of but does not read. */
static const char *ggml_other_name(uint32_t id)
{
    static const char *const n[] = {"q8_1",    "q2_K",   "q3_K",    "q4_K",  "q5_K",   "q6_K",  "q8_K",
                                    "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s",
                                    "iq4_xs",  "i8",     "i16",     "i32",   "i64",    "f64",   "iq1_m"};
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
                      : be        ? "; this looks like a big-endian file"
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
        gpt2_errf(err, errlen, "%s: metadata count %" PRIu64 " is more than the file can hold", path,
                  g->n_kv);
        return -1;
    }
    if (g->n_tensors > GGUF_MAX_COUNT || g->n_tensors > rem / 33) {
        gpt2_errf(err, errlen, "%s: tensor count %" PRIu64 " is more than the file can hold", path,
                  g->n_tensors);
        return -1;
    }
    g->kv = calloc((size_t)g->n_kv + 1, sizeof *g->kv);
    g->t = calloc((size_t)g->n_tensors + 1, sizeof *g->t);
    if (!g->kv || !g->t) {
        gpt2_errf(err, errlen, "%s: out of memory for %" PRIu64 " keys and %" PRIu64 " tensors", path,
                  g->n_kv, g->n_tensors);
        return -1;
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        size_t at = c.pos;
        if (!gguf_get_str(&c, &kv->key, &kv->key_len)) {
            gpt2_errf(err, errlen, "%s: metadata key %" PRIu64 " at offset %zu: %s", path, i, at,
                      c.n - c.pos < 8 ? "truncated" : "string length exceeds the file");
            return -1;
        }
        if (kv->key_len == 0) {
            gpt2_errf(err, errlen, "%s: metadata key %" PRIu64 " at offset %zu is empty", path, i, at);
            return -1;
        }
        gguf_show(nb, sizeof nb, kv->key, kv->key_len);
        if (!get_u32(&c, &kv->type)) {
            gpt2_errf(err, errlen, "%s: metadata key '%s': truncated value type", path, nb);
            return -1;
        }
        if (kv->type >= GGUF_T_COUNT) {
            gpt2_errf(err, errlen, "%s: metadata key '%s' has unknown value type %" PRIu32, path, nb,
                      kv->type);
            return -1;
        }
        size_t vstart = c.pos;
        const char *why = skip_value(&c, kv->type, 0);
        if (why) {
            gpt2_errf(err, errlen, "%s: metadata key '%s' (%s): %s", path, nb, gguf_type_name(kv->type), why);
            return -1;
        }
        if (kv->type == GGUF_T_STRING) {
            kv->val = c.p + vstart + 8;
            kv->val_len = c.pos - vstart - 8;
        } else if (kv->type == GGUF_T_ARRAY) {
            kv->arr_type = (uint32_t)gguf_le(c.p + vstart, 4);
            kv->arr_n = gguf_le(c.p + vstart + 4, 8);
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
                  gguf_show(nb, sizeof nb, g->kv[dup].key, g->kv[dup].key_len));
        return -1;
    }
    const gguf_kv *al = gguf_find(g, "general.alignment");
    if (al) {
        uint32_t a = al->type == GGUF_T_U32 ? (uint32_t)gguf_le(al->val, 4) : 0;
        if (al->type != GGUF_T_U32 || a == 0 || (a & (a - 1)) != 0 || a > (1u << 30)) {
            gpt2_errf(err, errlen, "%s: general.alignment must be a u32 power of two (got %s %" PRIu32 ")",
                      path, gguf_type_name(al->type), a);
            return -1;
        }
        g->alignment = a;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->t[i];
        size_t at = c.pos;
        if (!gguf_get_str(&c, &t->name, &t->name_len)) {
            gpt2_errf(err, errlen, "%s: tensor info %" PRIu64 " at offset %zu: %s", path, i, at,
                      c.n - c.pos < 8 ? "truncated" : "name length exceeds the file");
            return -1;
        }
        gguf_show(nb, sizeof nb, t->name, t->name_len);
        if (t->name_len == 0 || t->name_len > GGUF_MAX_NAME) {
            gpt2_errf(err, errlen,
                      "%s: tensor info %" PRIu64 " at offset %zu has a name of %zu bytes (1..%d)", path, i,
                      at, t->name_len, GGUF_MAX_NAME);
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
                          "%s: tensor %s has ggml type %s (%" PRIu32
                          "), not supported (f32, f16, bf16, q4_0, q4_1, "
                          "q5_0, q5_1, q8_0 are)",
                          path, nb, o, t->ggml_type);
            else
                gpt2_errf(err, errlen, "%s: tensor %s has unknown ggml type %" PRIu32, path, nb,
                          t->ggml_type);
            return -1;
        }
        if (gpt2_dtype_is_quant(t->dtype) && t->ne[0] % GPT2_QBLOCK != 0) {
            gpt2_errf(err, errlen,
                      "%s: tensor %s of type %s has rows of %" PRId64 " elements, not a multiple of %d", path,
                      nb, gpt2_dtype_name(t->dtype), t->ne[0], GPT2_QBLOCK);
            return -1;
        }
        uint64_t bb = gpt2_dtype_block_bytes(t->dtype),
                 units = gpt2_dtype_is_quant(t->dtype) ? elems / GPT2_QBLOCK : elems;
        if (units > (uint64_t)SIZE_MAX / bb) {
            gpt2_errf(err, errlen, "%s: tensor %s is too large", path, nb);
            return -1;
        }
        t->nbytes = (size_t)(units * bb);
        if (t->offset % g->alignment != 0) {
            gpt2_errf(err, errlen,
                      "%s: tensor %s offset %" PRIu64 " is not a multiple of the alignment %" PRIu32, path,
                      nb, t->offset, g->alignment);
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
        gpt2_errf(err, errlen, "%s: duplicate tensor %s", path,
                  gguf_show(nb, sizeof nb, g->t[dup].name, g->t[dup].name_len));
        return -1;
    }
    size_t a = g->alignment;
    g->data_off = c.pos % a ? c.pos + (a - c.pos % a) : c.pos;
    size_t dsize = g->data_off <= size ? size - g->data_off : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->t[i];
        if (t->offset > dsize || t->nbytes > dsize - t->offset) {
            gpt2_errf(err, errlen,
                      "%s: tensor %s data (%zu bytes at data offset %" PRIu64
                      ") extends past the end of the file "
                      "(%zu bytes of data)",
                      path, gguf_show(nb, sizeof nb, t->name, t->name_len), t->nbytes, t->offset, dsize);
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
    case GGUF_T_U16: *out = (int64_t)gguf_le(b, 2); return true;
    case GGUF_T_I16: *out = (int16_t)gguf_le(b, 2); return true;
    case GGUF_T_U32: *out = (int64_t)gguf_le(b, 4); return true;
    case GGUF_T_I32: *out = (int32_t)(uint32_t)gguf_le(b, 4); return true;
    case GGUF_T_U64:
        u = gguf_le(b, 8);
        if (u > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)u;
        return true;
    case GGUF_T_I64:
        u = gguf_le(b, 8);
        memcpy(out, &u, 8);
        return true;
    default: return false;
    }
}

bool gguf_kv_float(const gguf_kv *kv, double *out)
{
    if (kv->type == GGUF_T_F32) {
        uint32_t u = (uint32_t)gguf_le(kv->val, 4);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
        return true;
    }
    if (kv->type == GGUF_T_F64) {
        uint64_t u = gguf_le(kv->val, 8);
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
