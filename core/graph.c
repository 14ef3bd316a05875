/* graph.c - builds the node list described in graph.h. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gpt2_node *push(gpt2_graph *g, gpt2_op op, gpt2_buf in, gpt2_buf out, const gpt2_tensor *w,
                       const gpt2_tensor *b, int layer, const char *what)
{
    gpt2_node *n = &g->nodes[g->n_nodes++];
    *n = (gpt2_node){.op = op, .in = in, .out = out, .w = w, .b = b, .layer = layer};
    if (layer >= 0)
        snprintf(n->label, sizeof n->label, "L%d.%s", layer, what);
    else
        snprintf(n->label, sizeof n->label, "%s", what);
    return n;
}

int gpt2_graph_build(gpt2_graph *g, const gpt2_model *m, bool all_logits)
{
    const gpt2_hparams *hp = &m->hp;
    g->n_nodes = 0;
    g->all_logits = all_logits;
    g->nodes = calloc((size_t)hp->n_layer * 7 + 3, sizeof *g->nodes);
    if (!g->nodes) return -1;

    push(g, GPT2_OP_EMBED, GPT2_BUF_X, GPT2_BUF_X, &m->w.wte, &m->w.wpe, -1, "embed");
    for (int l = 0; l < hp->n_layer; l++) {
        const gpt2_layer *L = &m->w.layers[l];
        push(g, GPT2_OP_LAYERNORM, GPT2_BUF_X, GPT2_BUF_XN, &L->ln1_g, &L->ln1_b, l, "ln1");
        push(g, GPT2_OP_MATMUL, GPT2_BUF_XN, GPT2_BUF_QKV, &L->attn_w, &L->attn_b, l, "qkv")->epilogue =
            GPT2_EPI_BIAS;
        push(g, GPT2_OP_ATTENTION, GPT2_BUF_QKV, GPT2_BUF_ATT, NULL, NULL, l, "attn");
        push(g, GPT2_OP_MATMUL, GPT2_BUF_ATT, GPT2_BUF_X, &L->proj_w, &L->proj_b, l, "proj")->epilogue =
            GPT2_EPI_BIAS | GPT2_EPI_RESIDUAL;
        push(g, GPT2_OP_LAYERNORM, GPT2_BUF_X, GPT2_BUF_XN, &L->ln2_g, &L->ln2_b, l, "ln2");
        push(g, GPT2_OP_MATMUL, GPT2_BUF_XN, GPT2_BUF_H, &L->fc_w, &L->fc_b, l, "fc")->epilogue =
            GPT2_EPI_BIAS | GPT2_EPI_GELU;
        push(g, GPT2_OP_MATMUL, GPT2_BUF_H, GPT2_BUF_X, &L->fc2_w, &L->fc2_b, l, "fc2")->epilogue =
            GPT2_EPI_BIAS | GPT2_EPI_RESIDUAL;
    }
    push(g, GPT2_OP_LAYERNORM, GPT2_BUF_X, GPT2_BUF_XN, &m->w.ln_f_g, &m->w.ln_f_b, -1, "ln_f");
    push(g, GPT2_OP_MATMUL, GPT2_BUF_XN, GPT2_BUF_LOGITS, &m->w.lm_head, NULL, -1, "lm_head")->last_row_only =
        !all_logits;
    return 0;
}

void gpt2_graph_free(gpt2_graph *g)
{
    free(g->nodes);
    g->nodes = NULL;
    g->n_nodes = 0;
}

int gpt2_buf_width(const gpt2_hparams *hp, gpt2_buf b)
{
    switch (b) {
    case GPT2_BUF_QKV: return 3 * hp->n_embd;
    case GPT2_BUF_H: return 4 * hp->n_embd;
    case GPT2_BUF_LOGITS: return hp->n_vocab;
    default: return hp->n_embd;
    }
}

const char *gpt2_op_name(gpt2_op op)
{
    static const char *names[] = {"embed", "layernorm", "matmul", "attention"};
    return op < GPT2_OP_COUNT ? names[op] : "?";
}

const char *gpt2_buf_name(gpt2_buf b)
{
    static const char *names[] = {"X", "XN", "QKV", "ATT", "H", "LOGITS"};
    return b < GPT2_BUF_COUNT ? names[b] : "?";
}
