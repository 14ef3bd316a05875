/* model.c - loading dispatch, model memory, validation, and the helpers every format shares. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "progress.h"
#include "vocab.h"

/* ---------------------------------------------------------------- errors */

void gpt2_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++) /* one line */
        if (*p == '\n' || *p == '\r') *p = ' ';
}

void gpt2_shape_str(char *buf, size_t n, int ndim, const int64_t *ne)
{
    if (ndim <= 1)
        snprintf(buf, n, "[%" PRId64 "]", ne[0]);
    else
        snprintf(buf, n, "[%" PRId64 ", %" PRId64 "]", ne[0], ne[1]);
}

/* ---------------------------------------------------------------- tensor table */

static const char *const ggml_layer_names[GPT2_L_COUNT] = {
    "ln_1/g", "ln_1/b", "attn/c_attn/w", "attn/c_attn/b", "attn/c_proj/w", "attn/c_proj/b",
    "ln_2/g", "ln_2/b", "mlp/c_fc/w", "mlp/c_fc/b", "mlp/c_proj/w", "mlp/c_proj/b",
};
static const char *const ggml_global_names[GPT2_T_GLOBALS] = {
    "model/wte", "model/wpe", "model/ln_f/g", "model/ln_f/b", "model/lm_head",
};
static const char *const hf_layer_names[GPT2_L_COUNT] = {
    "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
    "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
    "mlp.c_proj.weight", "mlp.c_proj.bias",
};
static const char *const hf_global_names[GPT2_T_GLOBALS] = {
    "wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight",
};

vkg_tensor *gpt2_tensor_at(gpt2_model *m, int id)
{
    switch (id) {
    case GPT2_T_WTE: return &m->w.wte;
    case GPT2_T_WPE: return &m->w.wpe;
    case GPT2_T_LNF_G: return &m->w.ln_f_g;
    case GPT2_T_LNF_B: return &m->w.ln_f_b;
    case GPT2_T_LM_HEAD: return &m->w.lm_head;
    default: break;
    }
    int l = (id - GPT2_T_GLOBALS) / GPT2_L_COUNT, k = (id - GPT2_T_GLOBALS) % GPT2_L_COUNT;
    gpt2_layer *L = &m->w.layers[l];
    switch (k) {
    case GPT2_L_LN1_G: return &L->ln1_g;
    case GPT2_L_LN1_B: return &L->ln1_b;
    case GPT2_L_ATTN_W: return &L->attn_w;
    case GPT2_L_ATTN_B: return &L->attn_b;
    case GPT2_L_PROJ_W: return &L->proj_w;
    case GPT2_L_PROJ_B: return &L->proj_b;
    case GPT2_L_LN2_G: return &L->ln2_g;
    case GPT2_L_LN2_B: return &L->ln2_b;
    case GPT2_L_FC_W: return &L->fc_w;
    case GPT2_L_FC_B: return &L->fc_b;
    case GPT2_L_FC2_W: return &L->fc2_w;
    default: return &L->fc2_b;
    }
}

const vkg_tensor *gpt2_tensor_at_c(const gpt2_model *m, int id)
{
    return gpt2_tensor_at((gpt2_model *)m, id);
}

gpt2_tkind gpt2_tensor_kind(int id)
{
    if (id < GPT2_T_GLOBALS)
        return (id == GPT2_T_LNF_G || id == GPT2_T_LNF_B) ? GPT2_K_VEC : GPT2_K_EMB;
    int k = (id - GPT2_T_GLOBALS) % GPT2_L_COUNT;
    return (k == GPT2_L_ATTN_W || k == GPT2_L_PROJ_W || k == GPT2_L_FC_W || k == GPT2_L_FC2_W)
               ? GPT2_K_MAT
               : GPT2_K_VEC;
}

bool gpt2_tensor_is_conv1d(int id) { return gpt2_tensor_kind(id) == GPT2_K_MAT; }

void gpt2_tensor_shape(const gpt2_hparams *hp, int id, int64_t ne[2])
{
    int64_t E = hp->n_embd;
    ne[1] = 1;
    switch (id) {
    case GPT2_T_WTE:
    case GPT2_T_LM_HEAD: ne[0] = E; ne[1] = hp->n_vocab; return;
    case GPT2_T_WPE: ne[0] = E; ne[1] = hp->n_ctx; return;
    case GPT2_T_LNF_G:
    case GPT2_T_LNF_B: ne[0] = E; return;
    default: break;
    }
    switch ((id - GPT2_T_GLOBALS) % GPT2_L_COUNT) {
    case GPT2_L_ATTN_W: ne[0] = E; ne[1] = 3 * E; return;
    case GPT2_L_ATTN_B: ne[0] = 3 * E; return;
    case GPT2_L_PROJ_W: ne[0] = E; ne[1] = E; return;
    case GPT2_L_FC_W: ne[0] = E; ne[1] = 4 * E; return;
    case GPT2_L_FC_B: ne[0] = 4 * E; return;
    case GPT2_L_FC2_W: ne[0] = 4 * E; ne[1] = E; return;
    default: ne[0] = E; return;
    }
}

void gpt2_tensor_name_ggml(int id, char *buf, size_t n)
{
    if (id < GPT2_T_GLOBALS)
        snprintf(buf, n, "%s", ggml_global_names[id]);
    else
        snprintf(buf, n, "model/h%d/%s", (id - GPT2_T_GLOBALS) / GPT2_L_COUNT,
                 ggml_layer_names[(id - GPT2_T_GLOBALS) % GPT2_L_COUNT]);
}

void gpt2_tensor_name_hf(int id, char *buf, size_t n)
{
    if (id < GPT2_T_GLOBALS)
        snprintf(buf, n, "%s", hf_global_names[id]);
    else
        snprintf(buf, n, "h.%d.%s", (id - GPT2_T_GLOBALS) / GPT2_L_COUNT,
                 hf_layer_names[(id - GPT2_T_GLOBALS) % GPT2_L_COUNT]);
}

/* Parses "<prefix><decimal layer><sep><suffix>". */
static int parse_layer_name(const char *name, size_t len, const char *prefix, char sep,
                            const char *const *suffixes, int n_layer)
{
    size_t pl = strlen(prefix);
    if (len <= pl || memcmp(name, prefix, pl) != 0) return -1;
    size_t i = pl;
    long layer = 0;
    if (i >= len || name[i] < '0' || name[i] > '9') return -1;
    if (name[i] == '0' && i + 1 < len && name[i + 1] >= '0' && name[i + 1] <= '9') return -1;
    while (i < len && name[i] >= '0' && name[i] <= '9') {
        layer = layer * 10 + (name[i] - '0');
        if (layer >= n_layer) return -1;
        i++;
    }
    if (i >= len || name[i] != sep) return -1;
    i++;
    for (int k = 0; k < GPT2_L_COUNT; k++) {
        size_t sl = strlen(suffixes[k]);
        if (len - i == sl && memcmp(name + i, suffixes[k], sl) == 0)
            return GPT2_T_GLOBALS + (int)layer * GPT2_L_COUNT + k;
    }
    return -1;
}

int gpt2_tensor_id_ggml(const char *name, size_t len, int n_layer)
{
    for (int i = 0; i < GPT2_T_GLOBALS; i++)
        if (strlen(ggml_global_names[i]) == len && memcmp(name, ggml_global_names[i], len) == 0)
            return i;
    return parse_layer_name(name, len, "model/h", '/', ggml_layer_names, n_layer);
}

int gpt2_tensor_id_hf(const char *name, size_t len, int n_layer)
{
    for (int i = 0; i < GPT2_T_GLOBALS; i++)
        if (strlen(hf_global_names[i]) == len && memcmp(name, hf_global_names[i], len) == 0)
            return i;
    return parse_layer_name(name, len, "h.", '.', hf_layer_names, n_layer);
}

/* ---------------------------------------------------------------- hparams and memory */

int gpt2_hparams_check(const gpt2_hparams *hp, const char *file, char *err, size_t errlen)
{
    if (hp->n_vocab <= 0 || hp->n_vocab > GPT2_MAX_VOCAB) {
        gpt2_errf(err, errlen, "%s: n_vocab %d is out of range (1..%d)", file, hp->n_vocab, GPT2_MAX_VOCAB);
        return -1;
    }
    if (hp->n_ctx <= 0 || hp->n_ctx > GPT2_MAX_CTX) {
        gpt2_errf(err, errlen, "%s: n_ctx %d is out of range (1..%d)", file, hp->n_ctx, GPT2_MAX_CTX);
        return -1;
    }
    if (hp->n_embd <= 0 || hp->n_embd > GPT2_MAX_EMBD) {
        gpt2_errf(err, errlen, "%s: n_embd %d is out of range (1..%d)", file, hp->n_embd, GPT2_MAX_EMBD);
        return -1;
    }
    if (hp->n_head <= 0 || hp->n_head > hp->n_embd) {
        gpt2_errf(err, errlen, "%s: n_head %d is out of range (1..n_embd=%d)", file, hp->n_head, hp->n_embd);
        return -1;
    }
    if (hp->n_embd % hp->n_head != 0) {
        gpt2_errf(err, errlen, "%s: n_embd %d is not divisible by n_head %d", file, hp->n_embd, hp->n_head);
        return -1;
    }
    if (hp->n_layer <= 0 || hp->n_layer > GPT2_MAX_LAYERS) {
        gpt2_errf(err, errlen, "%s: n_layer %d is out of range (1..%d)", file, hp->n_layer, GPT2_MAX_LAYERS);
        return -1;
    }
    if (!(hp->ln_eps > 0.0f && hp->ln_eps < 1.0f)) {
        gpt2_errf(err, errlen, "%s: layer_norm_epsilon %g is out of range (0, 1)", file, (double)hp->ln_eps);
        return -1;
    }
    return 0;
}

uint64_t gpt2_expected_bytes(const gpt2_hparams *hp, vkg_dtype wtype, bool untied)
{
    /* The limits of gpt2_hparams_check keep every product below 2^50. */
    uint64_t E = (uint64_t)hp->n_embd;
    uint64_t rb = vkg_row_bytes(wtype, (size_t)E), rb4 = vkg_row_bytes(wtype, (size_t)(4 * E));
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

/* ---------------------------------------------------------------- files */

int gpt2_map_file(const char *path, void **map, size_t *size, char *err, size_t errlen)
{
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gpt2_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        gpt2_errf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        gpt2_errf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size <= 0) {
        gpt2_errf(err, errlen, "%s: file is empty", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        gpt2_errf(err, errlen, "%s: file is too large to map", path);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        gpt2_errf(err, errlen, "%s: cannot map %lld bytes: %s", path, (long long)st.st_size, strerror(e));
        return -1;
    }
    *map = p;
    *size = (size_t)st.st_size;
    return 0;
}

int gpt2_read_file(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        gpt2_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        gpt2_errf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((uint64_t)st.st_size > max) {
        gpt2_errf(err, errlen, "%s: file is too large (%lld bytes, at most %zu expected)", path,
                  (long long)st.st_size, max);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        gpt2_errf(err, errlen, "%s: out of memory reading %zu bytes", path, n);
        fclose(f);
        return -1;
    }
    size_t got = fread(b, 1, n, f);
    fclose(f);
    if (got != n) {
        gpt2_errf(err, errlen, "%s: short read (%zu of %zu bytes)", path, got, n);
        free(b);
        return -1;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

int gpt2_place_tensor(gpt2_model *m, int id, const void *src, vkg_dtype st, bool transpose,
                      const char *file, char *err, size_t errlen)
{
    int n_tensors = gpt2_n_tensors(&m->hp);
    if (n_tensors > 0) gpt2_progress(file, "loading", (uint64_t)id * 999 / (uint64_t)n_tensors, 1000);
    vkg_tensor *t = gpt2_tensor_at(m, id);
    int64_t ne[2];
    gpt2_tensor_shape(&m->hp, id, ne);
    gpt2_tkind kind = gpt2_tensor_kind(id);
    vkg_dtype dt;
    if (kind == GPT2_K_VEC)
        dt = VKG_F32;
    else if (kind == GPT2_K_MAT)
        dt = m->wtype;
    else
        dt = st == VKG_BF16 ? VKG_F32 : st;
    size_t n = (size_t)ne[0] * (size_t)ne[1];
    if ((vkg_dtype_is_quant(dt) || vkg_dtype_is_quant(st)) && ne[0] % VKG_QBLOCK != 0) {
        char name[64];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        gpt2_errf(err, errlen, "%s: tensor %s has %lld columns, not a multiple of %d as %s needs", file,
                  name, (long long)ne[0], VKG_QBLOCK, vkg_dtype_name(vkg_dtype_is_quant(dt) ? dt : st));
        return -1;
    }
    t->type = dt;
    t->ne[0] = ne[0];
    t->ne[1] = ne[1];
    t->nbytes = vkg_row_bytes(dt, (size_t)ne[0]) * (size_t)ne[1];
    /* block formats are read bytewise (f16 scales through memcpy): any alignment will do */
    size_t align = vkg_dtype_is_quant(dt) ? 1 : vkg_dtype_size(dt);
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
    if (transpose && vkg_dtype_is_quant(dt)) { /* [in][out] floats: transpose to f32, then quantize */
        float *tmp = malloc(n * sizeof *tmp);
        if (!tmp) {
            gpt2_errf(err, errlen, "%s: out of memory transposing a tensor (%zu bytes)", file, n * 4);
            return -1;
        }
        gpt2_transpose(tmp, VKG_F32, src, st, (size_t)ne[0], (size_t)ne[1]);
        gpt2_convert(d, dt, tmp, VKG_F32, n);
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
    if (n > SIZE_MAX - 64) return NULL;
    size_t sz = (n + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, sz ? sz : 64);
    if (!p) return NULL;
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
        const vkg_tensor *t = gpt2_tensor_at_c(m, id);
        if (id == GPT2_T_LM_HEAD && t->data == m->w.wte.data) continue;
        total += t->nbytes;
    }
    return total;
}

int gpt2_model_check(const gpt2_model *m, const char *file, const char *what, char *err, size_t errlen)
{
    char e2[256];
    if (gpt2_model_validate(m, e2, sizeof e2) == 0) return 0;
    gpt2_errf(err, errlen, "%s: %s%s", file, what, e2);
    return -1;
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

int gpt2_model_validate(const gpt2_model *m, char *err, size_t errlen)
{
    const char *who = m->format[0] ? m->format : "model";
    if (gpt2_hparams_check(&m->hp, who, err, errlen) != 0) return -1;
    if (m->wtype != VKG_F32 && m->wtype != VKG_F16 && !vkg_dtype_is_quant(m->wtype)) {
        gpt2_errf(err, errlen, "%s: weight type %s is not f32, f16 or a block format", who,
                  vkg_dtype_name(m->wtype));
        return -1;
    }
    if (!m->w.layers) {
        gpt2_errf(err, errlen, "%s: no layers", who);
        return -1;
    }
    int n = gpt2_n_tensors(&m->hp);
    for (int id = 0; id < n; id++) {
        const vkg_tensor *t = gpt2_tensor_at_c(m, id);
        char name[64], got[48], want[48];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        int64_t ne[2];
        gpt2_tensor_shape(&m->hp, id, ne);
        if (!t->data) {
            gpt2_errf(err, errlen, "%s: tensor %s has no data", who, name);
            return -1;
        }
        if (t->ne[0] != ne[0] || t->ne[1] != ne[1]) {
            gpt2_shape_str(got, sizeof got, 2, t->ne);
            gpt2_shape_str(want, sizeof want, 2, ne);
            gpt2_errf(err, errlen, "%s: tensor %s has shape %s, expected %s", who, name, got, want);
            return -1;
        }
        gpt2_tkind kind = gpt2_tensor_kind(id);
        /* wte and lm_head may be a block format too (ggml quantizes them); wpe stays float */
        bool emb_q = id != GPT2_T_WPE && vkg_dtype_is_quant(t->type);
        bool ok = kind == GPT2_K_VEC   ? t->type == VKG_F32
                  : kind == GPT2_K_MAT ? t->type == m->wtype
                                       : (t->type == VKG_F32 || t->type == VKG_F16 || emb_q);
        if (!ok) {
            gpt2_errf(err, errlen, "%s: tensor %s has type %s, expected %s", who, name,
                      vkg_dtype_name(t->type),
                      kind == GPT2_K_VEC   ? "f32"
                      : kind == GPT2_K_MAT ? vkg_dtype_name(m->wtype)
                      : id == GPT2_T_WPE   ? "f32 or f16"
                                           : "f32, f16 or a block format");
            return -1;
        }
        if (vkg_dtype_is_quant(t->type) && ne[0] % VKG_QBLOCK != 0) {
            gpt2_errf(err, errlen, "%s: tensor %s has %lld columns, not a multiple of %d as %s needs", who,
                      name, (long long)ne[0], VKG_QBLOCK, vkg_dtype_name(t->type));
            return -1;
        }
        size_t want_bytes = vkg_row_bytes(t->type, (size_t)ne[0]) * (size_t)ne[1];
        if (t->nbytes != want_bytes) {
            gpt2_errf(err, errlen, "%s: tensor %s has %zu bytes, expected %zu", who, name, t->nbytes,
                      want_bytes);
            return -1;
        }
    }
    if (m->vocab.n_tokens > m->hp.n_vocab) {
        gpt2_errf(err, errlen, "%s: vocabulary has %d tokens but the model only %d rows", who,
                  m->vocab.n_tokens, m->hp.n_vocab);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- dispatch */

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int load_any(gpt2_model *m, const char *path, unsigned flags, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    struct stat st;
    if (stat(path, &st) != 0) {
        gpt2_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) return gpt2_load_hf_ex(m, path, flags, err, errlen);
    if (!S_ISREG(st.st_mode)) {
        gpt2_errf(err, errlen, "%s: not a regular file or directory", path);
        return -1;
    }
    /* A file of a Hugging Face directory stands for the directory. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "config.json") == 0 || ends_with(base, ".safetensors") ||
        ends_with(base, ".safetensors.index.json")) {
        size_t dl = (size_t)(base - path);
        char *dir = malloc(dl + 2);
        if (!dir) {
            gpt2_errf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        if (dl == 0)
            strcpy(dir, ".");
        else {
            memcpy(dir, path, dl);
            dir[dl] = 0;
        }
        int r = gpt2_load_hf_ex(m, dir, flags, err, errlen);
        free(dir);
        return r;
    }
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        gpt2_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got < 4) {
        gpt2_errf(err, errlen, "%s: file too short (%zu bytes) to be a model", path, got);
        return -1;
    }
    uint32_t v = (uint32_t)magic[0] | (uint32_t)magic[1] << 8 | (uint32_t)magic[2] << 16 |
                 (uint32_t)magic[3] << 24;
    if (v == 0x67676d6cu) return gpt2_load_ggml(m, path, err, errlen);
    if (memcmp(magic, "GGUF", 4) == 0) return gpt2_load_gguf(m, path, err, errlen);
    if (v == (uint32_t)LLMC_MAGIC) return gpt2_load_llmc(m, path, err, errlen);
    if (v == 0x67676a74u || v == 0x67676d66u) {
        gpt2_errf(err, errlen, "%s: ggml %s files are not supported (only ggml's unversioned GPT-2 format)",
                  path, v == 0x67676a74u ? "ggjt" : "ggmf");
        return -1;
    }
    gpt2_errf(err, errlen,
              "%s: unknown model format (magic 0x%08x; expected ggml 0x67676d6c, GGUF, llm.c 20240326, "
              "or a Hugging Face directory)",
              path, v);
    return -1;
}

int gpt2_model_load_ex(gpt2_model *m, const char *path, unsigned flags, char *err, size_t errlen)
{
    gpt2_progress(path, "loading", 0, 1);
    int r = load_any(m, path, flags, err, errlen);
    gpt2_progress(path, "loading", 1, 1); /* the step ends, loaded or not */
    return r;
}

int gpt2_model_load(gpt2_model *m, const char *path, char *err, size_t errlen)
{
    return gpt2_model_load_ex(m, path, 0, err, errlen);
}
