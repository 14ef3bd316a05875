/* backend_vk.c - the Vulkan backend: executes the graph (core/graph.h) on a GPU.
 *
 * Weights are uploaded once; the KV cache and every activation buffer live on the device. Each step
 * shape (number of tokens, what is read back) is recorded once into command sequences and replayed:
 * the values that change per step (n_past, n, token ids, sampling settings) sit in a small
 * host-visible buffer that the host writes and each recorded sequence first copies into a
 * device-local mirror, which the shaders read, so nothing is re-recorded per token and no kernel
 * reads them across PCIe. Nodes the device cannot or must not run
 * (VKGPT2_CPU_OPS) split a step into GPU segments with a CPU node between them, moving just the
 * buffers that node reads and writes.
 *
 * The KV cache holds n_slots sequences ([slot * n_ctx + position] rows). A step (core/backend.h's
 * gpt2_step) is one sequence, whose rows sit in one slot (the step parameters' kv_base), or a batch
 * that feeds one token of a different sequence per row, with per-row (slot, position) pairs after
 * the step parameters, so its recording depends only on the number of rows: one recording per
 * width, replayed. Both run through one eval: write the inputs, run the plan's segments, read back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_exec.h"
#include "core/backend.h"
#include "vkengine/vk_engine.h"
#include "vkengine/vk_fault.h"
#include "vk_chain.h"
#include "vk_ops.h"
#include "vkengine/vk_profile.h"
#include "core/notice.h"
#include "variant_guard.h"
#include "vkengine/vk_select.h"

#define MAX_PLANS 8     /* recorded step shapes kept at once */
#define MAX_SEGMENTS 64 /* GPU segments of one step */
#define MAX_CHAIN 16    /* decode steps one submit may chain (gpt2_step.n_chain) */
#define PEN_WINDOW 256  /* recent ids kept on the device per sequence: the longest penalty window */

/* What a step brings back: the argmax id, a sampled id, the last row of logits, or every row. */
typedef enum out_mode { OUT_ARGMAX, OUT_SAMPLE, OUT_LAST, OUT_ALL, OUT_NONE } out_mode;

/* A weight on the device, found by the host pointer of its data. */
typedef struct dev_tensor {
    const void *host; /* tensor data in the model */
    vk_mem mem;       /* device copy */
} dev_tensor;

/* One part of a recorded step: a GPU sequence, or (seq == NULL) one node run on the CPU. */
typedef struct segment {
    vk_seq *seq;               /* GPU work, or NULL */
    const gpt2_node *cpu_node; /* the CPU node when seq is NULL */
} segment;

/* A recorded step shape. */
typedef struct plan {
    int n;                     /* tokens (rows of a batched step) */
    out_mode mode;             /* what comes back */
    bool batched;              /* a batched decode step: one token per sequence */
    int chain;                 /* one-token decode steps recorded back to back (1: a plain step) */
    bool pen;                  /* the repetition penalty runs before each draw */
    segment seg[MAX_SEGMENTS]; /* in order */
    int n_seg;
    uint64_t last_use; /* for eviction */
} plan;

typedef struct vk_backend {
    gpt2_backend base;                /* must be first */
    vk_engine *e;                     /* device */
    vk_ops *ops;                      /* shader variants */
    gpt2_graph graph_all, graph_last; /* step descriptions */
    dev_tensor *w;                    /* uploaded weights */
    int n_w;
    int max_rows;                /* max(n_batch, n_slots): rows of the widest step */
    vk_mem act[GPT2_BUF_COUNT];  /* activations, max_rows rows each */
    vk_mem *kc, *vc;             /* per layer KV cache [n_slots * n_ctx][E] */
    vk_mem scratch;              /* attention partials (max_rows rows of them) */
    vk_mem params;               /* host-visible: the per-step inputs below, written by the host */
    vk_mem params_dev;           /* device-local mirror of params, which the shaders read: copied
                                    from params at the start of every recorded sequence, so a
                                    discrete GPU does not read them across PCIe in every kernel */
    VkDeviceSize params_bytes;   /* bytes of params (and of the mirror) */
    vk_mem step, step_dev;       /* views of params / params_dev: vk_step_params +
                                    vk_step_row[max_rows] */
    vk_mem ids, ids_dev;         /* views: int32[max_rows] */
    vk_mem sparams, sparams_dev; /* views: vk_sample_params, one per sequence of the step (one per
                                    chained step) */
    VkDeviceSize plain_bytes;    /* bytes of params a step without chain or penalty needs (the
                                    regions above); the chain region follows */
    vk_mem csteps, csteps_dev;   /* views: vk_step_params[MAX_CHAIN], chained step k's parameters
                                    (the host writes step 0's, chain.comp the others) */
    vk_mem live, live_dev;       /* views: uint32[MAX_CHAIN + 1], whether chained step k runs (the
                                    conditional-rendering predicates; the host writes 1, 0, 0 ...) */
    vk_mem ccfg, ccfg_dev;       /* views: vk_chain_cfg */
    vk_mem pen, pen_dev;         /* views: vk_penalty_params, one per sequence */
    vk_mem hist, hist_dev;       /* views: uint32[max_rows][PEN_WINDOW + MAX_CHAIN], per sequence
                                    its last PEN_WINDOW ids (0xffffffff-padded), then each chained
                                    step's pick */
    VkDeviceAddress rec_step;    /* what the node being recorded reads as its step parameters */
    VkDeviceAddress rec_ids;     /* ... and as its token ids */
    double *span_t0, *span_ms;   /* params.gpu_timing: a sequence's dispatch starts (GPU ns) and
                                    durations (ms), span_max of each */
    int span_max;
    vk_mem readback;             /* host-visible logits [max_rows][V] */
    vk_mem picks;                /* host-visible uint32[max_rows]: each sequence's pick */
    plan plans[MAX_PLANS];       /* recorded step shapes */
    uint64_t clock;              /* plan use counter */
    bool cpu_op[GPT2_OP_COUNT];  /* ops forced onto the CPU */
    bool fuse;                   /* lower to the fused kernels (VKGPT2_FUSE=0: one dispatch per
                                    node, the reference plan) */
    cpu_pool *pool;              /* CPU threads for fallback nodes */
    float *host[GPT2_BUF_COUNT]; /* host copies of activations for CPU nodes */
    void **host_kc, **host_vc;   /* host KV cache when attention runs on the CPU */
} vk_backend;

/* ---- weights ---- */

static VkDeviceAddress weight_addr(const vk_backend *b, const gpt2_tensor *t)
{
    if (!t) return 0;
    for (int i = 0; i < b->n_w; i++)
        if (b->w[i].host == t->data) return b->w[i].mem.addr;
    return 0;
}

static int upload_tensor(vk_backend *b, const gpt2_tensor *t, char *err, size_t errlen)
{
    if (!t || !t->data || weight_addr(b, t)) return 0; /* absent, or already there (tied wte) */
    dev_tensor *d = &b->w[b->n_w];
    d->host = t->data;
    if (vk_mem_alloc(b->e, &d->mem, t->nbytes, VKE_MEM_DEVICE, err, errlen)) return -1;
    b->n_w++;
    b->base.weights_bytes += t->nbytes;
    if (vk_upload(b->e, &d->mem, 0, t->data, t->nbytes)) {
        const char *why = vk_mem_staging_error();
        snprintf(err, errlen, "uploading weights to the device failed%s%s", *why ? ": " : "", why);
        return -1;
    }
    return 0;
}

/* ---- recording ---- */

/* Whether node nd runs on the device (else on the CPU: VKGPT2_CPU_OPS). */
static bool on_gpu(const vk_backend *b, const gpt2_node *nd)
{
    /* Every weight type runs here: f32, f16 and the block formats q4_0 ... q8_0 (matvec_q,
     * matmul_tiled_q and embed dequantize in the shader). */
    return nd->op < GPT2_OP_COUNT && !b->cpu_op[nd->op];
}

static VkDeviceAddress act(const vk_backend *b, gpt2_buf buf, int row)
{
    const gpt2_hparams *hp = &b->base.model->hp;
    return b->act[buf].addr + (VkDeviceSize)row * gpt2_buf_width(hp, buf) * sizeof(float);
}

/* Records node nd for n tokens (rows of a batched step) into s, followed by the barrier the next
 * node needs. exact: the step returns every row's logits, so its matmuls read x as f32. */
static void record_node(vk_backend *b, vk_seq *s, const gpt2_node *nd, int n, bool batched, bool exact)
{
    const gpt2_hparams *hp = &b->base.model->hp;
    const int E = hp->n_embd;
    switch (nd->op) {
    case GPT2_OP_EMBED:
        vk_op_embed(b->ops, s, act(b, nd->out, 0), weight_addr(b, nd->w), nd->w->type, weight_addr(b, nd->b),
                    nd->b->type, b->rec_ids, b->rec_step, n, E);
        break;
    case GPT2_OP_LAYERNORM:
        vk_op_layernorm(b->ops, s, act(b, nd->out, 0), act(b, nd->in, 0), weight_addr(b, nd->w),
                        weight_addr(b, nd->b), n, E, hp->ln_eps);
        break;
    case GPT2_OP_MATMUL: {
        int rows_in = nd->last_row_only ? 1 : n;
        /* The LM head and every matmul of an all-logits step keep x in f32 (no coopmat kernel,
         * which rounds x to f16): logits keep the plain kernels' accuracy. */
        vk_ops_set_exact_x(b->ops, exact || nd->out == GPT2_BUF_LOGITS);
        vk_op_matmul(b->ops, s, act(b, nd->out, 0), gpt2_buf_width(hp, nd->out),
                     act(b, nd->in, nd->last_row_only ? n - 1 : 0), gpt2_buf_width(hp, nd->in),
                     weight_addr(b, nd->w), nd->w->type, (int)nd->w->ne[1], (int)nd->w->ne[0],
                     weight_addr(b, nd->b), rows_in, nd->epilogue, (int)hp->gelu);
        vk_ops_set_exact_x(b->ops, false);
        break;
    }
    case GPT2_OP_ATTENTION:
        if (n > 1 && !batched) { /* one-token decode rows store their own K/V inside attention */
            vk_op_kv_store(b->ops, s, b->kc[nd->layer].addr, b->vc[nd->layer].addr, b->base.params.kv_type,
                           act(b, nd->in, 0), b->rec_step, n, E);
            /* Attention reads the K/V rows kv_store just wrote. */
            vk_seq_barrier(s);
        }
        if (batched)
            vk_op_attention_rows(b->ops, s, act(b, nd->out, 0), act(b, nd->in, 0), b->kc[nd->layer].addr,
                                 b->vc[nd->layer].addr, b->base.params.kv_type, b->rec_step, n, hp->n_head,
                                 E / hp->n_head, hp->n_ctx, b->scratch.addr);
        else
            vk_op_attention(b->ops, s, act(b, nd->out, 0), act(b, nd->in, 0), b->kc[nd->layer].addr,
                            b->vc[nd->layer].addr, b->base.params.kv_type, b->rec_step, n, hp->n_head,
                            E / hp->n_head, hp->n_ctx, b->scratch.addr);
        break;
    default: break;
    }
    /* Every node reads what the node before it wrote (the graph is a chain through X/XN/...). */
    vk_seq_barrier(s);
}

/* Whether some node of g->nodes[from .. to) reads buffer buf before one overwrites it. */
static bool buf_read_later(const gpt2_graph *g, int from, int to, gpt2_buf buf)
{
    for (int j = from; j < to; j++) {
        const gpt2_node *nd = &g->nodes[j];
        if (nd->op != GPT2_OP_EMBED && nd->in == buf) return true;
        if (nd->out == buf) return nd->op == GPT2_OP_MATMUL && (nd->epilogue & GPT2_EPI_RESIDUAL);
    }
    return false;
}

/* The fused lowering at node i of g (run before record_node): a layernorm whose only reader is the
 * matmul after it, optionally preceded by the embedding that feeds it, becomes one vk_op_ln_matmul
 * dispatch (the normalised rows are never stored), followed by the barrier the next node needs.
 * Returns how many nodes it recorded (3, 2), or 0 when the pattern is not there or the fused
 * kernel cannot serve it (prefill sizes, a node on the CPU, rows too wide for shared memory). */
static int record_fused(vk_backend *b, vk_seq *s, const gpt2_graph *g, int i, int n_nodes, int n, bool exact)
{
    const gpt2_hparams *hp = &b->base.model->hp;
    const gpt2_node *emb = g->nodes[i].op == GPT2_OP_EMBED ? &g->nodes[i] : NULL;
    int k = emb ? i + 1 : i;
    if (k + 1 >= n_nodes) return 0;
    const gpt2_node *ln = &g->nodes[k], *mm = &g->nodes[k + 1];
    if (ln->op != GPT2_OP_LAYERNORM || mm->op != GPT2_OP_MATMUL || mm->in != ln->out || mm->out == ln->in ||
        (emb && (ln->in != emb->out || mm->last_row_only)))
        return 0;
    if ((emb && !on_gpu(b, emb)) || !on_gpu(b, ln) || !on_gpu(b, mm) ||
        buf_read_later(g, k + 2, n_nodes, ln->out))
        return 0;
    int rows_in = mm->last_row_only ? 1 : n, E = hp->n_embd;
    vk_ops_set_exact_x(b->ops, exact || mm->out == GPT2_BUF_LOGITS);
    bool fits = (int)mm->w->ne[0] == E && vk_op_ln_matmul_fits(b->ops, rows_in, E, mm->w->type);
    if (fits) {
        vk_embed_src es = {0};
        if (emb)
            es = (vk_embed_src){weight_addr(b, emb->w), emb->w->type, weight_addr(b, emb->b),
                                emb->b->type,           b->rec_ids,   b->rec_step};
        vk_op_ln_matmul(b->ops, s, act(b, mm->out, 0), gpt2_buf_width(hp, mm->out),
                        act(b, ln->in, mm->last_row_only ? n - 1 : 0), gpt2_buf_width(hp, ln->in),
                        weight_addr(b, ln->w), weight_addr(b, ln->b), hp->ln_eps, weight_addr(b, mm->w),
                        mm->w->type, (int)mm->w->ne[1], E, weight_addr(b, mm->b), rows_in, mm->epilogue,
                        (int)hp->gelu, emb ? &es : NULL);
    }
    vk_ops_set_exact_x(b->ops, false);
    if (!fits) return 0;
    /* The next node reads what the fused dispatch wrote (the matmul's output, the embedded rows). */
    vk_seq_barrier(s);
    return emb ? 3 : 2;
}

/* Records node i of g, fused with the nodes after it where the fused lowering applies (b->fuse);
 * returns how many nodes it recorded. */
static int record_at(vk_backend *b, vk_seq *s, const gpt2_graph *g, int i, int n_nodes, int n, bool batched,
                     bool exact)
{
    int fused = b->fuse ? record_fused(b, s, g, i, n_nodes, n, exact) : 0;
    if (fused) return fused;
    record_node(b, s, &g->nodes[i], n, batched, exact);
    return 1;
}

static void plan_free(plan *p)
{
    for (int i = 0; i < p->n_seg; i++) vk_seq_destroy(p->seg[i].seq);
    memset(p, 0, sizeof *p);
}

/* Ids per sequence in hist: the penalty window, then one pick per chained step. */
#define HIST_STRIDE (PEN_WINDOW + MAX_CHAIN)

/* Records the draw (or argmax) at the end of a step into cur: the penalty first when p->pen, then
 * each sequence's pick into out (rows picks of uint32; k: the chained step, whose sampling
 * settings are the k-th). */
static void record_pick(vk_backend *b, vk_seq *cur, const plan *p, int rows, int k, VkDeviceAddress out)
{
    const gpt2_hparams *hp = &b->base.model->hp;
    VkDeviceAddress logits = act(b, GPT2_BUF_LOGITS, 0);
    if (p->pen) {
        vk_op_penalty_rows(b->e, cur, logits, b->hist_dev.addr, b->pen_dev.addr, hp->n_vocab, rows,
                           HIST_STRIDE, PEN_WINDOW, k);
        /* The draw reads the logits the penalty rewrote. */
        vk_seq_barrier(cur);
    }
    VkDeviceAddress sp = b->sparams_dev.addr + (VkDeviceSize)k * sizeof(vk_sample_params);
    if (p->mode == OUT_SAMPLE)
        vk_op_sample_rows(b->ops, cur, out, logits, sp, hp->n_vocab, rows);
    else
        vk_op_argmax_rows(b->ops, cur, out, logits, hp->n_vocab, rows);
}

/* Records a chain plan: p->chain one-token decode steps back to back in one sequence. Step k
 * embeds the id step k - 1 drew into hist (the host writes step 0's input before it), reads its
 * parameters from csteps[k] (chain.comp advances n_past) and runs only while live[k] is set
 * (conditional rendering: after a stop id or past the limit the steps do no work). At the end
 * the picks go to the host-visible picks buffer (0xffffffff for steps that did not run). Every
 * node must run on the device. */
static vk_seq *record_chain(vk_backend *b, const plan *p, vk_seq *reuse)
{
    const gpt2_graph *g = &b->graph_last;
    const int K = p->chain;
    vk_seq *cur = reuse ? reuse : vk_seq_create(b->e, K * (4 * g->n_nodes + 12) + 8);
    if (!cur) return NULL;
    vk_seq_set_timing(cur, b->base.prof != NULL || b->base.params.gpu_timing);
    vk_seq_begin(cur);
    /* The inputs to the device-local mirror (see plan_record), with the chain region: the hist
     * row of the sequence, the predicates, the settings. */
    vk_seq_copy(cur, &b->params, 0, &b->params_dev, 0,
                b->hist.offset - b->params.offset + HIST_STRIDE * sizeof(uint32_t));
    VkDeviceAddress hist = b->hist_dev.addr, steps = b->csteps_dev.addr;
    for (int k = 0; k < K; k++) {
        if (k > 0)
            vk_seq_cond_begin(cur, &b->params_dev,
                              b->live_dev.offset - b->params_dev.offset + (VkDeviceSize)k * sizeof(uint32_t));
        b->rec_step = steps + (VkDeviceSize)k * sizeof(vk_step_params);
        b->rec_ids = hist + (VkDeviceSize)(PEN_WINDOW - 1 + k) * sizeof(uint32_t);
        for (int i = 0; i < g->n_nodes;) i += record_at(b, cur, g, i, g->n_nodes, 1, false, false);
        record_pick(b, cur, p, 1, k, hist + (VkDeviceSize)(PEN_WINDOW + k) * sizeof(uint32_t));
        /* The link reads the pick; the next step's embed and penalty read it too. */
        vk_seq_barrier(cur);
        if (k + 1 < K) {
            vk_op_chain_link(b->e, cur, hist, b->rec_step, b->rec_step + sizeof(vk_step_params),
                             b->live_dev.addr, b->ccfg_dev.addr, PEN_WINDOW, k);
            /* Step k + 1 reads the parameters the link wrote (its predicate: vk_seq_cond_begin's
             * own barrier). */
            vk_seq_barrier(cur);
        }
        if (k > 0) vk_seq_cond_end(cur);
    }
    b->rec_step = b->step_dev.addr;
    b->rec_ids = b->ids_dev.addr;
    vk_seq_copy(cur, &b->params_dev,
                b->hist_dev.offset - b->params_dev.offset + PEN_WINDOW * sizeof(uint32_t), &b->picks, 0,
                (VkDeviceSize)K * sizeof(uint32_t));
    if (vk_seq_end(cur)) {
        vk_seq_destroy(cur);
        return NULL;
    }
    return cur;
}

/* Records the step shape of p (n, mode, batched, chain, pen) as segments. A plan that already holds
 * this shape (only under params.rerecord) is recorded again into its own command buffers, as a
 * re-recording engine would. A batched step computes every row's logits and brings back each row's
 * pick (into picks) or all of them. */
static int plan_record(vk_backend *b, plan *p, char *err, size_t errlen)
{
    const gpt2_hparams *hp = &b->base.model->hp;
    const int n = p->n;
    const out_mode mode = p->mode;
    const bool batched = p->batched;
    const gpt2_graph *g = mode == OUT_ALL || batched ? &b->graph_all : &b->graph_last;
    vk_seq *reuse[MAX_SEGMENTS];
    int n_reuse = 0;
    for (int i = 0; i < p->n_seg; i++)
        if (p->seg[i].seq) reuse[n_reuse++] = p->seg[i].seq;
    p->n_seg = 0;
    vk_seq *cur = NULL;
    int used = 0;
    b->rec_step = b->step_dev.addr;
    b->rec_ids = b->ids_dev.addr;
    if (p->chain > 1) {
        vk_seq *c = record_chain(b, p, n_reuse ? reuse[used++] : NULL);
        if (!c) goto fail;
        p->seg[p->n_seg++] = (segment){.seq = c};
        b->base.counters.decode_cmdbuf_records++;
        /* Per token: the chain's dispatches and barriers over its steps. */
        b->base.counters.dispatches_per_token = (uint64_t)vk_seq_dispatches(c) / (uint64_t)p->chain;
        b->base.counters.barriers_per_token = (uint64_t)vk_seq_barriers(c) / (uint64_t)p->chain;
        while (used < n_reuse) vk_seq_destroy(reuse[used++]);
        return 0;
    }
    /* Plans with a penalty read their sequences' hist rows too. */
    VkDeviceSize copy = p->pen
        ? b->hist.offset - b->params.offset + (VkDeviceSize)(batched ? n : 1) * HIST_STRIDE * sizeof(uint32_t)
        : b->plain_bytes;
    int n_nodes = mode == OUT_NONE ? g->n_nodes - GPT2_HEAD_NODES : g->n_nodes; /* cache only */
    for (int i = 0; i <= n_nodes; i++) {
        const gpt2_node *nd = i < n_nodes ? &g->nodes[i] : NULL;
        bool gpu = nd && on_gpu(b, nd);
        if (gpu && !cur) {
            cur = used < n_reuse ? reuse[used++] : vk_seq_create(b->e, 4 * g->n_nodes + 8);
            if (!cur) goto fail;
            vk_seq_set_timing(cur,
                              b->base.prof != NULL || b->base.params.gpu_timing); /* profiles, benchmarks:
                                                                                 timestamps per dispatch */
            vk_seq_begin(cur);
            /* The step's inputs (positions, ids, sampling settings), written by the host into
             * host-visible memory before the submit, go to their device-local mirror first: one
             * small transfer instead of dependent PCIe reads in every embed, kv_store and
             * attention of the step. vk_seq_copy's barrier after it makes the copied bytes
             * visible to the shaders (and indirect reads) that follow; its barrier before it
             * orders the copy after the previous replay's reads of the mirror. */
            vk_seq_copy(cur, &b->params, 0, &b->params_dev, 0, copy);
        }
        if (gpu) {
            i += record_at(b, cur, g, i, n_nodes, n, batched, mode == OUT_ALL) - 1;
            continue;
        }
        bool last_node_done = !nd;
        if (cur) {
            if (last_node_done && mode != OUT_NONE) {
                /* The tail of the step: bring back what the caller asked for. */
                int rows = mode == OUT_ALL ? n : 1;
                if (mode == OUT_ARGMAX || mode == OUT_SAMPLE)
                    record_pick(b, cur, p, batched ? n : 1, 0, b->picks.addr);
                else
                    vk_seq_copy(cur, &b->act[GPT2_BUF_LOGITS], 0, &b->readback, 0,
                                (VkDeviceSize)rows * hp->n_vocab * sizeof(float));
            }
            if (vk_seq_end(cur)) {
                vk_seq_destroy(cur);
                goto fail;
            }
            if (p->n_seg == MAX_SEGMENTS) {
                vk_seq_destroy(cur);
                goto fail;
            }
            p->seg[p->n_seg++] = (segment){.seq = cur};
            cur = NULL;
        }
        if (nd) {
            if (p->n_seg == MAX_SEGMENTS) goto fail;
            p->seg[p->n_seg++] = (segment){.cpu_node = nd};
        }
    }
    if (batched)
        b->base.counters.batch_cmdbuf_records++;
    else if (n == 1)
        b->base.counters.decode_cmdbuf_records++;
    else
        b->base.counters.prefill_cmdbuf_records++;
    if (n == 1 && mode != OUT_ALL && mode != OUT_NONE && !batched && !p->pen) {
        uint64_t d = 0, br = 0;
        for (int i = 0; i < p->n_seg; i++)
            if (p->seg[i].seq) {
                d += vk_seq_dispatches(p->seg[i].seq);
                br += vk_seq_barriers(p->seg[i].seq);
            }
        b->base.counters.dispatches_per_token = d;
        b->base.counters.barriers_per_token = br;
    }
    while (used < n_reuse) vk_seq_destroy(reuse[used++]);
    return 0;
fail:
    snprintf(err, errlen, "vulkan backend: recording a %d-token step failed", n);
    while (used < n_reuse) vk_seq_destroy(reuse[used++]);
    plan_free(p);
    return -1;
}

/* The plan of a step shape (key: n, mode, batched, chain, pen), recorded on first use. */
static plan *plan_get(vk_backend *b, const plan *key, char *err, size_t errlen)
{
    plan *victim = &b->plans[0];
    for (int i = 0; i < MAX_PLANS; i++) {
        plan *p = &b->plans[i];
        if (p->n_seg && p->n == key->n && p->mode == key->mode && p->batched == key->batched &&
            p->chain == key->chain && p->pen == key->pen) {
            p->last_use = ++b->clock;
            if (b->base.params.rerecord && plan_record(b, p, err, errlen)) return NULL;
            return p;
        }
        if (!p->n_seg || p->last_use < victim->last_use) victim = p;
    }
    plan_free(victim);
    victim->n = key->n;
    victim->mode = key->mode;
    victim->batched = key->batched;
    victim->chain = key->chain;
    victim->pen = key->pen;
    if (plan_record(b, victim, err, errlen)) return NULL;
    victim->last_use = ++b->clock;
    return victim;
}

/* ---- execution ---- */

/* The one-line error of a sequence s that failed while running `what`: the VkResult, and for a
 * timeout the limit that was reached. */
static void step_error(const vk_backend *b, const vk_seq *s, const char *what, char *err, size_t errlen)
{
    VkResult r = vk_seq_last_error(s);
    if (r == VK_TIMEOUT)
        snprintf(err, errlen,
                 "vulkan backend: the device did not finish %s within %.0f s (%s; the "
                 "limit is VKGPT2_FENCE_TIMEOUT_MS) and is treated as lost",
                 what, (double)vk_engine_fence_timeout_ns(b->e) / 1e9, vk_result_str(r));
    else
        snprintf(err, errlen, "vulkan backend: the device failed while running %s: %s", what,
                 r != VK_SUCCESS ? vk_result_str(r) : "recording or submission failed");
}

/* Runs one node on the CPU: fetches its input and output buffers, runs, sends the output back.
 * Returns 0, -1 when moving the data failed, -2 when the CPU kernel ran out of host memory.
 * Row t of the step: cache rows from row_base[t], position row_pos[t] (cpu_exec.h). */
static int run_cpu_node(vk_backend *b, const gpt2_node *nd, const int32_t *ids, int n, const int *row_base,
                        const int *row_pos)
{
    const gpt2_hparams *hp = &b->base.model->hp;
    int rows_out = nd->last_row_only ? 1 : n;
    size_t in_bytes = (size_t)n * gpt2_buf_width(hp, nd->in) * sizeof(float);
    size_t out_bytes = (size_t)rows_out * gpt2_buf_width(hp, nd->out) * sizeof(float);
    if (nd->op != GPT2_OP_EMBED && vk_download(b->e, &b->act[nd->in], 0, b->host[nd->in], in_bytes))
        return -1;
    if (nd->in != nd->out && (nd->epilogue & GPT2_EPI_RESIDUAL) &&
        vk_download(b->e, &b->act[nd->out], 0, b->host[nd->out], out_bytes))
        return -1;
    b->base.counters.readback_bytes_last += in_bytes;
    cpu_step s = {.model = b->base.model,
                  .ids = ids,
                  .n = n,
                  .kcache = b->host_kc,
                  .vcache = b->host_vc,
                  .kv_type = b->base.params.kv_type,
                  .pool = b->pool,
                  .row_base = row_base,
                  .row_pos = row_pos};
    for (int i = 0; i < GPT2_BUF_COUNT; i++) s.buf[i] = b->host[i];
    if (cpu_exec_node(&s, nd)) return -2; /* host memory, not the device */
    b->base.counters.cpu_fallback_nodes++;
    return vk_upload(b->e, &b->act[nd->out], 0, b->host[nd->out], out_bytes);
}

/* Fills one vk_sample_params from sampler settings (greedy rows, with or without a penalty: top-1,
 * which is the argmax). */
static vk_sample_params sample_params(const gpt2_sampler_params *sp, uint64_t step)
{
    if (!sp || !gpt2_sampler_needs_logits(sp) || sp->temp <= 0)
        return (vk_sample_params){.temp = 1.0f, .top_k = 1, .top_p = 1.0f, .step = (uint32_t)step};
    return (vk_sample_params){.temp = sp->temp,
                              .top_k = (uint32_t)sp->top_k,
                              .top_p = sp->top_p < 1 ? sp->top_p : 1.0f,
                              .step = (uint32_t)step,
                              .seed_lo = (uint32_t)sp->seed,
                              .seed_hi = (uint32_t)(sp->seed >> 32)};
}

/* The one rule for "can the device draw with sp?": greedy always can (the argmax); a draw needs
 * the LM head on the device (the draw runs right after it), a temperature draw the sample
 * shader's top-k range, and a repetition penalty a window of at most PEN_WINDOW recent ids. */
static bool vk_can_draw(const gpt2_backend *base, const gpt2_sampler_params *sp)
{
    const vk_backend *b = (const vk_backend *)base;
    if (!sp || !gpt2_sampler_needs_logits(sp)) return true;
    const gpt2_node *head = &b->graph_all.nodes[b->graph_all.n_nodes - 1];
    if (!on_gpu(b, head)) return false;
    if (gpt2_sampler_penalises(sp) && (sp->repeat_last_n < 0 || sp->repeat_last_n > PEN_WINDOW)) return false;
    return sp->temp <= 0 || (sp->top_k >= 1 && sp->top_k <= VKOPS_SAMPLE_MAX_K);
}

/* Writes sequence i's hist row: the last PEN_WINDOW ids of its history followed by ids[0..n)
 * (0xffffffff before a short history), then 0xffffffff for the chained picks. */
static void write_hist(vk_backend *b, int i, const int32_t *history, int n_history, const int32_t *ids, int n)
{
    uint32_t *row = (uint32_t *)b->hist.map + (size_t)i * HIST_STRIDE;
    for (int j = 0; j < HIST_STRIDE; j++) row[j] = 0xffffffffu;
    int total = n_history + n;
    for (int j = 0; j < PEN_WINDOW && j < total; j++) {
        int at = total - 1 - j; /* from the newest back */
        row[PEN_WINDOW - 1 - j] = (uint32_t)(at >= n_history ? ids[at - n_history] : history[at]);
    }
}

/* The device time of a sequence's last run: from its first timed dispatch's start to its last
 * one's end (0 without timestamps). */
static uint64_t seq_span_ns(vk_backend *b, const vk_seq *s)
{
    int n = vk_seq_timestamps(s, b->span_t0, b->span_max);
    if (n <= 0 || vk_seq_timings(s, b->span_ms, NULL, n) != n) return 0;
    double end = b->span_t0[n - 1] + b->span_ms[n - 1] * 1e6, span = end - b->span_t0[0];
    return span > 0 ? (uint64_t)span : 0;
}

/* The one eval: writes the step's inputs, runs its plan's segments in order (GPU sequences and CPU
 * nodes) and brings back what st->out asks for. */
static int vk_eval(gpt2_backend *base, const gpt2_step *st, char *err, size_t errlen)
{
    vk_backend *b = (vk_backend *)base;
    const gpt2_hparams *hp = &base->model->hp;
    gpt2_step_shape sh;
    if (gpt2_backend_check_step(base, st, &sh, err, errlen)) return -1;
    const int n = st->n;
    /* A draw whose every sequence is greedy without a penalty is the argmax. */
    bool draws = false, pen = false;
    for (int i = 0; st->out == GPT2_STEP_SAMPLE && st->sample && i < sh.n_seq; i++) {
        draws |= st->sample[i] && gpt2_sampler_needs_logits(st->sample[i]);
        pen |= st->sample[i] && gpt2_sampler_penalises(st->sample[i]);
    }
    out_mode mode = st->out == GPT2_STEP_NONE                                 ? OUT_NONE
        : st->out == GPT2_STEP_ALL || (sh.batch && st->out == GPT2_STEP_LAST) ? OUT_ALL
        : st->out == GPT2_STEP_LAST                                           ? OUT_LAST
        : draws                                                               ? OUT_SAMPLE
                                                                              : OUT_ARGMAX;
    /* A chain is recorded for a power of two of steps (fewer run: the limit), so a shorter tail of
     * a generation replays a recording; without conditional rendering the steps past the limit
     * would run, so there it is recorded for exactly the steps asked. */
    int chain = st->n_chain > 1 ? st->n_chain : 1;
    if (chain > 1 && vk_engine_caps(b->e)->cond_render) {
        int c = 2;
        while (c < chain) c *= 2;
        chain = c;
    }
    plan key = {.n = n, .mode = mode, .batched = sh.batch, .chain = chain, .pen = pen};
    plan *p = plan_get(b, &key, err, errlen);
    if (!p) return -1;

    /* The per-step inputs the shaders read: the header (a batch: each row's slot base and
     * position after it), the ids and each sequence's sampling settings. */
    int row_base[n], row_pos[n];
    for (int r = 0; r < n; r++) {
        row_base[r] = st->rows[r].slot * hp->n_ctx;
        row_pos[r] = st->rows[r].pos;
    }
    vk_step_params hdr = {.n_past = sh.batch ? 0 : (uint32_t)sh.n_past,
                          .n = (uint32_t)n,
                          .kv_base = sh.batch ? VKOPS_STEP_BATCHED : (uint32_t)row_base[0]};
    memcpy(b->step.map, &hdr, sizeof hdr);
    if (sh.batch) {
        vk_step_row *rows = (vk_step_row *)((char *)b->step.map + sizeof hdr);
        for (int r = 0; r < n; r++)
            rows[r] = (vk_step_row){.kv_base = (uint32_t)row_base[r], .pos = (uint32_t)row_pos[r]};
    }
    memcpy(b->ids.map, st->ids, (size_t)n * sizeof *st->ids);
    if (mode == OUT_SAMPLE || pen) {
        vk_sample_params *dst = b->sparams.map;
        for (int i = 0; i < sh.n_seq; i++) dst[i] = sample_params(st->sample[i], st->draw ? st->draw[i] : 0);
        for (int k = 1; k < chain; k++) /* chained step k: the next draw of the same stream */
            dst[k] = sample_params(st->sample[0], (st->draw ? st->draw[0] : 0) + (uint64_t)k);
    }
    if (pen || chain > 1) {
        vk_penalty_params *pp = b->pen.map;
        for (int i = 0; i < sh.n_seq; i++) {
            const gpt2_sampler_params *sp = st->sample ? st->sample[i] : NULL;
            bool on = pen && sp && gpt2_sampler_penalises(sp);
            pp[i] = (vk_penalty_params){.penalty = on ? sp->repeat_penalty : 1.0f,
                                        .window = on ? (uint32_t)sp->repeat_last_n : 0};
            if (sh.batch)
                write_hist(b, i, st->history ? st->history[i] : NULL, st->history ? st->n_history[i] : 0,
                           st->ids + i, 1);
            else
                write_hist(b, 0, st->history ? st->history[0] : NULL, st->history ? st->n_history[0] : 0,
                           st->ids, n);
        }
    }
    if (chain > 1) {
        memcpy(b->csteps.map, &hdr, sizeof hdr);
        uint32_t *live = b->live.map;
        for (int k = 0; k <= MAX_CHAIN; k++) live[k] = k == 0;
        *(vk_chain_cfg *)b->ccfg.map = (vk_chain_cfg){
            .limit = (uint32_t)st->n_chain, .stop = st->stop_id < 0 ? 0xffffffffu : (uint32_t)st->stop_id};
    }

    base->counters.cpu_fallback_nodes = 0;
    base->counters.readback_bytes_last = 0;
    bool prof = base->prof && !sh.batch;
    int r;
    for (int i = 0; i < p->n_seg; i++) {
        double prof_t0 = prof ? gpt2_prof_now_us() : 0;
        if (p->seg[i].seq) {
            base->counters.submits++;
            if (vk_seq_run(p->seg[i].seq)) {
                step_error(b, p->seg[i].seq, sh.batch ? "a batched step" : "a step", err, errlen);
                base->failed = true; /* api.c may go on on the CPU */
                return -1;
            }
            if (base->params.gpu_timing) base->counters.gpu_ns += seq_span_ns(b, p->seg[i].seq);
        } else if ((r = run_cpu_node(b, p->seg[i].cpu_node, st->ids, n, row_base, row_pos)) != 0) {
            snprintf(err, errlen,
                     r == -2 ? "vulkan backend: out of host memory in a CPU node"
                             : "vulkan backend: moving data for a CPU node failed");
            return -1;
        }
        if (prof && chain == 1)
            vk_prof_segment(base->prof, b->e, p->seg[i].seq, p->seg[i].cpu_node, prof_t0, n, sh.n_past, hp,
                            base->params.kv_type);
    }
    if (sh.batch) base->counters.batch_steps++;
    if (chain > 1) base->counters.chained_steps += (uint64_t)st->n_chain;

    /* The tail: logits rows or picks, from the device's readback or, when the LM head ran on the
     * CPU, from its host buffer (picks then by the CPU argmax: can_draw refuses draws there). */
    if (mode != OUT_NONE) {
        const gpt2_graph *g = mode == OUT_ALL || sh.batch ? &b->graph_all : &b->graph_last;
        bool head_on_cpu = !on_gpu(b, &g->nodes[g->n_nodes - 1]);
        size_t V = (size_t)hp->n_vocab, rows = mode == OUT_ALL ? (size_t)n : 1;
        const float *src = head_on_cpu ? b->host[GPT2_BUF_LOGITS] : (const float *)b->readback.map;
        if (chain > 1) {
            const uint32_t *pk = b->picks.map;
            /* After the stop id nothing counts (without conditional rendering those steps ran). */
            bool stopped = false;
            for (int k = 0; k < st->n_chain; k++) {
                st->picks[k] = stopped || pk[k] == 0xffffffffu ? -1 : (int32_t)pk[k];
                stopped |= st->picks[k] >= 0 && st->picks[k] == st->stop_id;
            }
            /* Per chained step, as for one step: its id (the chain reads back chain ids at once). */
            base->counters.readback_bytes_last += sizeof(int32_t);
            base->counters.readback_bytes += (size_t)(chain - 1) * sizeof(int32_t);
        } else if (mode == OUT_ARGMAX || mode == OUT_SAMPLE) {
            for (int i = 0; i < sh.n_seq; i++)
                st->picks[i] = head_on_cpu ? cpu_argmax(src + (size_t)i * V, (int)V)
                                           : ((const int32_t *)b->picks.map)[i];
            base->counters.readback_bytes_last += (size_t)sh.n_seq * sizeof(int32_t);
        } else {
            memcpy(st->logits, src, rows * V * sizeof(float));
            if (st->picks) st->picks[0] = cpu_argmax(st->logits + (rows - 1) * V, (int)V);
            base->counters.readback_bytes_last += rows * V * sizeof(float);
        }
    }
    base->counters.readback_bytes += base->counters.readback_bytes_last;
    base->counters.validation_messages = (uint64_t)vk_validation_messages(b->e);
    return 0;
}

/* Copies a slot's first n positions into another slot: 2 x n_layer buffer copies recorded into one
 * sequence and run (not per token: once per shared prompt). */
static int vk_kv_copy(gpt2_backend *base, int dst, int src, int n, char *err, size_t errlen)
{
    vk_backend *b = (vk_backend *)base;
    const gpt2_hparams *hp = &base->model->hp;
    int ns = base->params.n_slots;
    if (dst < 0 || dst >= ns || src < 0 || src >= ns || n < 0 || n > hp->n_ctx) {
        snprintf(err, errlen, "vulkan backend: KV copy of %d positions from slot %d to %d (%d slots)", n, src,
                 dst, ns);
        return -1;
    }
    if (dst == src || n == 0) return 0;
    VkDeviceSize row = (VkDeviceSize)hp->n_embd * gpt2_dtype_size(base->params.kv_type);
    VkDeviceSize so = (VkDeviceSize)src * hp->n_ctx * row, dof = (VkDeviceSize)dst * hp->n_ctx * row;
    vk_seq *q = vk_seq_create(b->e, 4);
    if (!q) {
        snprintf(err, errlen, "vulkan backend: no command buffer for a KV copy");
        return -1;
    }
    vk_seq_begin(q);
    for (int l = 0; l < hp->n_layer; l++) {
        vk_seq_copy(q, &b->kc[l], so, &b->kc[l], dof, (VkDeviceSize)n * row);
        vk_seq_copy(q, &b->vc[l], so, &b->vc[l], dof, (VkDeviceSize)n * row);
    }
    int rc = vk_seq_end(q) || vk_seq_run(q) ? -1 : 0;
    base->counters.submits++;
    if (rc) {
        step_error(b, q, "copying a KV slot", err, errlen);
        base->failed = true;
    }
    vk_seq_destroy(q);
    if (!rc && b->host_kc) /* attention on the CPU keeps its own cache */
        for (int l = 0; l < hp->n_layer; l++) {
            const int hd = hp->n_embd / hp->n_head;
            cpu_kv_copy_slot(b->host_kc[l], base->params.kv_type, hp->n_ctx, hp->n_head, hd, dst, src, n);
            cpu_kv_copy_slot(b->host_vc[l], base->params.kv_type, hp->n_ctx, hp->n_head, hd, dst, src, n);
        }
    return rc;
}

/* ---- life cycle ---- */

/* The bytes [off, off + size) of m as an allocation of their own (not to be freed). */
static vk_mem param_view(const vk_mem *m, VkDeviceSize off, VkDeviceSize size)
{
    vk_mem v = *m;
    v.offset += off;
    v.size = size;
    v.addr += off;
    v.map = m->map ? (char *)m->map + off : NULL;
    return v;
}

/* Refuses up front a model whose weights, KV cache and activations together exceed the largest
 * device-local heap ($VKGPT2_DEVICE_MEM_LIMIT bytes, when set, stands for the heap size). */
static int check_device_memory(const gpt2_model *m, const gpt2_backend_params *p, const vk_caps *caps,
                               char *err, size_t errlen)
{
    const gpt2_hparams *hp = &m->hp;
    uint64_t nb = (uint64_t)(p->n_batch > p->n_slots ? p->n_batch : p->n_slots), E = (uint64_t)hp->n_embd;
    uint64_t weights = gpt2_weights_bytes(m);
    uint64_t kv = 2 * (uint64_t)hp->n_layer * (uint64_t)hp->n_ctx * (uint64_t)p->n_slots * E *
        gpt2_dtype_size(p->kv_type);
    uint64_t act = 0;
    for (int i = 0; i < GPT2_BUF_COUNT; i++) act += nb * (uint64_t)gpt2_buf_width(hp, i) * sizeof(float);
    act += nb * vk_attention_scratch_bytes(hp->n_head, hp->n_embd / hp->n_head, hp->n_ctx);
    uint64_t need = weights + kv + act, heap = caps->device_local_bytes;
    const char *env = getenv("VKGPT2_DEVICE_MEM_LIMIT");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (end != env) heap = v;
    }
    if (heap && need > heap) {
        snprintf(err, errlen,
                 "the model needs %.2f MiB (%llu bytes: weights %llu, KV cache %llu, "
                 "activations %llu) of device memory, but the largest device-local heap holds "
                 "%.2f MiB (%llu bytes)",
                 need / 1048576.0, (unsigned long long)need, (unsigned long long)weights,
                 (unsigned long long)kv, (unsigned long long)act, heap / 1048576.0, (unsigned long long)heap);
        return -1;
    }
    return 0;
}

static int vk_peaks(gpt2_backend *base, double *gbs, double *gflops, char *note, size_t notelen)
{
    return vk_measure_peaks(((vk_backend *)base)->e, gbs, gflops, note, notelen);
}

static void vk_destroy(gpt2_backend *base)
{
    vk_backend *b = (vk_backend *)base;
    if (!b) return;
    for (int i = 0; i < MAX_PLANS; i++) plan_free(&b->plans[i]);
    if (b->e) {
        for (int i = 0; i < b->n_w; i++) vk_mem_free(b->e, &b->w[i].mem);
        for (int i = 0; i < GPT2_BUF_COUNT; i++)
            if (b->act[i].size) vk_mem_free(b->e, &b->act[i]);
        for (int l = 0; b->kc && l < base->model->hp.n_layer; l++) {
            if (b->kc[l].size) vk_mem_free(b->e, &b->kc[l]);
            if (b->vc[l].size) vk_mem_free(b->e, &b->vc[l]);
        }
        vk_mem *m[] = {&b->scratch, &b->params, &b->params_dev, &b->readback, &b->picks};
        for (size_t i = 0; i < sizeof m / sizeof *m; i++)
            if (m[i]->size) vk_mem_free(b->e, m[i]);
    }
    for (int i = 0; i < GPT2_BUF_COUNT; i++) free(b->host[i]);
    for (int l = 0; b->host_kc && l < base->model->hp.n_layer; l++) {
        free(b->host_kc[l]);
        free(b->host_vc[l]);
    }
    free(b->host_kc);
    free(b->host_vc);
    free(b->kc);
    free(b->vc);
    free(b->w);
    free(b->span_t0);
    free(b->span_ms);
    gpt2_graph_free(&b->graph_all);
    gpt2_graph_free(&b->graph_last);
    vk_ops_destroy(b->ops);
    cpu_pool_destroy(b->pool);
    vk_engine_destroy(b->e);
    free(b);
}

/* Parses the cpu_ops list (VKGPT2_CPU_OPS: "embed,layernorm,matmul,attention"; "gelu" and
 * "softmax" name the matmul and attention nodes that contain them), setting forced[op] for each.
 * NULL or "" sets nothing. Returns 0, or -1 with err naming an unknown op. The one parser of the
 * variable. */
static int parse_cpu_ops(const char *list, bool forced[GPT2_OP_COUNT], char *err, size_t errlen)
{
    static const struct {
        const char *name;
        gpt2_op op;
    } names[] = {{"embed", GPT2_OP_EMBED}, {"layernorm", GPT2_OP_LAYERNORM}, {"matmul", GPT2_OP_MATMUL},
                 {"gelu", GPT2_OP_MATMUL}, {"attention", GPT2_OP_ATTENTION}, {"softmax", GPT2_OP_ATTENTION}};
    for (const char *s = list; s && *s;) {
        size_t len = strcspn(s, ",");
        bool found = len == 0;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (strlen(names[i].name) == len && !strncmp(s, names[i].name, len)) {
                forced[names[i].op] = true;
                found = true;
            }
        if (!found) {
            snprintf(err, errlen,
                     "VKGPT2_CPU_OPS: unknown op '%.*s' (known: embed, layernorm, matmul, gelu, attention, "
                     "softmax)",
                     (int)len, s);
            return -1;
        }
        s += len;
        if (*s == ',') s++;
    }
    return 0;
}

/* Why vk_engine_create failed, by asking the loader how many devices there are. */
static gpt2_backend_why engine_failure(void)
{
    char why[256];
    int n = vk_count_devices(why, sizeof why);
    return n < 0 ? GPT2_WHY_NO_LOADER : n == 0 ? GPT2_WHY_NO_DEVICE : GPT2_WHY_DEVICE_FAILED;
}

gpt2_backend *gpt2_backend_vk_create(const gpt2_model *m, const gpt2_backend_params *p, gpt2_backend_why *why,
                                     char *err, size_t errlen)
{
    const gpt2_hparams *hp = &m->hp;
    gpt2_backend_why dummy;
    if (!why) why = &dummy;
    *why = GPT2_WHY_NO_MEMORY; /* every failure below that is not given another reason */
    vk_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gpt2_backend *base = &b->base;
    gpt2_backend_init(base, GPT2_BACKEND_VULKAN, "vulkan", m, p, GPT2_F16);
    b->max_rows = gpt2_backend_max_rows(base);
    base->eval = vk_eval;
    base->can_draw = vk_can_draw;
    base->kv_copy = vk_kv_copy;
    base->destroy = vk_destroy;
    base->peaks = vk_peaks;
    if (parse_cpu_ops(p->cpu_ops, b->cpu_op, err, errlen)) {
        *why = GPT2_WHY_BAD_PARAMS;
        goto fail;
    }
    if (hp->n_embd / hp->n_head > 128) {
        snprintf(err, errlen, "head size %d is larger than the attention shaders' 128",
                 hp->n_embd / hp->n_head);
        *why = GPT2_WHY_UNSUPPORTED;
        goto fail;
    }
    if (vk_engine_create_sel(&b->e, p->device, p->device_name, err, errlen)) {
        *why = engine_failure();
        goto fail;
    }
    if (p->skip_cpu_device && vk_engine_caps(b->e)->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        snprintf(err, errlen, "no GPU: the best Vulkan device, %s, runs on the CPU",
                 vk_engine_caps(b->e)->name);
        *why = GPT2_WHY_CPU_DEVICE;
        goto fail;
    }
    if (!(b->ops = vk_ops_create(b->e, err, errlen))) {
        *why = GPT2_WHY_DEVICE_FAILED;
        goto fail;
    }
    /* No unverified kernel variant is used for real (variant_guard.h). */
    vk_guard_state guard[VKOPS_GUARD_N];
    if (vk_guard_apply(b->e, b->ops, guard, err, errlen)) {
        *why = GPT2_WHY_DEVICE_FAILED;
        goto fail;
    }
    if (p->verbose)
        for (int i = 0; i < VKOPS_GUARD_N; i++)
            gpt2_notice(VKG_NOTICE_INFO, "kernel variant %s: %s (%s)", guard[i].variant,
                        guard[i].on ? "on" : "off", guard[i].how);
    const char *fuse_env = getenv("VKGPT2_FUSE");
    b->fuse = !(fuse_env && strcmp(fuse_env, "0") == 0);
    vk_ops_set_fuse(b->ops, b->fuse);
    snprintf(base->device_name, sizeof base->device_name, "%s", vk_engine_caps(b->e)->name);
    if (p->verbose) {
        char how[256];
#ifdef VKG_HAVE_COOPMAT_KHR
        vk_coopmat_describe(vk_engine_caps(b->e), true, how, sizeof how);
#else
        vk_coopmat_describe(vk_engine_caps(b->e), false, how, sizeof how);
#endif
        gpt2_notice(VKG_NOTICE_INFO, "Vulkan device %s: f16 prefill matmuls run %s", base->device_name, how);
    }
    if (check_device_memory(m, &base->params, vk_engine_caps(b->e), err, errlen)) goto fail;

    /* Weights: every tensor the graph names, once each. */
    if (gpt2_graph_build(&b->graph_all, m, true) || gpt2_graph_build(&b->graph_last, m, false)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    b->w = calloc((size_t)b->graph_all.n_nodes * 2 + 2, sizeof *b->w);
    if (!b->w) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < b->graph_all.n_nodes; i++) {
        const gpt2_node *nd = &b->graph_all.nodes[i];
        if (upload_tensor(b, nd->w, err, errlen) || upload_tensor(b, nd->b, err, errlen)) goto fail;
    }

    /* Activations, KV cache, per-step parameters, readback. */
    size_t nb = (size_t)b->max_rows;
    for (int i = 0; i < GPT2_BUF_COUNT; i++) {
        size_t bytes = nb * (size_t)gpt2_buf_width(hp, i) * sizeof(float);
        if (vk_mem_alloc(b->e, &b->act[i], bytes, VKE_MEM_DEVICE, err, errlen)) goto fail;
        base->scratch_bytes += bytes;
    }
    size_t kv_bytes =
        (size_t)base->params.n_slots * hp->n_ctx * hp->n_embd * gpt2_dtype_size(base->params.kv_type);
    b->kc = calloc((size_t)hp->n_layer, sizeof *b->kc);
    b->vc = calloc((size_t)hp->n_layer, sizeof *b->vc);
    if (!b->kc || !b->vc) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        if (vk_mem_alloc(b->e, &b->kc[l], kv_bytes, VKE_MEM_DEVICE, err, errlen) ||
            vk_mem_alloc(b->e, &b->vc[l], kv_bytes, VKE_MEM_DEVICE, err, errlen))
            goto fail;
        base->kv_bytes += 2 * kv_bytes;
    }
    size_t scratch = nb * vk_attention_scratch_bytes(hp->n_head, hp->n_embd / hp->n_head, hp->n_ctx);
    size_t rb = nb * (size_t)hp->n_vocab * sizeof(float);
    /* Per-step inputs: one host-visible block the host writes and its device-local mirror the
     * shaders read (step header and rows, ids, sampling settings, then the chain region: chained
     * steps' parameters, predicates, chain settings, penalty settings, recent ids; 256-byte
     * aligned views). */
    size_t n_sp = nb > MAX_CHAIN ? nb : MAX_CHAIN;
    VkDeviceSize step_bytes = sizeof(vk_step_params) + nb * sizeof(vk_step_row);
    VkDeviceSize ids_off = (step_bytes + 255) / 256 * 256;
    VkDeviceSize sp_off = ids_off + (nb * sizeof(int32_t) + 255) / 256 * 256;
    b->plain_bytes = sp_off + n_sp * sizeof(vk_sample_params);
    VkDeviceSize cs_off = (b->plain_bytes + 255) / 256 * 256;
    VkDeviceSize live_off = cs_off + MAX_CHAIN * sizeof(vk_step_params);
    VkDeviceSize cfg_off = live_off + (MAX_CHAIN + 1 + 3) / 4 * 16;
    VkDeviceSize pen_off = cfg_off + 16;
    VkDeviceSize hist_off = (pen_off + nb * sizeof(vk_penalty_params) + 255) / 256 * 256;
    b->params_bytes = hist_off + nb * HIST_STRIDE * sizeof(uint32_t);
    if (vk_mem_alloc(b->e, &b->scratch, scratch, VKE_MEM_DEVICE, err, errlen) ||
        vk_mem_alloc(b->e, &b->params, b->params_bytes, VKE_MEM_HOST, err, errlen) ||
        vk_mem_alloc(b->e, &b->params_dev, b->params_bytes, VKE_MEM_DEVICE, err, errlen) ||
        vk_mem_alloc(b->e, &b->readback, rb, VKE_MEM_HOST, err, errlen) ||
        vk_mem_alloc(b->e, &b->picks, (nb > MAX_CHAIN ? nb : MAX_CHAIN) * sizeof(uint32_t), VKE_MEM_HOST, err,
                     errlen))
        goto fail;
    /* The fused decode attention's per-head counters (in scratch) start at zero. */
    if (vk_fill_zero(b->e, &b->scratch, 0, scratch)) {
        snprintf(err, errlen, "clearing the attention scratch on the device failed");
        goto fail;
    }
    b->step = param_view(&b->params, 0, step_bytes);
    b->ids = param_view(&b->params, ids_off, nb * sizeof(int32_t));
    b->sparams = param_view(&b->params, sp_off, n_sp * sizeof(vk_sample_params));
    b->step_dev = param_view(&b->params_dev, 0, step_bytes);
    b->ids_dev = param_view(&b->params_dev, ids_off, nb * sizeof(int32_t));
    b->sparams_dev = param_view(&b->params_dev, sp_off, n_sp * sizeof(vk_sample_params));
    const struct {
        vk_mem *h, *d;
        VkDeviceSize off, size;
    } views[] = {{&b->csteps, &b->csteps_dev, cs_off, MAX_CHAIN * sizeof(vk_step_params)},
                 {&b->live, &b->live_dev, live_off, (MAX_CHAIN + 1) * sizeof(uint32_t)},
                 {&b->ccfg, &b->ccfg_dev, cfg_off, sizeof(vk_chain_cfg)},
                 {&b->pen, &b->pen_dev, pen_off, nb * sizeof(vk_penalty_params)},
                 {&b->hist, &b->hist_dev, hist_off, nb * HIST_STRIDE * sizeof(uint32_t)}};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) {
        *views[i].h = param_view(&b->params, views[i].off, views[i].size);
        *views[i].d = param_view(&b->params_dev, views[i].off, views[i].size);
    }
    /* Chains need every node on the device. */
    bool all_gpu = true;
    for (int i = 0; i < b->graph_all.n_nodes; i++) all_gpu &= on_gpu(b, &b->graph_all.nodes[i]);
    base->max_chain = all_gpu ? MAX_CHAIN : 1;
    if (p->gpu_timing) { /* the longest sequence: a chain of MAX_CHAIN steps */
        b->span_max = MAX_CHAIN * (4 * b->graph_all.n_nodes + 12) + 8;
        b->span_t0 = malloc((size_t)b->span_max * sizeof *b->span_t0);
        b->span_ms = malloc((size_t)b->span_max * sizeof *b->span_ms);
        if (!b->span_t0 || !b->span_ms) goto oom;
    }
    base->scratch_bytes += scratch;

    /* Host side for nodes run on the CPU. */
    bool any_cpu = false;
    for (int i = 0; i < b->graph_all.n_nodes; i++) any_cpu |= !on_gpu(b, &b->graph_all.nodes[i]);
    if (any_cpu) {
        b->pool = cpu_pool_create(p->n_threads);
        for (int i = 0; i < GPT2_BUF_COUNT; i++)
            if (!(b->host[i] = malloc(nb * (size_t)gpt2_buf_width(hp, i) * sizeof(float)))) goto oom;
        if (b->cpu_op[GPT2_OP_ATTENTION]) {
            b->host_kc = calloc((size_t)hp->n_layer, sizeof *b->host_kc);
            b->host_vc = calloc((size_t)hp->n_layer, sizeof *b->host_vc);
            if (!b->host_kc || !b->host_vc) goto oom;
            for (int l = 0; l < hp->n_layer; l++)
                if (!(b->host_kc[l] = calloc(1, kv_bytes)) || !(b->host_vc[l] = calloc(1, kv_bytes)))
                    goto oom;
        }
        if (p->verbose)
            gpt2_notice(VKG_NOTICE_INFO, "some nodes run on the CPU (VKGPT2_CPU_OPS=%s, weight type %s)",
                        p->cpu_ops ? p->cpu_ops : "", gpt2_dtype_name(m->wtype));
    }
    *why = GPT2_WHY_NONE;
    return base;
oom:
    snprintf(err, errlen, "out of host memory for CPU fallback buffers");
fail:
    vk_destroy(base);
    return NULL;
}

int gpt2_backend_vk_list_devices(void *file, char *err, size_t errlen)
{
    return vk_list_devices(file, err, errlen);
}

int gpt2_backend_vk_count_devices(char *err, size_t errlen) { return vk_count_devices(err, errlen); }
