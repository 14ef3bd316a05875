/* json.c - see json.h. Recursive descent over a byte buffer, values in an arena. */
#include "json.h"
#include "utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

/* ---- arena: blocks chained, each allocation 16-byte aligned ---- */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct json_doc {
    arena_block *blocks; /* newest first */
    json_value *root;    /* the document's value */
};

typedef struct parser {
    const char *s; /* text */
    size_t n, pos; /* length, cursor */
    json_doc *doc; /* arena owner */
    char *err;     /* message out */
    size_t errlen;
    bool failed; /* first error wins */
} parser;

static void *arena_alloc(json_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = d->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = d->blocks;
        b->used = 0;
        b->cap = cap;
        d->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void fail(parser *p, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = true;
    if (!p->err || !p->errlen) return;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s at byte %zu", msg, p->pos);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static json_value *new_value(parser *p, json_type t)
{
    json_value *v = arena_alloc(p->doc, sizeof *v);
    if (!v) {
        fail(p, "out of memory");
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

static int hex4(parser *p, uint32_t *out)
{
    if (p->n - p->pos < 4) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

/* Parses a string at p->pos (which holds '"'); the decoded bytes go to the arena. */
static char *parse_string(parser *p, size_t *len_out)
{
    p->pos++; /* opening quote */
    size_t start = p->pos, end = start;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n) {
        fail(p, "unterminated string");
        return NULL;
    }
    /* Decoded text is never longer than the escaped text. */
    char *out = arena_alloc(p->doc, end - start + 1);
    if (!out) {
        fail(p, "out of memory");
        return NULL;
    }
    size_t o = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            fail(p, "control character in string");
            return NULL;
        }
        if (c != '\\') {
            out[o++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp)) {
                fail(p, "bad \\u escape");
                return NULL;
            }
            if (cp >= 0xd800 && cp < 0xdc00) { /* high surrogate: a low one must follow */
                uint32_t lo;
                if (p->pos + 1 < end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                    p->pos += 2;
                    if (hex4(p, &lo) || lo < 0xdc00 || lo >= 0xe000) {
                        fail(p, "bad surrogate pair");
                        return NULL;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else {
                    fail(p, "lone surrogate");
                    return NULL;
                }
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                fail(p, "lone surrogate");
                return NULL;
            }
            o += gpt2_utf8_encode(cp, out + o);
            break;
        }
        default: fail(p, "bad escape"); return NULL;
        }
    }
    p->pos = end + 1;
    out[o] = 0;
    *len_out = o;
    return out;
}

static json_value *parse_value(parser *p, int depth);

/* Collects elements into a growing heap array, then moves them to the arena. */
static json_value *parse_container(parser *p, int depth, bool object)
{
    json_value *v = new_value(p, object ? JSON_OBJECT : JSON_ARRAY);
    if (!v) return NULL;
    p->pos++;
    size_t cap = 0, n = 0;
    json_value **items = NULL;
    char **keys = NULL;
    size_t *klens = NULL;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == (object ? '}' : ']')) {
        p->pos++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        size_t klen = 0;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->n || p->s[p->pos] != '"') {
                fail(p, "expected a key");
                break;
            }
            if (!(key = parse_string(p, &klen))) break;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') {
                fail(p, "expected ':'");
                break;
            }
            p->pos++;
        }
        json_value *item = parse_value(p, depth + 1);
        if (!item) break;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            json_value **ni = realloc(items, cap * sizeof *ni);
            char **nk = object ? realloc(keys, cap * sizeof *nk) : NULL;
            size_t *nl = object ? realloc(klens, cap * sizeof *nl) : NULL;
            if (ni) items = ni;
            if (nk) keys = nk;
            if (nl) klens = nl;
            if (!ni || (object && (!nk || !nl))) {
                fail(p, "out of memory");
                break;
            }
        }
        items[n] = item;
        if (object) {
            keys[n] = key;
            klens[n] = klen;
        }
        n++;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == (object ? '}' : ']')) {
            p->pos++;
            break;
        }
        fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    if (!p->failed) {
        v->len = n;
        v->items = arena_alloc(p->doc, n * sizeof *items);
        if (object) {
            v->keys = arena_alloc(p->doc, n * sizeof *keys);
            v->key_lens = arena_alloc(p->doc, n * sizeof *klens);
        }
        if (!v->items || (object && (!v->keys || !v->key_lens))) {
            fail(p, "out of memory");
        } else {
            memcpy(v->items, items, n * sizeof *items);
            if (object) {
                memcpy(v->keys, keys, n * sizeof *keys);
                memcpy(v->key_lens, klens, n * sizeof *klens);
            }
        }
    }
    free(items);
    free(keys);
    free(klens);
    return p->failed ? NULL : v;
}

static json_value *parse_number(parser *p)
{
    size_t start = p->pos;
    bool integral = true;
    if (p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') {
        fail(p, "bad number");
        return NULL;
    }
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c >= '0' && c <= '9') {
            p->pos++;
            continue;
        }
        if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
            integral = false;
            p->pos++;
            continue;
        }
        break;
    }
    char buf[64];
    size_t len = p->pos - start;
    if (len >= sizeof buf) {
        fail(p, "number too long");
        return NULL;
    }
    memcpy(buf, p->s + start, len);
    buf[len] = 0;
    char *end;
    json_value *v = new_value(p, JSON_NUMBER);
    if (!v) return NULL;
    v->num = strtod(buf, &end);
    if (*end) {
        fail(p, "bad number");
        return NULL;
    }
    if (integral) {
        errno = 0;
        long long i = strtoll(buf, &end, 10);
        if (!errno && !*end) {
            v->is_int = true;
            v->i = i;
        }
    }
    return v;
}

static json_value *parse_value(parser *p, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        fail(p, "nesting deeper than %d", JSON_MAX_DEPTH);
        return NULL;
    }
    skip_ws(p);
    if (p->pos >= p->n) {
        fail(p, "unexpected end of input");
        return NULL;
    }
    char c = p->s[p->pos];
    if (c == '{' || c == '[') return parse_container(p, depth, c == '{');
    if (c == '"') {
        json_value *v = new_value(p, JSON_STRING);
        if (!v) return NULL;
        v->str = parse_string(p, &v->len);
        return v->str ? v : NULL;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
    static const struct {
        const char *word;
        json_type t;
        bool b;
    } lit[] = {{"true", JSON_BOOL, true}, {"false", JSON_BOOL, false}, {"null", JSON_NULL, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(lit[i].word);
        if (p->n - p->pos >= l && !memcmp(p->s + p->pos, lit[i].word, l)) {
            p->pos += l;
            json_value *v = new_value(p, lit[i].t);
            if (v) v->b = lit[i].b;
            return v;
        }
    }
    fail(p, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
    return NULL;
}

json_doc *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_doc *d = calloc(1, sizeof *d);
    if (!d) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    parser p = {.s = text, .n = len, .doc = d, .err = err, .errlen = errlen};
    d->root = parse_value(&p, 0);
    if (!p.failed) {
        skip_ws(&p);
        if (p.pos != p.n) fail(&p, "trailing characters");
    }
    if (p.failed) {
        json_free(d);
        return NULL;
    }
    return d;
}

void json_free(json_doc *d)
{
    if (!d) return;
    for (arena_block *b = d->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(d);
}

const json_value *json_root(const json_doc *d) { return d ? d->root : NULL; }

const json_value *json_get(const json_value *v, const char *key)
{
    if (!v || v->type != JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < v->len; i++)
        if (v->key_lens[i] == kl && !memcmp(v->keys[i], key, kl)) return v->items[i];
    return NULL;
}

bool json_as_int(const json_value *v, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER || !v->is_int) return false;
    *out = v->i;
    return true;
}

bool json_as_num(const json_value *v, double *out)
{
    if (!v || v->type != JSON_NUMBER) return false;
    *out = v->num;
    return true;
}

void json_write_string(FILE *f, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
            i++;
        } else if (c < 0x20) {
            if (c == '\n')
                fputs("\\n", f);
            else if (c == '\t')
                fputs("\\t", f);
            else if (c == '\r')
                fputs("\\r", f);
            else
                fprintf(f, "\\u%04x", c);
            i++;
        } else {
            uint32_t cp;
            size_t l = gpt2_utf8_decode(u + i, len - i, &cp);
            if (l)
                fwrite(u + i, 1, l, f);
            else
                fputs("\\ufffd", f);
            i += l ? l : 1;
        }
    }
    fputc('"', f);
}
