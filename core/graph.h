/* graph.h - the GPT-2 forward pass, described once, executed by every backend.
 *
 * A step feeds n new tokens at positions n_past .. n_past+n-1 through the model. Its description is
 * a flat list of nodes over a handful of activation buffers, each [n][width] f32:
 *
 *     X      = embed(ids, n_past)                          residual stream  [n][E]
 *     for each layer l:
 *       XN   = layernorm(X; ln1)                                            [n][E]
 *       QKV  = XN . attn_w^T + attn_b                                       [n][3E]
 *       ATT  = attention(QKV, cache l, n_past)   (stores K,V then attends)  [n][E]
 *       X    = ATT . proj_w^T + proj_b + X       (residual in the epilogue)
 *       XN   = layernorm(X; ln2)
 *       H    = gelu(XN . fc_w^T + fc_b)          (gelu in the epilogue)     [n][4E]
 *       X    = H . fc2_w^T + fc2_b + X
 *     XN     = layernorm(X; ln_f)
 *     LOGITS = XN[rows] . lm_head^T              (all rows, or the last)    [rows][V]
 *
 * A backend walks the nodes in order; what it may fuse or reorder is its own business, but the
 * result must match this list node for node (tests compare every backend's logits against
 * tests/ref_gpt2.h, an independent float64 forward pass, and each op against its float64 reference).
 */
#ifndef VKG_GRAPH_H
#define VKG_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"
#include "epilogue.h"

typedef enum gpt2_op {
    GPT2_OP_EMBED,     /* out = wte[ids] + wpe[n_past + t] */
    GPT2_OP_LAYERNORM, /* out = layernorm(in) * w + b */
    GPT2_OP_MATMUL,    /* out = epilogue(in . w^T) */
    GPT2_OP_ATTENTION, /* out = attention(in = QKV) over the layer's KV cache */
    GPT2_OP_COUNT
} gpt2_op;

typedef enum gpt2_buf {
    GPT2_BUF_X,      /* residual stream [n][E] */
    GPT2_BUF_XN,     /* normalised [n][E] */
    GPT2_BUF_QKV,    /* [n][3E] */
    GPT2_BUF_ATT,    /* [n][E] */
    GPT2_BUF_H,      /* MLP hidden [n][4E] */
    GPT2_BUF_LOGITS, /* [rows][V] */
    GPT2_BUF_COUNT
} gpt2_buf;

/* Every step ends with these nodes: ln_f and the LM head. A step whose logits nobody reads (a
 * prompt chunk before the last) stops before them. */
#define GPT2_HEAD_NODES 2

/* Matmul epilogue flags: GPT2_EPI_* of epilogue.h (the header the shaders include too). */

typedef struct gpt2_node {
    gpt2_op op;           /* what to do */
    gpt2_buf in, out;     /* activation buffers read and written */
    const gpt2_tensor *w; /* matmul weight, layernorm gain, embed wte */
    const gpt2_tensor *b; /* matmul bias, layernorm bias, embed wpe; NULL if none */
    int epilogue;         /* matmul: GPT2_EPI_* flags */
    int layer;            /* attention: KV cache of this layer; else the layer or -1 */
    bool last_row_only;   /* matmul: read only the last row of in, write one row of out */
    char label[24];       /* "L3.qkv", for profiles and errors */
} gpt2_node;

typedef struct gpt2_graph {
    gpt2_node *nodes; /* in execution order */
    int n_nodes;      /* count */
    bool all_logits;  /* LOGITS holds every row (true) or the last one (false) */
} gpt2_graph;

/* Builds the step description for model m. Returns 0, or -1 on allocation failure. */
int gpt2_graph_build(gpt2_graph *g, const gpt2_model *m, bool all_logits);
void gpt2_graph_free(gpt2_graph *g);

/* Width (floats per row) of an activation buffer. */
int gpt2_buf_width(const gpt2_hparams *hp, gpt2_buf b);
const char *gpt2_op_name(gpt2_op op);
const char *gpt2_buf_name(gpt2_buf b);

#endif
