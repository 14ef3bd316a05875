/* cpu_exec.c - one graph node on the CPU (see cpu_exec.h). */
#include "cpu_exec.h"

void cpu_exec_node(const cpu_step *s, const gpt2_node *nd)
{
    const gpt2_hparams *hp = &s->model->hp;
    const int E = hp->n_embd;
    float *in = s->buf[nd->in], *out = s->buf[nd->out];
    switch (nd->op) {
    case GPT2_OP_EMBED:
        if (s->row_pos)
            for (int t = 0; t < s->n; t++)
                cpu_embed(out + (size_t)t * E, nd->w, nd->b, s->ids + t, 1, s->row_pos[t]);
        else
            cpu_embed(out, nd->w, nd->b, s->ids, s->n, s->n_past);
        break;
    case GPT2_OP_LAYERNORM:
        cpu_layernorm(out, in, nd->w->data, nd->b->data, s->n, E, hp->ln_eps);
        break;
    case GPT2_OP_MATMUL: {
        int ldx = gpt2_buf_width(hp, nd->in), ldy = gpt2_buf_width(hp, nd->out);
        int rows = s->n;
        if (nd->last_row_only) { in += (size_t)(s->n - 1) * ldx; rows = 1; }
        cpu_matmul(out, ldy, in, ldx, nd->w, nd->b ? nd->b->data : NULL, rows, nd->epilogue,
                   (int)hp->gelu, s->pool);
        break;
    }
    case GPT2_OP_ATTENTION:
        if (s->row_pos) {
            cpu_attention_rows(out, in, s->kcache[nd->layer], s->vcache[nd->layer], s->kv_type,
                               s->n, s->row_base, s->row_pos, hp->n_head, E / hp->n_head, s->pool);
        } else {
            size_t off = (size_t)s->kv_base * E * vkg_dtype_size(s->kv_type);
            cpu_attention(out, in, (char *)s->kcache[nd->layer] + off,
                          (char *)s->vcache[nd->layer] + off, s->kv_type, s->n, s->n_past,
                          hp->n_head, E / hp->n_head, s->pool);
        }
        break;
    default:
        break;
    }
}
