/* backend.c - what every backend does the same way (see backend.h). */
#include <stdio.h>

#include "backend.h"

void gpt2_backend_init(gpt2_backend *b, const char *name, const gpt2_model *m,
                       const gpt2_backend_params *p, vkg_dtype default_kv)
{
    const gpt2_hparams *hp = &m->hp;
    b->name = name;
    b->model = m;
    b->params = *p;
    if (b->params.n_batch < 1) b->params.n_batch = 1;
    if (b->params.n_batch > hp->n_ctx) b->params.n_batch = hp->n_ctx;
    if (b->params.kv_type != VKG_F16 && b->params.kv_type != VKG_F32) b->params.kv_type = default_kv;
}

int gpt2_backend_check_step(const gpt2_backend *b, const int32_t *ids, int n, int n_past, char *err,
                            size_t errlen)
{
    const gpt2_hparams *hp = &b->model->hp;
    if (n < 1 || n > b->params.n_batch || n_past < 0 || n_past + n > hp->n_ctx) {
        snprintf(err, errlen, "%s backend: step of %d tokens at position %d does not fit (batch %d, context %d)",
                 b->name, n, n_past, b->params.n_batch, hp->n_ctx);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= hp->n_vocab) {
            snprintf(err, errlen, "token id %d is outside the vocabulary (0..%d)", ids[i], hp->n_vocab - 1);
            return -1;
        }
    }
    return 0;
}

int gpt2_backend_check_rows(const gpt2_backend *base, const int32_t *ids, const int *slot,
                            const int *pos, int n, int max_rows, char *err, size_t errlen)
{
    const gpt2_hparams *hp = &base->model->hp;
    if (n < 1 || n > max_rows) {
        snprintf(err, errlen, "%s backend: a batched step of %d rows (1..%d)", base->name, n, max_rows);
        return -1;
    }
    for (int r = 0; r < n; r++) {
        if (ids[r] < 0 || ids[r] >= hp->n_vocab) {
            snprintf(err, errlen, "token id %d is outside the vocabulary (0..%d)", ids[r], hp->n_vocab - 1);
            return -1;
        }
        if (slot[r] < 0 || slot[r] >= base->params.n_slots || pos[r] < 0 || pos[r] >= hp->n_ctx) {
            snprintf(err, errlen, "%s backend: row %d: slot %d position %d outside %d slots of %d positions",
                     base->name, r, slot[r], pos[r], base->params.n_slots, hp->n_ctx);
            return -1;
        }
        for (int q = 0; q < r; q++)
            if (slot[q] == slot[r]) {
                snprintf(err, errlen, "%s backend: rows %d and %d both use slot %d", base->name, q, r, slot[r]);
                return -1;
            }
    }
    return 0;
}
