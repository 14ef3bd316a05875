/* formats_util.h - helpers shared by test_formats.c and test_model_errors.c: temp dirs, file
 * surgery, a hand-written safetensors writer, model comparison. */
#ifndef VKG_FORMATS_UTIL_H
#define VKG_FORMATS_UTIL_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/model.h"
#include "core/model_internal.h"
#include "core/synth.h"
#include "core/vocab.h"

static char tu_dir[256];

__attribute__((unused)) static void tu_mkdtemp(void)
{
    snprintf(tu_dir, sizeof tu_dir, "/tmp/vkg_fmt_XXXXXX");
    cr_assert(mkdtemp(tu_dir) != NULL, "mkdtemp");
}

__attribute__((unused)) static int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

__attribute__((unused)) static void tu_rmtree(void)
{
    if (tu_dir[0]) nftw(tu_dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    tu_dir[0] = 0;
}

/* tu_path("x") -> "<tmpdir>/x" (static ring of buffers) */
static const char *tu_path(const char *name)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 512, "%s/%s", tu_dir, name);
    return b;
}

static unsigned char *tu_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    cr_assert(fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

__attribute__((unused)) static void tu_write(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "create %s", path);
    cr_assert(fwrite(p, 1, n, f) == n);
    cr_assert(fclose(f) == 0);
}

__attribute__((unused)) static void tu_write_str(const char *path, const char *s)
{
    tu_write(path, s, strlen(s));
}

__attribute__((unused)) static void tu_copy(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = tu_read(from, &n);
    tu_write(to, b, n);
    free(b);
}

__attribute__((unused)) static void tu_synth(gpt2_model *m, gpt2_dtype wt, bool untied)
{
    gpt2_synth_params p;
    gpt2_synth_defaults(&p);
    p.wtype = wt;
    p.untied_lm_head = untied;
    p.seed = 42;
    char err[256] = "";
    cr_assert(gpt2_synth(m, &p, err, sizeof err) == 0, "synth: %s", err);
}

/* Bitwise comparison of every tensor, the hyper-parameters and the vocabulary. */
__attribute__((unused)) static void tu_same_model(const gpt2_model *a, const gpt2_model *b)
{
    cr_assert_eq(a->hp.n_vocab, b->hp.n_vocab);
    cr_assert_eq(a->hp.n_ctx, b->hp.n_ctx);
    cr_assert_eq(a->hp.n_embd, b->hp.n_embd);
    cr_assert_eq(a->hp.n_head, b->hp.n_head);
    cr_assert_eq(a->hp.n_layer, b->hp.n_layer);
    cr_assert_eq(a->hp.gelu, b->hp.gelu);
    cr_assert_eq(a->hp.ln_eps, b->hp.ln_eps);
    cr_assert_eq(a->wtype, b->wtype);
    int n = gpt2_n_tensors(&a->hp);
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *x = gpt2_tensor_at_c(a, id), *y = gpt2_tensor_at_c(b, id);
        char name[64];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        cr_assert_eq(x->type, y->type, "%s type %d vs %d", name, x->type, y->type);
        cr_assert_eq(x->ne[0], y->ne[0], "%s ne0", name);
        cr_assert_eq(x->ne[1], y->ne[1], "%s ne1", name);
        cr_assert_eq(x->nbytes, y->nbytes, "%s nbytes", name);
        cr_assert(memcmp(x->data, y->data, x->nbytes) == 0, "%s differs", name);
    }
    cr_assert_eq(a->w.lm_head.data == a->w.wte.data, b->w.lm_head.data == b->w.wte.data, "tying differs");
    cr_assert_eq(a->vocab.n_tokens, b->vocab.n_tokens);
    for (int i = 0; i < a->vocab.n_tokens; i++) {
        cr_assert_eq(a->vocab.len[i], b->vocab.len[i], "token %d", i);
        cr_assert(memcmp(a->vocab.tok[i], b->vocab.tok[i], a->vocab.len[i]) == 0, "token %d", i);
    }
    cr_assert_eq(a->vocab.eot, b->vocab.eot);
    cr_assert_eq(a->vocab.n_merges, b->vocab.n_merges);
    if (a->vocab.n_merges)
        cr_assert(memcmp(a->vocab.merges, b->vocab.merges,
                         sizeof *a->vocab.merges * (size_t)a->vocab.n_merges) == 0);
}

/* ---- hand-written safetensors ---- */
typedef struct tu_st {
    const char *name;
    const char *dtype; /* "F32", "F16", "BF16" */
    int ndim;
    int64_t shape[2];
    const void *data;
    size_t nbytes;
} tu_st;

__attribute__((unused)) static void tu_write_st(const char *path, const tu_st *t, int n)
{
    size_t cap = 256 + (size_t)n * 160, hl = 0;
    char *h = malloc(cap);
    hl += (size_t)snprintf(h + hl, cap - hl, "{");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        hl += (size_t)snprintf(h + hl, cap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", i ? "," : "",
                               t[i].name, t[i].dtype, (long long)t[i].shape[0]);
        if (t[i].ndim == 2) hl += (size_t)snprintf(h + hl, cap - hl, ",%lld", (long long)t[i].shape[1]);
        hl += (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
        off += t[i].nbytes;
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    while (hl % 8) h[hl++] = ' ';
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(h, 1, hl, f);
    for (int i = 0; i < n; i++) fwrite(t[i].data, 1, t[i].nbytes, f);
    cr_assert(fclose(f) == 0);
    free(h);
}

/* A safetensors file read whole into *b (n bytes): its JSON header as a NUL-terminated copy,
 * its length in *hl. */
__attribute__((unused)) static char *tu_st_header(const char *path, unsigned char **b, size_t *n,
                                                  uint64_t *hl)
{
    *b = tu_read(path, n);
    *hl = 0;
    for (int i = 7; i >= 0; i--) *hl = *hl << 8 | (*b)[i];
    char *h = malloc(*hl + 1);
    cr_assert(h);
    memcpy(h, *b + 8, *hl);
    h[*hl] = 0;
    return h;
}

/* Rewrites a safetensors file with the first occurrence of `from` in its header replaced. */
__attribute__((unused)) static void tu_st_mutate(const char *path, const char *from, const char *to)
{
    size_t n;
    unsigned char *b;
    uint64_t hl;
    char *h = tu_st_header(path, &b, &n, &hl);
    char *at = strstr(h, from);
    cr_assert(at, "header lacks %s", from);
    size_t pre = (size_t)(at - h), fl = strlen(from), tl = strlen(to);
    size_t nl = hl - fl + tl;
    char *nh = malloc(nl + 8);
    memcpy(nh, h, pre);
    memcpy(nh + pre, to, tl);
    memcpy(nh + pre + tl, at + fl, hl - pre - fl);
    while (nl % 8) nh[nl++] = ' ';
    FILE *f = fopen(path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)nl >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(nh, 1, nl, f);
    fwrite(b + 8 + hl, 1, n - 8 - hl, f);
    fclose(f);
    free(nh);
    free(h);
    free(b);
}

/* The "data_offsets":[a,b] of tensor name in a safetensors header written by gpt2_write_hf. */
__attribute__((unused)) static void tu_st_offsets(const char *path, const char *name, long long *a,
                                                  long long *b)
{
    size_t n;
    unsigned char *buf;
    uint64_t hl;
    char *h = tu_st_header(path, &buf, &n, &hl);
    char key[128];
    snprintf(key, sizeof key, "\"%s\":", name);
    char *at = strstr(h, key);
    cr_assert(at, "no %s", name);
    at = strstr(at, "data_offsets\":[");
    cr_assert(sscanf(at, "data_offsets\":[%lld,%lld]", a, b) == 2);
    free(h);
    free(buf);
}

#endif
