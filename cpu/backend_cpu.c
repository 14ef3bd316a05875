/* backend_cpu.c - the CPU backend: walks the graph with the SIMD kernels of cpu_ops.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/profile.h"
#include "cpu_exec.h"
#include "cpu_peak.h"

typedef struct cpu_backend {
    gpt2_backend base;          /* must be first */
    gpt2_graph graph_all;       /* step with logits for every row */
    gpt2_graph graph_last;      /* step with logits for the last row only */
    cpu_pool *pool;             /* worker threads */
    float *buf[GPT2_BUF_COUNT]; /* activations, max_rows rows each */
    void **kcache, **vcache;    /* per layer: n_slots sequences of n_ctx positions (cpu_kv_index) */
    int max_rows;               /* max(n_batch, n_slots): the widest step */
} cpu_backend;

/* Runs the graph over the step's rows: one sequence (a prompt chunk or a decode token) or a batch
 * (one token per sequence), the same executor for both. */
static int cpu_eval(gpt2_backend *base, const gpt2_step *st, char *err, size_t errlen)
{
    cpu_backend *b = (cpu_backend *)base;
    const gpt2_hparams *hp = &base->model->hp;
    gpt2_step_shape sh;
    if (gpt2_backend_check_step(base, st, &sh, err, errlen)) return -1;
    if (st->n_chain > 1) { /* a chain: its steps one after another, each feeding its pick on */
        gpt2_step one = *st;
        gpt2_row row = st->rows[0];
        int32_t id = st->ids[0];
        one.n_chain = 1;
        one.rows = &row;
        one.ids = &id;
        for (int k = 0; k < st->n_chain; k++) st->picks[k] = -1;
        for (int k = 0; k < st->n_chain; k++) {
            uint64_t draw = (st->draw ? st->draw[0] : 0) + (uint64_t)k;
            one.draw = &draw;
            one.picks = &st->picks[k];
            if (cpu_eval(base, &one, err, errlen)) return -1;
            if (st->picks[k] == st->stop_id) break;
            id = st->picks[k];
            row.pos++;
        }
        base->counters.chained_steps += (uint64_t)st->n_chain;
        return 0;
    }
    const int n = st->n;
    int row_base[n], row_pos[n];
    for (int r = 0; r < n; r++) {
        row_base[r] = st->rows[r].slot * hp->n_ctx;
        row_pos[r] = st->rows[r].pos;
    }
    cpu_step s = {.model = base->model,
                  .ids = st->ids,
                  .n = n,
                  .kcache = b->kcache,
                  .vcache = b->vcache,
                  .kv_type = base->params.kv_type,
                  .pool = b->pool,
                  .row_base = row_base,
                  .row_pos = row_pos};
    for (int i = 0; i < GPT2_BUF_COUNT; i++) s.buf[i] = b->buf[i];
    bool want_logits = st->out == GPT2_STEP_LAST || st->out == GPT2_STEP_ALL;
    if (want_logits) s.buf[GPT2_BUF_LOGITS] = st->logits; /* straight into the caller's memory */
    /* A batch needs every row's logits (each row is a sequence's last). */
    const gpt2_graph *g = st->out == GPT2_STEP_ALL || sh.batch ? &b->graph_all : &b->graph_last;
    int n_nodes = st->out != GPT2_STEP_NONE ? g->n_nodes : g->n_nodes - GPT2_HEAD_NODES; /* cache only */
    bool prof = base->prof && !sh.batch;
    for (int i = 0; i < n_nodes; i++) {
        double t0 = prof ? gpt2_prof_now_us() : 0;
        if (cpu_exec_node(&s, &g->nodes[i])) {
            snprintf(err, errlen, "cpu backend: out of memory");
            return -1;
        }
        if (prof) { /* profile: the node's time on the host clock, its cost from its shape */
            double bytes, flops, t1 = gpt2_prof_now_us();
            char fam[32];
            gpt2_node_cost(hp, &g->nodes[i], n, sh.n_past, base->params.kv_type, &bytes, &flops);
            gpt2_node_family(&g->nodes[i], fam, sizeof fam);
            gpt2_prof_add(base->prof, PROF_CPU, fam, t0, t1 - t0, bytes, flops);
        }
    }
    /* Picks: each sequence's argmax (can_draw admits only greedy draws here); with logits, the
     * last row's argmax when asked. */
    if (st->picks && st->out != GPT2_STEP_NONE) {
        int rows = g->all_logits ? n : 1;
        double t0 = prof ? gpt2_prof_now_us() : 0;
        const float *lg = s.buf[GPT2_BUF_LOGITS];
        if (sh.batch && !want_logits)
            for (int r = 0; r < n; r++) st->picks[r] = cpu_argmax(lg + (size_t)r * hp->n_vocab, hp->n_vocab);
        else
            st->picks[0] = cpu_argmax(lg + (size_t)(rows - 1) * hp->n_vocab, hp->n_vocab);
        if (prof)
            gpt2_prof_add(base->prof, PROF_CPU, "argmax", t0, gpt2_prof_now_us() - t0,
                          (double)hp->n_vocab * 4, (double)hp->n_vocab);
    }
    if (sh.batch) base->counters.batch_steps++;
    return 0;
}

/* The CPU backend picks greedily by itself; any other draw is made by the caller's sampler from the
 * logits. */
static bool cpu_can_draw(const gpt2_backend *b, const gpt2_sampler_params *sp)
{
    (void)b;
    return !sp || !gpt2_sampler_needs_logits(sp);
}

static int cpu_kv_copy(gpt2_backend *base, int dst, int src, int n, char *err, size_t errlen)
{
    cpu_backend *b = (cpu_backend *)base;
    const gpt2_hparams *hp = &base->model->hp;
    int ns = base->params.n_slots;
    if (dst < 0 || dst >= ns || src < 0 || src >= ns || n < 0 || n > hp->n_ctx) {
        snprintf(err, errlen, "cpu backend: KV copy of %d positions from slot %d to %d (%d slots)", n, src,
                 dst, ns);
        return -1;
    }
    if (dst == src || n == 0) return 0;
    const int hd = hp->n_embd / hp->n_head;
    for (int l = 0; l < hp->n_layer; l++) {
        cpu_kv_copy_slot(b->kcache[l], base->params.kv_type, hp->n_ctx, hp->n_head, hd, dst, src, n);
        cpu_kv_copy_slot(b->vcache[l], base->params.kv_type, hp->n_ctx, hp->n_head, hd, dst, src, n);
    }
    return 0;
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

gpt2_backend *gpt2_backend_cpu_create(const gpt2_model *m, const gpt2_backend_params *p,
                                      gpt2_backend_why *why, char *err, size_t errlen)
{
    const gpt2_hparams *hp = &m->hp;
    if (why) *why = GPT2_WHY_NO_MEMORY; /* the only way this constructor fails */
    cpu_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gpt2_backend *base = &b->base;
    gpt2_backend_init(base, GPT2_BACKEND_CPU, "cpu", m, p, GPT2_F32);
    b->max_rows = gpt2_backend_max_rows(base);
    base->max_chain = 16; /* the same contract; the steps run one after another */
    base->eval = cpu_eval;
    base->can_draw = cpu_can_draw;
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
    size_t kv_row = (size_t)hp->n_embd * gpt2_dtype_size(base->params.kv_type);
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
    if (gpt2_graph_build(&b->graph_all, m, true) || gpt2_graph_build(&b->graph_last, m, false)) goto oom;
    if (why) *why = GPT2_WHY_NONE;
    return base;
oom:
    snprintf(err, errlen,
             "cpu backend: out of memory allocating activations and KV cache (%d layers x %d positions x %d "
             "slots)",
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

int gpt2_backend_cpu_default_threads(void) { return cpu_default_threads(); }
