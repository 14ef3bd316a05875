/* backend_cpu.c - the CPU backend: walks the graph with the SIMD kernels of cpu_ops.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/profile.h"
#include "cpu_exec.h"
#include "cpu_peak.h"

typedef struct cpu_backend {
    gpt2_backend base;             /* must be first */
    gpt2_graph graph_all;          /* step with logits for every row */
    gpt2_graph graph_last;         /* step with logits for the last row only */
    cpu_pool *pool;                /* worker threads */
    float *buf[GPT2_BUF_COUNT];    /* activations, max_rows rows each */
    void **kcache, **vcache;       /* per layer [n_slots * n_ctx][E]: slot s at rows s * n_ctx */
    int max_rows;                  /* max(n_batch, n_slots): the widest step */
} cpu_backend;

static int max_i(int a, int b) { return a > b ? a : b; }

static bool cpu_supports(const gpt2_backend *b, const gpt2_node *nd)
{
    (void)b;
    return nd->op < GPT2_OP_COUNT;
}

static int cpu_eval(gpt2_backend *base, const int32_t *ids, int n, int n_past, bool all_logits,
                    float *logits, int32_t *argmax, char *err, size_t errlen)
{
    cpu_backend *b = (cpu_backend *)base;
    const gpt2_hparams *hp = &base->model->hp;
    if (gpt2_backend_check_step(base, ids, n, n_past, err, errlen)) return -1;
    if (base->slot < 0 || base->slot >= base->params.n_slots) {
        snprintf(err, errlen, "cpu backend: KV slot %d does not exist (%d slots)", base->slot,
                 base->params.n_slots);
        return -1;
    }
    cpu_step s = {.model = base->model, .ids = ids, .n = n, .n_past = n_past, .kcache = b->kcache,
                  .vcache = b->vcache, .kv_type = base->params.kv_type, .pool = b->pool,
                  .kv_base = base->slot * hp->n_ctx};
    for (int i = 0; i < GPT2_BUF_COUNT; i++) s.buf[i] = b->buf[i];
    if (logits) s.buf[GPT2_BUF_LOGITS] = logits; /* write straight into the caller's memory */
    const gpt2_graph *g = all_logits && logits ? &b->graph_all : &b->graph_last;
    int n_nodes = logits || argmax ? g->n_nodes : g->n_nodes - GPT2_HEAD_NODES; /* cache only */
    for (int i = 0; i < n_nodes; i++) {
        double t0 = base->prof ? gpt2_prof_now_us() : 0;
        cpu_exec_node(&s, &g->nodes[i]);
        if (base->prof) { /* profile: the node's time on the host clock, its cost from its shape */
            double bytes, flops, t1 = gpt2_prof_now_us();
            char fam[32];
            gpt2_node_cost(hp, &g->nodes[i], n, n_past, base->params.kv_type, &bytes, &flops);
            gpt2_node_family(&g->nodes[i], fam, sizeof fam);
            gpt2_prof_add(base->prof, PROF_CPU, fam, t0, t1 - t0, bytes, flops);
        }
    }
    if (argmax) {
        int rows = g->all_logits ? n : 1;
        double t0 = base->prof ? gpt2_prof_now_us() : 0;
        *argmax = cpu_argmax(s.buf[GPT2_BUF_LOGITS] + (size_t)(rows - 1) * hp->n_vocab, hp->n_vocab);
        if (base->prof)
            gpt2_prof_add(base->prof, PROF_CPU, "argmax", t0, gpt2_prof_now_us() - t0,
                          (double)hp->n_vocab * 4, (double)hp->n_vocab);
    }
    return 0;
}

static int cpu_eval_rows(gpt2_backend *base, const int32_t *ids, const int *slot, const int *pos,
                         int n, float *logits, int32_t *picks, char *err, size_t errlen)
{
    cpu_backend *b = (cpu_backend *)base;
    const gpt2_hparams *hp = &base->model->hp;
    if (gpt2_backend_check_rows(base, ids, slot, pos, n, b->max_rows, err, errlen)) return -1;
    int row_base[n], row_pos[n];
    for (int r = 0; r < n; r++) {
        row_base[r] = slot[r] * hp->n_ctx;
        row_pos[r] = pos[r];
    }
    cpu_step s = {.model = base->model, .ids = ids, .n = n, .kcache = b->kcache, .vcache = b->vcache,
                  .kv_type = base->params.kv_type, .pool = b->pool, .row_base = row_base,
                  .row_pos = row_pos};
    for (int i = 0; i < GPT2_BUF_COUNT; i++) s.buf[i] = b->buf[i];
    if (logits) s.buf[GPT2_BUF_LOGITS] = logits;
    for (int i = 0; i < b->graph_all.n_nodes; i++) cpu_exec_node(&s, &b->graph_all.nodes[i]);
    if (picks)
        for (int r = 0; r < n; r++)
            picks[r] = cpu_argmax(s.buf[GPT2_BUF_LOGITS] + (size_t)r * hp->n_vocab, hp->n_vocab);
    base->counters.batch_steps++;
    return 0;
}

/* Rows are drawn by the caller's sampler unless all of them are greedy. */
static bool cpu_set_pick_rows(gpt2_backend *b, const gpt2_sampler_params *const *sp,
                              const uint64_t *step, int n)
{
    (void)b;
    (void)step;
    for (int r = 0; sp && r < n; r++)
        if (sp[r] && gpt2_sampler_needs_logits(sp[r])) return false;
    return true;
}

static int cpu_kv_copy(gpt2_backend *base, int dst, int src, int n, char *err, size_t errlen)
{
    cpu_backend *b = (cpu_backend *)base;
    const gpt2_hparams *hp = &base->model->hp;
    int ns = base->params.n_slots;
    if (dst < 0 || dst >= ns || src < 0 || src >= ns || n < 0 || n > hp->n_ctx) {
        snprintf(err, errlen, "cpu backend: KV copy of %d positions from slot %d to %d (%d slots)", n,
                 src, dst, ns);
        return -1;
    }
    if (dst == src || n == 0) return 0;
    size_t row = (size_t)hp->n_embd * vkg_dtype_size(base->params.kv_type);
    size_t so = (size_t)src * hp->n_ctx * row, dof = (size_t)dst * hp->n_ctx * row;
    for (int l = 0; l < hp->n_layer; l++) {
        memcpy((char *)b->kcache[l] + dof, (char *)b->kcache[l] + so, (size_t)n * row);
        memcpy((char *)b->vcache[l] + dof, (char *)b->vcache[l] + so, (size_t)n * row);
    }
    return 0;
}

/* The CPU backend picks greedily by itself; any other draw is made by the caller's sampler from the
 * logits. */
static bool cpu_set_pick(gpt2_backend *b, const gpt2_sampler_params *sp, uint64_t step)
{
    (void)b;
    (void)step;
    return !sp || !gpt2_sampler_needs_logits(sp);
}

static int cpu_peaks(gpt2_backend *base, double *gbs, double *gflops, char *note, size_t notelen)
{
    cpu_measure_peaks(((cpu_backend *)base)->pool, gbs, gflops, note, notelen);
    return 0;
}

static void cpu_destroy(gpt2_backend *base)
{
    cpu_backend *b = (cpu_backend *)base;
    if (!b) return;
    gpt2_graph_free(&b->graph_all);
    gpt2_graph_free(&b->graph_last);
    for (int i = 0; i < GPT2_BUF_COUNT; i++) free(b->buf[i]);
    for (int l = 0; b->kcache && l < base->model->hp.n_layer; l++) {
        free(b->kcache[l]);
        free(b->vcache[l]);
    }
    free(b->kcache);
    free(b->vcache);
    cpu_pool_destroy(b->pool);
    free(b);
}

gpt2_backend *gpt2_backend_cpu_create(const gpt2_model *m, const gpt2_backend_params *p, char *err,
                                      size_t errlen)
{
    const gpt2_hparams *hp = &m->hp;
    cpu_backend *b = calloc(1, sizeof *b);
    if (!b) { snprintf(err, errlen, "out of memory"); return NULL; }
    gpt2_backend *base = &b->base;
    gpt2_backend_init(base, "cpu", m, p, VKG_F32);
    if (base->params.n_slots < 1) base->params.n_slots = 1;
    b->max_rows = max_i(base->params.n_batch, base->params.n_slots);
    base->supports = cpu_supports;
    base->eval = cpu_eval;
    base->set_pick = cpu_set_pick;
    base->eval_rows = cpu_eval_rows;
    base->set_pick_rows = cpu_set_pick_rows;
    base->kv_copy = cpu_kv_copy;
    base->destroy = cpu_destroy;
    base->peaks = cpu_peaks;
    b->pool = cpu_pool_create(p->n_threads);
    snprintf(base->device_name, sizeof base->device_name, "CPU (%s, %d threads)",
             cpu_isa_name(cpu_isa_active()), cpu_pool_threads(b->pool));

    size_t nb = (size_t)b->max_rows;
    for (int i = 0; i < GPT2_BUF_COUNT; i++) {
        size_t bytes = nb * (size_t)gpt2_buf_width(hp, i) * sizeof(float);
        b->buf[i] = malloc(bytes);
        base->scratch_bytes += bytes;
        if (!b->buf[i]) goto oom;
    }
    size_t kv_row = (size_t)hp->n_embd * vkg_dtype_size(base->params.kv_type);
    b->kcache = calloc((size_t)hp->n_layer, sizeof *b->kcache);
    b->vcache = calloc((size_t)hp->n_layer, sizeof *b->vcache);
    if (!b->kcache || !b->vcache) goto oom;
    for (int l = 0; l < hp->n_layer; l++) {
        b->kcache[l] = calloc((size_t)hp->n_ctx * base->params.n_slots, kv_row);
        b->vcache[l] = calloc((size_t)hp->n_ctx * base->params.n_slots, kv_row);
        if (!b->kcache[l] || !b->vcache[l]) goto oom;
    }
    base->kv_bytes = 2 * (size_t)hp->n_layer * (size_t)hp->n_ctx * base->params.n_slots * kv_row;
    base->weights_bytes = gpt2_weights_bytes(m);
    if (gpt2_graph_build(&b->graph_all, m, true) || gpt2_graph_build(&b->graph_last, m, false))
        goto oom;
    return base;
oom:
    snprintf(err, errlen, "cpu backend: out of memory allocating activations and KV cache (%d layers x %d positions x %d slots)",
             hp->n_layer, hp->n_ctx, base->params.n_slots);
    cpu_destroy(base);
    return NULL;
}

double gpt2_backend_cpu_bandwidth(int n_threads, size_t bytes)
{
    cpu_pool *p = cpu_pool_create(n_threads);
    double gbs = cpu_measure_bandwidth_gbs(p, bytes);
    cpu_pool_destroy(p);
    return gbs;
}
