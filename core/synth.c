/* synth.c - deterministic synthetic GPT-2 models; see synth.h. */
#include "synth.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_internal.h"
#include "progress.h"
#include "vocab.h"

#define SYNTH_CHUNK (1u << 18)

void gpt2_synth_defaults(gpt2_synth_params *p)
{
    memset(p, 0, sizeof *p);
    p->size = GPT2_SYNTH_TINY;
    p->wtype = GPT2_F32;
    p->seed = 1;
    p->n_merges = 256;
    p->gelu = GPT2_GELU_TANH;
    p->ln_eps = 1e-5f;
}

const gpt2_size_info gpt2_sizes[GPT2_SYNTH_CUSTOM] = {
    [GPT2_SYNTH_TINY] = {"tiny", "tiny", 2, 64, 4, 128},
    [GPT2_SYNTH_124M] = {"124M", "gpt2", 12, 768, 12, 1024},
    [GPT2_SYNTH_355M] = {"355M", "gpt2-medium", 24, 1024, 16, 1024},
    [GPT2_SYNTH_774M] = {"774M", "gpt2-large", 36, 1280, 20, 1024},
    [GPT2_SYNTH_1558M] = {"1558M", "gpt2-xl", 48, 1600, 25, 1024},
};

int gpt2_synth_parse_size(gpt2_synth_params *p, const char *s, char *err, size_t errlen)
{
    for (int i = 0; i < GPT2_SYNTH_CUSTOM; i++)
        if (strcmp(s, gpt2_sizes[i].name) == 0 || strcmp(s, gpt2_sizes[i].hf_name) == 0) {
            p->size = (gpt2_synth_size)i;
            return 0;
        }
    int l, e, h, used = 0;
    if (sscanf(s, "%dx%dx%d%n", &l, &e, &h, &used) == 3 && s[used] == 0) {
        if (l < 1 || l > GPT2_MAX_LAYERS || e < 1 || e > GPT2_MAX_EMBD || h < 1 || e % h != 0) {
            gpt2_errf(err, errlen,
                      "synth size %s: need 1 <= layers <= %d, 1 <= n_embd <= %d, n_embd %% heads == 0", s,
                      GPT2_MAX_LAYERS, GPT2_MAX_EMBD);
            return -1;
        }
        p->size = GPT2_SYNTH_CUSTOM;
        p->n_layer = l;
        p->n_embd = e;
        p->n_head = h;
        return 0;
    }
    gpt2_errf(err, errlen, "synth size '%s' unknown (tiny, 124M, 355M, 774M, 1558M or LAYERSxEMBDxHEADS)", s);
    return -1;
}

/* ---------------------------------------------------------------- values */

static inline uint64_t fmix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t tensor_key(uint64_t seed, int id)
{
    return fmix64(fmix64(seed ^ 0x5851f42d4c957f2dull) + (uint64_t)id * 0x9e3779b97f4a7c15ull);
}

/* Approximately N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall), centred and scaled. */
static inline float unit_normal(uint64_t key, uint64_t i)
{
    uint64_t h = fmix64(key + (i + 1) * 0x9e3779b97f4a7c15ull);
    uint32_t s = (uint32_t)(h & 0xffff) + (uint32_t)(h >> 16 & 0xffff) + (uint32_t)(h >> 32 & 0xffff) +
        (uint32_t)(h >> 48);
    return ((float)s + 2.0f - 131072.0f) * (1.7320508f / 65536.0f);
}

static void scale_of(const gpt2_hparams *hp, int id, float *mean, float *std)
{
    *mean = 0.0f;
    switch (id) {
    case GPT2_T_WTE:
    case GPT2_T_LM_HEAD: *std = 0.02f; return;
    case GPT2_T_WPE: *std = 0.01f; return;
    case GPT2_T_LNF_G:
        *mean = 1.0f;
        *std = 0.05f;
        return;
    case GPT2_T_LNF_B: *std = 0.02f; return;
    default: break;
    }
    switch ((id - GPT2_T_GLOBALS) % GPT2_L_COUNT) {
    case GPT2_L_LN1_G:
    case GPT2_L_LN2_G:
        *mean = 1.0f;
        *std = 0.05f;
        return;
    case GPT2_L_LN1_B:
    case GPT2_L_LN2_B: *std = 0.02f; return;
    case GPT2_L_ATTN_W:
    case GPT2_L_FC_W: *std = 0.02f; return;
    case GPT2_L_PROJ_W:
    case GPT2_L_FC2_W: *std = 0.02f / sqrtf(2.0f * (float)hp->n_layer); return;
    default: *std = 0.01f; return;
    }
}

float gpt2_synth_value(const gpt2_hparams *hp, uint64_t seed, int id, uint64_t i)
{
    float mean, std;
    scale_of(hp, id, &mean, &std);
    return mean + std * unit_normal(tensor_key(seed, id), i);
}

/* ---------------------------------------------------------------- generation */

typedef struct job {
    int id;
    size_t begin, end;
} job;

typedef struct gen_ctx {
    gpt2_model *m;
    uint64_t seed;
    job *jobs;
    size_t n_jobs;
    atomic_size_t next;
    pthread_t main; /* the calling thread: the only one that reports progress */
} gen_ctx;

static void run_job(gen_ctx *g, const job *j)
{
    gpt2_tensor *t = gpt2_tensor_at(g->m, j->id);
    float mean, std;
    scale_of(&g->m->hp, j->id, &mean, &std);
    uint64_t key = tensor_key(g->seed, j->id);
    if (t->type == GPT2_F32) {
        float *d = t->data;
        for (size_t i = j->begin; i < j->end; i++) d[i] = mean + std * unit_normal(key, i);
    } else {
        uint16_t *d = t->data;
        for (size_t i = j->begin; i < j->end; i++) d[i] = gpt2_f32_to_f16(mean + std * unit_normal(key, i));
    }
}

static void *worker(void *arg)
{
    gen_ctx *g = arg;
    for (;;) {
        size_t k = atomic_fetch_add(&g->next, 1);
        if (k >= g->n_jobs) break;
        run_job(g, &g->jobs[k]);
        if (pthread_equal(pthread_self(), g->main) && k % 16 == 0)
            gpt2_progress("weights", "synthesizing", k, g->n_jobs);
    }
    return NULL;
}

int gpt2_synth(gpt2_model *m, const gpt2_synth_params *p, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    snprintf(m->format, sizeof m->format, "synth");
    gpt2_hparams *hp = &m->hp;
    if (p->size == GPT2_SYNTH_CUSTOM) {
        hp->n_layer = p->n_layer;
        hp->n_embd = p->n_embd;
        hp->n_head = p->n_head;
        hp->n_ctx = 1024;
    } else if ((unsigned)p->size < GPT2_SYNTH_CUSTOM) {
        hp->n_layer = gpt2_sizes[p->size].n_layer;
        hp->n_embd = gpt2_sizes[p->size].n_embd;
        hp->n_head = gpt2_sizes[p->size].n_head;
        hp->n_ctx = gpt2_sizes[p->size].n_ctx;
    } else {
        gpt2_errf(err, errlen, "synth: bad size %d", (int)p->size);
        return -1;
    }
    if (p->n_ctx > 0) hp->n_ctx = p->n_ctx;
    hp->ln_eps = p->ln_eps > 0 ? p->ln_eps : 1e-5f;
    hp->gelu = p->gelu;
    if (p->wtype != GPT2_F32 && p->wtype != GPT2_F16) {
        gpt2_errf(err, errlen, "synth: weight type must be f32 or f16, not %s", gpt2_dtype_name(p->wtype));
        return -1;
    }
    m->wtype = p->wtype;
    int r = p->vocab ? gpt2_vocab_copy(&m->vocab, p->vocab)
                     : gpt2_vocab_make_bytes(&m->vocab, p->n_merges > 0 ? p->n_merges : 256);
    if (r != 0) {
        gpt2_errf(err, errlen, "synth: cannot make the vocabulary");
        goto fail;
    }
    hp->n_vocab = m->vocab.n_tokens;
    if (p->n_vocab > 0) {
        if (p->n_vocab < m->vocab.n_tokens) {
            gpt2_errf(err, errlen, "synth: n_vocab %d is smaller than the vocabulary (%d tokens)", p->n_vocab,
                      m->vocab.n_tokens);
            goto fail;
        }
        hp->n_vocab = p->n_vocab;
    }
    if (gpt2_hparams_check(hp, "synth", err, errlen) != 0) goto fail;
    if (gpt2_mem_check(gpt2_expected_bytes(hp, m->wtype, p->untied_lm_head), "synth", err, errlen) != 0)
        goto fail;
    if (gpt2_alloc_layers(m, err, errlen) != 0) goto fail;
    int n = gpt2_n_tensors(hp);
    size_t n_jobs = 0;
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD && !p->untied_lm_head) continue;
        gpt2_tensor *t = gpt2_tensor_at(m, id);
        int64_t ne[2];
        gpt2_tensor_shape(hp, id, ne);
        gpt2_tkind kind = gpt2_tensor_kind(id);
        t->type = (kind == GPT2_K_VEC || id == GPT2_T_WPE) ? GPT2_F32 : m->wtype;
        t->ne[0] = ne[0];
        t->ne[1] = ne[1];
        t->nbytes = (size_t)ne[0] * (size_t)ne[1] * gpt2_dtype_size(t->type);
        t->data = gpt2_model_alloc(m, t->nbytes);
        if (!t->data) {
            gpt2_errf(err, errlen, "synth: out of memory (%zu bytes for one tensor)", t->nbytes);
            goto fail;
        }
        n_jobs += ((size_t)ne[0] * (size_t)ne[1] + SYNTH_CHUNK - 1) / SYNTH_CHUNK;
    }
    if (!p->untied_lm_head) m->w.lm_head = m->w.wte;
    gen_ctx g = {.m = m, .seed = p->seed, .n_jobs = n_jobs, .main = pthread_self()};
    atomic_init(&g.next, 0);
    g.jobs = malloc(sizeof *g.jobs * n_jobs);
    if (!g.jobs) {
        gpt2_errf(err, errlen, "synth: out of memory");
        goto fail;
    }
    size_t k = 0;
    for (int id = 0; id < n; id++) {
        if (id == GPT2_T_LM_HEAD && !p->untied_lm_head) continue;
        const gpt2_tensor *t = gpt2_tensor_at(m, id);
        size_t ne = (size_t)t->ne[0] * (size_t)t->ne[1];
        for (size_t b = 0; b < ne; b += SYNTH_CHUNK)
            g.jobs[k++] = (job){id, b, b + SYNTH_CHUNK < ne ? b + SYNTH_CHUNK : ne};
    }
    int nt = p->n_threads;
    if (nt <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nt = c > 0 ? (int)(c < 16 ? c : 16) : 1;
    }
    if ((size_t)nt > n_jobs) nt = (int)n_jobs;
    pthread_t th[64];
    if (nt > 64) nt = 64;
    int started = 0;
    for (int i = 1; i < nt; i++) {
        if (pthread_create(&th[started], NULL, worker, &g) != 0) break;
        started++;
    }
    gpt2_progress("weights", "synthesizing", 0, n_jobs);
    worker(&g);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    gpt2_progress("weights", "synthesizing", n_jobs, n_jobs);
    free(g.jobs);
    char e2[256];
    if (gpt2_model_validate(m, e2, sizeof e2) != 0) {
        gpt2_errf(err, errlen, "synth: %s", e2);
        goto fail;
    }
    return 0;
fail:
    gpt2_model_free(m);
    return -1;
}

int gpt2_synth_write(const gpt2_synth_params *p, const char *format, const char *path, char *err,
                     size_t errlen)
{
    bool hf = strcmp(format, "hf") == 0;
    if (!hf && strcmp(format, "ggml") != 0) {
        gpt2_errf(err, errlen, "synth: unknown output format '%s' (ggml or hf)", format);
        return -1;
    }
    gpt2_model m;
    if (gpt2_synth(&m, p, err, errlen) != 0) return -1;
    int r = hf ? gpt2_write_hf(&m, path, err, errlen) : gpt2_write_ggml(&m, path, err, errlen);
    gpt2_model_free(&m);
    return r;
}
