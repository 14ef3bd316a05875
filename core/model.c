/* model.c - a model's memory (owned blocks, layers, placing a tensor from file data into the
 * model's type), the RAM checks before loading, and the error helpers the formats share. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model.h"
#include "model_internal.h"
#include "progress.h"
#include "vocab.h"

/* ---------------------------------------------------------------- messages */

void gpt2_shape_str(char *buf, size_t n, int ndim, const int64_t *ne)
{
    if (ndim <= 1)
        snprintf(buf, n, "[%" PRId64 "]", ne[0]);
    else
        snprintf(buf, n, "[%" PRId64 ", %" PRId64 "]", ne[0], ne[1]);
}

/* ---------------------------------------------------------------- memory checks */

uint64_t gpt2_expected_bytes(const gpt2_hparams *hp, gpt2_dtype wtype, bool untied)
{
    /* The limits of gpt2_hparams_check keep every product below 2^50. */
    uint64_t E = (uint64_t)hp->n_embd;
    uint64_t rb = gpt2_row_bytes(wtype, (size_t)E), rb4 = gpt2_row_bytes(wtype, (size_t)(4 * E));
    uint64_t emb = (uint64_t)hp->n_vocab * rb;
    uint64_t total = emb + (uint64_t)hp->n_ctx * E * 4 + 2 * E * 4;
    if (untied) total += emb;
    uint64_t layer = 8 * E * rb + E * rb4 + 13 * E * 4;
    return total + layer * (uint64_t)hp->n_layer;
}

uint64_t gpt2_mem_available(void)
{
    const char *env = getenv("VKGPT2_MEM_LIMIT");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (end != env) return (uint64_t)v;
    }
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return UINT64_MAX;
    return (uint64_t)pages * (uint64_t)psz;
}

int gpt2_mem_check(uint64_t need, const char *file, char *err, size_t errlen)
{
    uint64_t have = gpt2_mem_available();
    if (need > have) {
        gpt2_errf(err, errlen,
                  "%s: model needs %.2f GiB (%" PRIu64 " bytes) for its weights, but only %.2f GiB (%" PRIu64
                  " bytes) of RAM is available",
                  file, (double)need / (1 << 30), need, (double)have / (1 << 30), have);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- placing tensors */

int gpt2_place_tensor(gpt2_model *m, int id, const void *src, gpt2_dtype st, bool transpose, const char *file,
                      char *err, size_t errlen)
{
    int n_tensors = gpt2_n_tensors(&m->hp);
    if (n_tensors > 0) gpt2_progress(file, "loading", (uint64_t)id * 999 / (uint64_t)n_tensors, 1000);
    gpt2_tensor *t = gpt2_tensor_at(m, id);
    int64_t ne[2];
    gpt2_tensor_shape(&m->hp, id, ne);
    gpt2_tkind kind = gpt2_tensor_kind(id);
    gpt2_dtype dt;
    if (kind == GPT2_K_VEC)
        dt = GPT2_F32;
    else if (kind == GPT2_K_MAT)
        dt = m->wtype;
    else
        dt = st == GPT2_BF16 ? GPT2_F32 : st;
    size_t n = (size_t)ne[0] * (size_t)ne[1];
    if ((gpt2_dtype_is_quant(dt) || gpt2_dtype_is_quant(st)) && ne[0] % GPT2_QBLOCK != 0) {
        char name[64];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        gpt2_errf(err, errlen, "%s: tensor %s has %lld columns, not a multiple of %d as %s needs", file, name,
                  (long long)ne[0], GPT2_QBLOCK, gpt2_dtype_name(gpt2_dtype_is_quant(dt) ? dt : st));
        return -1;
    }
    t->type = dt;
    t->ne[0] = ne[0];
    t->ne[1] = ne[1];
    t->nbytes = gpt2_row_bytes(dt, (size_t)ne[0]) * (size_t)ne[1];
    /* Matrices and embeddings stay in the mapping at any alignment (ggml files have no padding):
     * every reader loads their elements with memcpy or unaligned vector loads, and block formats
     * are read bytewise. Biases and gains, read as float arrays, are copied when misaligned. */
    size_t align = kind != GPT2_K_VEC || gpt2_dtype_is_quant(dt) ? 1 : gpt2_dtype_size(dt);
    if (!transpose && dt == st && ((uintptr_t)src % align) == 0) {
        t->data = (void *)src;
        return 0;
    }
    void *d = gpt2_model_alloc(m, t->nbytes);
    if (!d) {
        char name[64];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        gpt2_errf(err, errlen, "%s: out of memory for tensor %s (%zu bytes)", file, name, t->nbytes);
        return -1;
    }
    if (transpose && gpt2_dtype_is_quant(dt)) { /* [in][out] floats: transpose to f32, then quantize */
        float *tmp = malloc(n * sizeof *tmp);
        if (!tmp) {
            gpt2_errf(err, errlen, "%s: out of memory transposing a tensor (%zu bytes)", file, n * 4);
            return -1;
        }
        gpt2_transpose(tmp, GPT2_F32, src, st, (size_t)ne[0], (size_t)ne[1]);
        gpt2_convert(d, dt, tmp, GPT2_F32, n);
        free(tmp);
    } else if (transpose)
        gpt2_transpose(d, dt, src, st, (size_t)ne[0], (size_t)ne[1]);
    else
        gpt2_convert(d, dt, src, st, n);
    t->data = d;
    return 0;
}

int gpt2_alloc_layers(gpt2_model *m, char *err, size_t errlen)
{
    size_t n = sizeof(gpt2_layer) * (size_t)m->hp.n_layer;
    m->w.layers = gpt2_model_alloc(m, n);
    if (!m->w.layers) {
        gpt2_errf(err, errlen, "out of memory for %d layers", m->hp.n_layer);
        return -1;
    }
    memset(m->w.layers, 0, n);
    return 0;
}

/* ---------------------------------------------------------------- model memory */

void *gpt2_model_alloc(gpt2_model *m, size_t n)
{
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **o = realloc(m->owned, sizeof *o * (size_t)cap);
        if (!o) return NULL;
        m->owned = o;
        m->cap_owned = cap;
    }
    if (n > SIZE_MAX - ((size_t)4 << 20)) return NULL;
    /* Large tensors (weights converted or transposed at load) in 2 MiB pages where the kernel
     * allows, for the same reason as the mapped files (file.c). */
    const size_t huge = (size_t)2 << 20;
    const size_t al = n >= 2 * huge ? huge : 64;
    size_t sz = (n + 63) & ~(size_t)63; /* the start aligned, the size not rounded up to al */
    void *p = NULL;
    if (posix_memalign(&p, al, sz ? sz : 64) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (al == huge) (void)madvise(p, sz, MADV_HUGEPAGE);
#endif
    m->owned[m->n_owned++] = p;
    return p;
}

void gpt2_model_free(gpt2_model *m)
{
    if (!m) return;
    if (m->vocab.tok || m->vocab.len || m->vocab.merges) gpt2_vocab_free(&m->vocab);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->map) munmap(m->map, m->map_size);
    for (int i = 0; i < m->n_extra; i++)
        if (m->extra_maps[i]) munmap(m->extra_maps[i], m->extra_sizes[i]);
    memset(m, 0, sizeof *m);
}

size_t gpt2_weights_bytes(const gpt2_model *m)
{
    size_t total = 0;
    if (!m->w.layers) return 0;
    int n = gpt2_n_tensors(&m->hp);
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        if (id == GPT2_T_LM_HEAD && t->data == m->w.wte.data) continue;
        total += t->nbytes;
    }
    return total;
}

int gpt2_vocab_scratch(gpt2_vocab *v, int32_t n)
{
    memset(v, 0, sizeof *v);
    v->n_tokens = n;
    v->eot = -1;
    v->tok = calloc((size_t)n, sizeof *v->tok);
    v->len = calloc((size_t)n, sizeof *v->len);
    if (v->tok && v->len) return 0;
    free(v->tok);
    free(v->len);
    v->tok = NULL;
    v->len = NULL;
    return -1;
}
