/* embed.c - token + position embedding lookup (wte may be a ggml block format). */
#include "cpu_ops.h"
#include "quant.h"

void cpu_embed(float *x, const gpt2_tensor *wte, const gpt2_tensor *wpe, const int32_t *ids, int n, int pos0)
{
    const size_t d = (size_t)wte->ne[0];
    const size_t trb = gpt2_row_bytes(wte->type, d), prb = gpt2_row_bytes(wpe->type, d);
    for (int t = 0; t < n; t++) {
        const char *tr = (const char *)wte->data + (size_t)ids[t] * trb;
        const char *pr = (const char *)wpe->data + (size_t)(pos0 + t) * prb;
        float *y = x + (size_t)t * d;
        /* gpt2_load: rows in a mapped file may be misaligned */
        if (gpt2_dtype_is_quant(wte->type)) {
            gpt2_dequantize_row(wte->type, tr, y, d);
            for (size_t i = 0; i < d; i++) y[i] += gpt2_load_any(pr, wpe->type, i);
        } else {
            for (size_t i = 0; i < d; i++) y[i] = gpt2_load(tr, wte->type, i) + gpt2_load(pr, wpe->type, i);
        }
    }
}
