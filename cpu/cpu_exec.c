/* cpu_exec.c - one graph node on the CPU (see cpu_exec.h). */
#include "cpu_exec.h"

int cpu_exec_node(const cpu_step *s, const gpt2_node *nd)
{
    const gpt2_hparams *hp = &s->model->hp;
    const int E = hp->n_embd;
    float *in = s->buf[nd->in], *out = s->buf[nd->out];
    switch (nd->op) {
    case GPT2_OP_EMBED:
        for (int t = 0; t < s->n; t++)
            cpu_embed(out + (size_t)t * E, nd->w, nd->b, s->ids + t, 1, s->row_pos[t]);
        break;
    case GPT2_OP_LAYERNORM: cpu_layernorm(out, in, nd->w->data, nd->b->data, s->n, E, hp->ln_eps); break;
    case GPT2_OP_MATMUL: {
        int ldx = gpt2_buf_width(hp, nd->in), ldy = gpt2_buf_width(hp, nd->out);
        int rows = s->n;
        if (nd->last_row_only) {
            in += (size_t)(s->n - 1) * ldx;
            rows = 1;
        }
        return cpu_matmul(out, ldy, in, ldx, nd->w, nd->b ? nd->b->data : NULL, rows, nd->epilogue,
                          (int)hp->gelu, s->pool);
    }
    case GPT2_OP_ATTENTION:
        /* Every row stores its K/V first, then attends over its own sequence's positions
         * 0..row_pos[t]: causal attention for a prompt chunk, per-sequence for a batch. */
        cpu_attention_rows(out, in, s->kcache[nd->layer], s->vcache[nd->layer], s->kv_type, hp->n_ctx, s->n,
                           s->row_base, s->row_pos, hp->n_head, E / hp->n_head, s->pool);
        break;
    default: break;
    }
    return 0;
}
