/* vocab.c - see vocab.h. Reading, writing, deriving and synthesising GPT-2 vocabularies. */
#include "vocab.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "json.h"
#include "outfile.h"
#include "err.h"
#include "file.h"
#include "utf8.h"
#include "hashmap.h"

/* ---------------------------------------------------------------------------------------------
 * Byte <-> code point map. Printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves; the other 68 bytes get U+0100, U+0101, ... in increasing byte order.
 * ------------------------------------------------------------------------------------------- */

static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

uint32_t gpt2_byte_to_unicode(uint8_t b)
{
    if (byte_is_printable(b)) return b;
    uint32_t k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!byte_is_printable(x)) k++;
    return 256 + k;
}

int gpt2_unicode_to_byte(uint32_t cp)
{
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = 0;
    for (unsigned x = 0; x < 256; x++) {
        if (byte_is_printable(x)) continue;
        if (256 + k == cp) return (int)x;
        k++;
    }
    return -1;
}

/* GPT-2's id order for the 256 byte tokens: printable bytes ascending, then the rest ascending. */
static void byte_order(uint8_t order[256])
{
    int n = 0;
    for (unsigned b = 0; b < 256; b++)
        if (byte_is_printable(b)) order[n++] = (uint8_t)b;
    for (unsigned b = 0; b < 256; b++)
        if (!byte_is_printable(b)) order[n++] = (uint8_t)b;
}

/* The largest vocab.json or merges.txt read (GPT-2's are 1 MB and 0.5 MB). */
#define VOCAB_FILE_MAX ((size_t)1 << 30)

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

/* Maps a vocabulary-file string (GPT-2 alphabet) to raw bytes in out (at most n bytes). A string
 * holding any code point outside the alphabet (an added special token) is kept as it is. */
long gpt2_unmap_token(const char *s, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = gpt2_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = k ? gpt2_unicode_to_byte(cp) : -1;
        if (b < 0) return -1;
        out[o++] = (char)b;
        i += k;
    }
    return (long)o;
}

static size_t unmap_string(const char *s, size_t n, char *out)
{
    long k = gpt2_unmap_token(s, n, out);
    if (k >= 0) return (size_t)k;
    memcpy(out, s, n);
    return n;
}

/* Appends the GPT-2-alphabet spelling of bytes to a FILE, JSON-escaped when json is set. */
static void put_mapped(FILE *f, const char *bytes, size_t n, bool json)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = gpt2_byte_to_unicode((uint8_t)bytes[i]);
        if (json && (cp == '"' || cp == '\\')) {
            fputc('\\', f);
            fputc((int)cp, f);
            continue;
        }
        char u[4];
        fwrite(u, 1, gpt2_utf8_encode(cp, u), f);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Vocabulary storage
 * ------------------------------------------------------------------------------------------- */

void gpt2_vocab_free(gpt2_vocab *v)
{
    if (!v) return;
    if (v->tok)
        for (int32_t i = 0; i < v->n_tokens; i++) free(v->tok[i]);
    free(v->tok);
    free(v->len);
    free(v->merges);
    memset(v, 0, sizeof *v);
    v->eot = -1;
}

static int vocab_alloc(gpt2_vocab *v, int32_t n)
{
    memset(v, 0, sizeof *v);
    v->eot = -1;
    v->n_tokens = n;
    v->tok = calloc((size_t)n + 1, sizeof *v->tok);
    v->len = calloc((size_t)n + 1, sizeof *v->len);
    if (!v->tok || !v->len) {
        gpt2_vocab_free(v);
        return -1;
    }
    return 0;
}

static int set_token(gpt2_vocab *v, int32_t id, const char *bytes, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return -1;
    memcpy(p, bytes, n);
    p[n] = 0;
    free(v->tok[id]);
    v->tok[id] = p;
    v->len[id] = (uint32_t)n;
    return 0;
}

int gpt2_vocab_copy(gpt2_vocab *dst, const gpt2_vocab *src)
{
    if (vocab_alloc(dst, src->n_tokens)) return -1;
    for (int32_t i = 0; i < src->n_tokens; i++)
        if (set_token(dst, i, src->tok[i] ? src->tok[i] : "", src->len[i])) {
            gpt2_vocab_free(dst);
            return -1;
        }
    if (src->n_merges > 0) {
        dst->merges = malloc((size_t)src->n_merges * sizeof *dst->merges);
        if (!dst->merges) {
            gpt2_vocab_free(dst);
            return -1;
        }
        memcpy(dst->merges, src->merges, (size_t)src->n_merges * sizeof *dst->merges);
    }
    dst->n_merges = src->n_merges;
    dst->eot = src->eot;
    return 0;
}

static void find_eot(gpt2_vocab *v)
{
    v->eot = -1;
    for (int32_t i = v->n_tokens - 1; i >= 0; i--)
        if (v->len[i] == 13 && memcmp(v->tok[i], "<|endoftext|>", 13) == 0) {
            v->eot = i;
            return;
        }
}

/* ---------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------- */

static int load_json_vocab(gpt2_vocab *v, const char *path, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    v->eot = -1;
    size_t len;
    char *text;
    if (gpt2_read_file(path, VOCAB_FILE_MAX, &text, &len, err, errlen)) return -1;
    char jerr[200];
    json_doc *d = json_parse(text, len, jerr, sizeof jerr);
    free(text);
    if (!d) {
        gpt2_errf(err, errlen, "%s: %s", path, jerr);
        return -1;
    }
    const json_value *root = json_root(d);
    int rc = -1;
    char *buf = NULL;
    if (!root || root->type != JSON_OBJECT) {
        gpt2_errf(err, errlen, "%s: expected a JSON object mapping tokens to ids", path);
        goto out;
    }
    if (root->len == 0 || root->len > INT32_MAX) {
        gpt2_errf(err, errlen, "%s: %s vocabulary", path, root->len ? "oversized" : "empty");
        goto out;
    }
    int32_t n = (int32_t)root->len;
    if (vocab_alloc(v, n)) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < root->len; i++) {
        int64_t id;
        if (!json_as_int(root->items[i], &id) || id < 0 || id >= n) {
            gpt2_errf(err, errlen, "%s: token \"%s\": id must be an integer in [0, %d)", path, root->keys[i],
                      (int)n);
            goto out;
        }
        if (v->tok[id]) {
            gpt2_errf(err, errlen, "%s: id %lld is given twice", path, (long long)id);
            goto out;
        }
        size_t kl = root->key_lens[i];
        char *nb = realloc(buf, kl + 1);
        if (!nb) {
            gpt2_errf(err, errlen, "%s: out of memory", path);
            goto out;
        }
        buf = nb;
        size_t bl = unmap_string(root->keys[i], kl, buf);
        if (set_token(v, (int32_t)id, buf, bl)) {
            gpt2_errf(err, errlen, "%s: out of memory", path);
            goto out;
        }
    }
    /* n distinct ids in [0, n): every id is present. */
    gpt2_tokmap m;
    if (gpt2_tokmap_init(&m, v)) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t o = gpt2_tokmap_add(&m, i);
        if (o >= 0) {
            gpt2_errf(err, errlen, "%s: ids %d and %d spell the same bytes", path, (int)o, (int)i);
            gpt2_tokmap_free(&m);
            goto out;
        }
    }
    gpt2_tokmap_free(&m);
    find_eot(v);
    rc = 0;
out:
    free(buf);
    json_free(d);
    if (rc) gpt2_vocab_free(v);
    return rc;
}

static int load_merges(gpt2_vocab *v, const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text;
    if (gpt2_read_file(path, VOCAB_FILE_MAX, &text, &len, err, errlen)) return -1;
    int rc = -1;
    gpt2_tokmap m = {0};
    char *a = malloc(len + 1), *b = malloc(len + 1), *c = malloc(2 * len + 2);
    int32_t cap = 1024, cnt = 0;
    int32_t(*mg)[2] = malloc((size_t)cap * sizeof *mg);
    if (!a || !b || !c || !mg || gpt2_tokmap_build(&m, v)) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    size_t pos = 0;
    for (long line = 1; pos < len; line++) {
        size_t e = pos;
        while (e < len && text[e] != '\n') e++;
        size_t s = pos, end = e;
        pos = e + 1;
        if (end > s && text[end - 1] == '\r') end--;
        if (end == s) continue;
        if (line == 1 && end - s >= 8 && memcmp(text + s, "#version", 8) == 0) continue;
        size_t sp = s;
        while (sp < end && text[sp] != ' ') sp++;
        if (sp == s || sp + 1 >= end || memchr(text + sp + 1, ' ', end - sp - 1)) {
            gpt2_errf(err, errlen, "%s:%ld: expected two tokens separated by one space", path, line);
            goto out;
        }
        size_t la = unmap_string(text + s, sp - s, a);
        size_t lb = unmap_string(text + sp + 1, end - sp - 1, b);
        memcpy(c, a, la);
        memcpy(c + la, b, lb);
        int32_t ia = gpt2_tokmap_find(&m, a, la), ib = gpt2_tokmap_find(&m, b, lb),
                ic = gpt2_tokmap_find(&m, c, la + lb);
        if (ia < 0 || ib < 0 || ic < 0) {
            const char *what = ia < 0 ? "left part" : ib < 0 ? "right part" : "merged token";
            gpt2_errf(err, errlen, "%s:%ld: merge \"%.*s %.*s\": %s is not in the vocabulary", path, line,
                      (int)(sp - s), text + s, (int)(end - sp - 1), text + sp + 1, what);
            goto out;
        }
        if (cnt == cap) {
            void *nm = realloc(mg, (size_t)cap * 2 * sizeof *mg);
            if (!nm) {
                gpt2_errf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            mg = nm;
            cap *= 2;
        }
        mg[cnt][0] = ia;
        mg[cnt][1] = ib;
        cnt++;
    }
    free(v->merges);
    v->merges = mg;
    mg = NULL;
    v->n_merges = cnt;
    rc = 0;
out:
    gpt2_tokmap_free(&m);
    free(mg);
    free(a);
    free(b);
    free(c);
    free(text);
    return rc;
}

int gpt2_vocab_load_files(gpt2_vocab *v, const char *vocab_json, const char *merges_txt, char *err,
                          size_t errlen)
{
    if (load_json_vocab(v, vocab_json, err, errlen)) return -1;
    if (merges_txt && load_merges(v, merges_txt, err, errlen)) {
        gpt2_vocab_free(v);
        return -1;
    }
    return 0;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int gpt2_vocab_load_dir(gpt2_vocab *v, const char *dir, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    v->eot = -1;
    static const char *pairs[2][2] = {{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}};
    size_t dl = strlen(dir);
    char *pj = malloc(dl + 20), *pm = malloc(dl + 20);
    if (!pj || !pm) {
        free(pj);
        free(pm);
        gpt2_errf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    int rc = 1;
    for (int i = 0; i < 2 && rc > 0; i++) {
        sprintf(pj, "%s/%s", dir, pairs[i][0]);
        sprintf(pm, "%s/%s", dir, pairs[i][1]);
        if (file_exists(pj) && file_exists(pm)) rc = gpt2_vocab_load_files(v, pj, pm, err, errlen);
    }
    free(pj);
    free(pm);
    if (rc > 0) {
        gpt2_errf(err, errlen, "%s: found neither vocab.json + merges.txt nor encoder.json + vocab.bpe", dir);
        return -1;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------------- */

int gpt2_vocab_write_dir(const gpt2_vocab *v, const char *dir, char *err, size_t errlen)
{
    gpt2_vocab tmp = {0};
    const gpt2_vocab *src = v;
    if (v->n_merges == 0 && v->n_tokens > 256) {
        if (gpt2_vocab_copy(&tmp, v)) {
            gpt2_errf(err, errlen, "%s: out of memory", dir);
            return -1;
        }
        if (gpt2_vocab_derive_merges(&tmp, err, errlen)) {
            gpt2_vocab_free(&tmp);
            return -1;
        }
        src = &tmp;
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        gpt2_errf(err, errlen, "%s: %s", dir, strerror(errno));
        gpt2_vocab_free(&tmp);
        return -1;
    }
    size_t dl = strlen(dir);
    char *path = malloc(dl + 20);
    int rc = -1;
    gpt2_out o;
    if (!path) {
        gpt2_errf(err, errlen, "%s: out of memory", dir);
        goto out;
    }
    sprintf(path, "%s/vocab.json", dir);
    if (gpt2_out_open(&o, path, 0, err, errlen) != 0) goto out;
    fputc('{', o.f);
    for (int32_t i = 0; i < src->n_tokens; i++) {
        fputs(i ? ", \"" : "\"", o.f);
        put_mapped(o.f, src->tok[i], src->len[i], true);
        fprintf(o.f, "\": %d", (int)i);
    }
    fputs("}\n", o.f);
    if (gpt2_out_close(&o, err, errlen) != 0) goto out;
    sprintf(path, "%s/merges.txt", dir);
    if (gpt2_out_open(&o, path, 0, err, errlen) != 0) goto out;
    fputs("#version: 0.2\n", o.f);
    for (int32_t r = 0; r < src->n_merges; r++) {
        int32_t a = src->merges[r][0], b = src->merges[r][1];
        put_mapped(o.f, src->tok[a], src->len[a], false);
        fputc(' ', o.f);
        put_mapped(o.f, src->tok[b], src->len[b], false);
        fputc('\n', o.f);
    }
    if (gpt2_out_close(&o, err, errlen) != 0) goto out;
    rc = 0;
out:
    free(path);
    gpt2_vocab_free(&tmp);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Deriving merges from ids
 * ------------------------------------------------------------------------------------------- */

/* Longest token derive_merges treats as a merge. */
#define GPT2_MAX_MERGE_TOKEN 1024

int gpt2_vocab_derive_merges(gpt2_vocab *v, char *err, size_t errlen)
{
    if (v->n_tokens < 256) {
        gpt2_errf(err, errlen, "derive merges: %d tokens, need at least the 256 byte tokens",
                  (int)v->n_tokens);
        return -1;
    }
    int32_t byte_id[256];
    for (int i = 0; i < 256; i++) byte_id[i] = -1;
    for (int32_t i = 0; i < 256; i++) {
        if (v->len[i] != 1 || byte_id[(uint8_t)v->tok[i][0]] >= 0) {
            gpt2_errf(err, errlen,
                      "derive merges: ids 0..255 must be the 256 distinct single bytes (id %d is not)",
                      (int)i);
            return -1;
        }
        byte_id[(uint8_t)v->tok[i][0]] = i;
    }
    int32_t n_m = v->n_tokens - 256 - (v->eot >= 256 ? 1 : 0);
    gpt2_pairmap pm = {0};
    int32_t(*mg)[2] = malloc(((size_t)n_m + 1) * sizeof *mg);
    int32_t *res = malloc(((size_t)n_m + 1) * sizeof *res); /* rank -> merged id */
    size_t maxlen = 1;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->len[i] > maxlen) maxlen = v->len[i];
    int32_t *sym = malloc(maxlen * sizeof *sym);
    gpt2_tokmap sm = {0};
    int rc = -1;
    if (gpt2_pairmap_init(&pm, (size_t)(n_m > 0 ? n_m : 0)) || !mg || !res || !sym ||
        gpt2_tokmap_build(&sm, v)) {
        gpt2_errf(err, errlen, "derive merges: out of memory");
        goto out;
    }
    int32_t r = 0;
    for (int32_t t = 256; t < v->n_tokens; t++) {
        if (t == v->eot) continue;
        const char *s = v->tok[t];
        size_t n = v->len[t];
        /* Not a merge: too short, too long (GPT-2's longest token has 128 bytes; BPE over a longer
         * one would cost its length squared: a hostile file of one 50 KB token took minutes), a
         * second spelling of an earlier token, or a special token. */
        if (n < 2 || n > GPT2_MAX_MERGE_TOKEN || gpt2_tokmap_find(&sm, s, n) != t ||
            (n == 13 && memcmp(s, "<|endoftext|>", 13) == 0))
            continue;
        /* Plain BPE over the token's bytes with the merges learnt so far. */
        size_t k = n;
        for (size_t i = 0; i < n; i++) sym[i] = byte_id[(uint8_t)s[i]];
        while (k > 1) {
            int32_t best = -1;
            size_t at = 0;
            for (size_t i = 0; i + 1 < k; i++) {
                int32_t q = gpt2_pairmap_find(&pm, sym[i], sym[i + 1]);
                if (q >= 0 && (best < 0 || q < best)) {
                    best = q;
                    at = i;
                }
            }
            if (best < 0) break;
            sym[at] = res[best];
            memmove(sym + at + 1, sym + at + 2, (k - at - 2) * sizeof *sym);
            k--;
        }
        int32_t a = -1, b = -1;
        if (k == 2) {
            a = sym[0];
            b = sym[1];
        } else {
            /* BPE does not end in two pieces: take the split whose two parts are the newest
             * (highest-id) tokens before t, preferring the longer left part on ties. */
            int32_t best = -1;
            for (size_t cut = n - 1; cut >= 1; cut--) {
                int32_t x = gpt2_tokmap_find(&sm, s, cut), y = gpt2_tokmap_find(&sm, s + cut, n - cut);
                if (x < 0 || y < 0 || x >= t || y >= t || x == v->eot || y == v->eot) continue;
                int32_t score = x > y ? x : y;
                if (score > best) {
                    best = score;
                    a = x;
                    b = y;
                }
            }
            if (a < 0) continue; /* no two earlier tokens make it: BPE can never produce it */
        }
        mg[r][0] = a;
        mg[r][1] = b;
        res[r] = t;
        gpt2_pairmap_put_first(&pm, a, b, r);
        r++;
    }
    free(v->merges);
    v->merges = mg;
    mg = NULL;
    v->n_merges = r;
    rc = 0;
out:
    gpt2_tokmap_free(&sm);
    gpt2_pairmap_free(&pm);
    free(mg);
    free(res);
    free(sym);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * A synthetic byte-level vocabulary
 * ------------------------------------------------------------------------------------------- */

static const char sample_text[] =
    "The old lighthouse stood at the edge of the harbour, and every evening the keeper climbed the "
    "narrow stairs to light the lamp. Ships that passed in the night could see the beam turning "
    "slowly over the water, and the sailors knew that the rocks were near. In the morning the keeper "
    "wrote in his book: the weather, the wind, the number of ships, and anything else that seemed "
    "worth remembering. Some days there was little to write, only that the sea was calm and the sky "
    "was grey. On other days there were storms, and he wrote about the waves that broke against the "
    "wall and the rain that ran down the windows. He had kept the light for thirty years, and his "
    "father had kept it before him. When people from the town asked whether he was lonely, he said "
    "that he had the birds, the boats and the books, and that was enough for any man. The children "
    "of the town liked to visit him in the summer. They would sit on the steps and listen to his "
    "stories about the great storm of the winter when the harbour froze, about the ship that came "
    "in with no one on board, and about the whale that followed the fishing boats for three days. "
    "Nobody knew how many of the stories were true, but everyone agreed that they were the best "
    "stories in the country. In the end the lamp was replaced by an electric light that turned "
    "itself on and off, and the keeper moved into a small house near the church. He still walked "
    "down to the harbour every morning to look at the sea, to count the ships, and to think about "
    "the years when the light had been his to keep. It is said that on clear nights, if you stand "
    "where the wall meets the water, you can still hear him humming the old songs of the coast.";

typedef struct word {
    int32_t *sym;
    int n;
    int count;
} word;
typedef struct pair_count {
    int32_t a, b;
    int count;
} pair_count;

static int cmp_pairc(const void *x, const void *y)
{
    const pair_count *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    if (p->b != q->b) return p->b < q->b ? -1 : 1;
    return 0;
}

int gpt2_vocab_make_bytes(gpt2_vocab *v, int n_merges)
{
    memset(v, 0, sizeof *v);
    v->eot = -1;
    if (n_merges < 0) return -1;
    uint8_t order[256];
    byte_order(order);
    int32_t byte_id[256];
    for (int i = 0; i < 256; i++) byte_id[order[i]] = i;

    /* Split the sample like GPT-2's pre-tokenizer would for plain ASCII: an optional space, then a
     * run of letters, or of digits, or of other non-space characters. Identical words count up. */
    const char *s = sample_text;
    size_t len = sizeof sample_text - 1;
    word *w = calloc(len, sizeof *w);
    pair_count *pairc = NULL;
    int nw = 0, rc = -1;
    int32_t *tok_l = malloc(((size_t)n_merges + 1) * sizeof *tok_l);
    int32_t *tok_r = malloc(((size_t)n_merges + 1) * sizeof *tok_r);
    if (!w || !tok_l || !tok_r) goto out;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        if (s[j] == ' ' && j + 1 < len && s[j + 1] != ' ') j++;
        int cls = (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ? 1
            : (s[j] >= '0' && s[j] <= '9')                                     ? 2
            : s[j] == ' '                                                      ? 3
                                                                               : 0;
        j++;
        while (j < len) {
            char c = s[j];
            int k = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ? 1
                : (c >= '0' && c <= '9')                             ? 2
                : c == ' '                                           ? 3
                                                                     : 0;
            if (k != cls || cls == 3) break;
            j++;
        }
        int found = -1;
        for (int q = 0; q < nw && found < 0; q++)
            if ((size_t)w[q].n == j - i) {
                int same = 1;
                for (int z = 0; z < w[q].n && same; z++) same = w[q].sym[z] == byte_id[(uint8_t)s[i + z]];
                if (same) found = q;
            }
        if (found >= 0)
            w[found].count++;
        else {
            w[nw].sym = malloc((j - i) * sizeof(int32_t));
            if (!w[nw].sym) goto out;
            for (size_t z = i; z < j; z++) w[nw].sym[z - i] = byte_id[(uint8_t)s[z]];
            w[nw].n = (int)(j - i);
            w[nw].count = 1;
            nw++;
        }
        i = j;
    }

    /* Greedy BPE training: the most frequent adjacent pair wins, ties to the smallest ids. */
    size_t n_pos = 0;
    for (int q = 0; q < nw; q++) n_pos += (size_t)w[q].n;
    pairc = malloc((n_pos + 1) * sizeof *pairc);
    if (!pairc) goto out;
    int32_t nt = 256;
    int done = 0;
    while (done < n_merges) {
        size_t np = 0;
        for (int q = 0; q < nw; q++)
            for (int z = 0; z + 1 < w[q].n; z++) {
                pairc[np].a = w[q].sym[z];
                pairc[np].b = w[q].sym[z + 1];
                pairc[np].count = w[q].count;
                np++;
            }
        qsort(pairc, np, sizeof *pairc, cmp_pairc);
        int32_t ba = -1, bb = -1;
        int bc = 0;
        for (size_t i = 0; i < np;) {
            size_t j = i;
            int c = 0;
            while (j < np && pairc[j].a == pairc[i].a && pairc[j].b == pairc[i].b) c += pairc[j++].count;
            if (c > bc) {
                bc = c;
                ba = pairc[i].a;
                bb = pairc[i].b;
            } /* sorted: ties keep the smallest */
            i = j;
        }
        if (bc == 0) goto out; /* the sample is exhausted: n_merges is too large */
        for (int q = 0; q < nw; q++) {
            int o = 0;
            for (int z = 0; z < w[q].n; z++) {
                if (z + 1 < w[q].n && w[q].sym[z] == ba && w[q].sym[z + 1] == bb) {
                    w[q].sym[o++] = nt;
                    z++;
                } else {
                    w[q].sym[o++] = w[q].sym[z];
                }
            }
            w[q].n = o;
        }
        tok_l[done] = ba;
        tok_r[done] = bb;
        nt++;
        done++;
    }

    if (vocab_alloc(v, 256 + n_merges + 1)) goto out;
    for (int i = 0; i < 256; i++) {
        char c = (char)order[i];
        if (set_token(v, i, &c, 1)) goto fail;
    }
    if (n_merges > 0) {
        v->merges = malloc((size_t)n_merges * sizeof *v->merges);
        if (!v->merges) goto fail;
    }
    for (int r = 0; r < n_merges; r++) {
        int32_t a = tok_l[r], b = tok_r[r];
        size_t la = v->len[a], lb = v->len[b];
        char *p = malloc(la + lb + 1);
        if (!p) goto fail;
        memcpy(p, v->tok[a], la);
        memcpy(p + la, v->tok[b], lb);
        p[la + lb] = 0;
        v->tok[256 + r] = p;
        v->len[256 + r] = (uint32_t)(la + lb);
        v->merges[r][0] = a;
        v->merges[r][1] = b;
    }
    v->n_merges = n_merges;
    if (set_token(v, 256 + n_merges, "<|endoftext|>", 13)) goto fail;
    v->eot = 256 + n_merges;
    rc = 0;
    goto out;
fail:
    gpt2_vocab_free(v);
out:
    if (w)
        for (int q = 0; q < nw; q++) free(w[q].sym);
    free(w);
    free(pairc);
    free(tok_l);
    free(tok_r);
    return rc;
}
