/* backend.c - what every backend does the same way (see backend.h): set-up and the one check of a
 * step description. */
#include <stdio.h>

#include "backend.h"

void gpt2_backend_init(gpt2_backend *b, gpt2_backend_kind kind, const char *name, const gpt2_model *m,
                       const gpt2_backend_params *p, gpt2_dtype default_kv)
{
    const gpt2_hparams *hp = &m->hp;
    b->kind = kind;
    b->name = name;
    b->model = m;
    b->params = *p;
    if (b->params.n_batch < 1) b->params.n_batch = 1;
    if (b->params.n_batch > hp->n_ctx) b->params.n_batch = hp->n_ctx;
    if (b->params.n_slots < 1) b->params.n_slots = 1;
    b->max_chain = 1;
    if (b->params.kv_type != GPT2_F16 && b->params.kv_type != GPT2_F32) b->params.kv_type = default_kv;
}

int gpt2_backend_max_rows(const gpt2_backend *b)
{
    return b->params.n_batch > b->params.n_slots ? b->params.n_batch : b->params.n_slots;
}

/* Whether the rows are one sequence: one slot, consecutive positions. */
static bool one_sequence(const gpt2_step *st)
{
    for (int r = 1; r < st->n; r++)
        if (st->rows[r].slot != st->rows[0].slot || st->rows[r].pos != st->rows[0].pos + r) return false;
    return true;
}

int gpt2_backend_check_step(const gpt2_backend *b, const gpt2_step *st, gpt2_step_shape *shape, char *err,
                            size_t errlen)
{
    const gpt2_hparams *hp = &b->model->hp;
    const int n = st->n, max_rows = gpt2_backend_max_rows(b);
    if (n < 1 || n > max_rows || !st->ids || !st->rows) {
        snprintf(err, errlen, "%s backend: a step of %d rows (1..%d)", b->name, n, max_rows);
        return -1;
    }
    for (int r = 0; r < n; r++)
        if (st->ids[r] < 0 || st->ids[r] >= hp->n_vocab) {
            snprintf(err, errlen, "token id %d is outside the vocabulary (0..%d)", st->ids[r],
                     hp->n_vocab - 1);
            return -1;
        }
    gpt2_step_shape sh = {
        .batch = !one_sequence(st), .n_seq = 1, .slot = st->rows[0].slot, .n_past = st->rows[0].pos};
    if (!sh.batch) {
        if (n > b->params.n_batch || sh.n_past < 0 || sh.n_past + n > hp->n_ctx) {
            snprintf(err, errlen,
                     "%s backend: step of %d tokens at position %d does not fit (batch %d, context %d)",
                     b->name, n, sh.n_past, b->params.n_batch, hp->n_ctx);
            return -1;
        }
        if (sh.slot < 0 || sh.slot >= b->params.n_slots) {
            snprintf(err, errlen, "%s backend: KV slot %d does not exist (%d slots)", b->name, sh.slot,
                     b->params.n_slots);
            return -1;
        }
    } else {
        sh.n_seq = n;
        for (int r = 0; r < n; r++) {
            const gpt2_row *w = &st->rows[r];
            if (w->slot < 0 || w->slot >= b->params.n_slots || w->pos < 0 || w->pos >= hp->n_ctx) {
                snprintf(err, errlen,
                         "%s backend: row %d: slot %d position %d outside %d slots of %d positions", b->name,
                         r, w->slot, w->pos, b->params.n_slots, hp->n_ctx);
                return -1;
            }
            for (int q = 0; q < r; q++)
                if (st->rows[q].slot == w->slot) {
                    snprintf(err, errlen,
                             "%s backend: rows %d and %d both use slot %d (a batch takes one "
                             "token per sequence)",
                             b->name, q, r, w->slot);
                    return -1;
                }
        }
    }
    if (st->n_chain > 1) {
        bool pick = st->out == GPT2_STEP_ARGMAX || st->out == GPT2_STEP_SAMPLE;
        if (sh.batch || n != 1 || !pick || st->n_chain > b->max_chain ||
            sh.n_past + st->n_chain > hp->n_ctx) {
            snprintf(err, errlen,
                     "%s backend: a chain of %d steps needs one token that picks, at most "
                     "%d steps and room in the context (position %d of %d)",
                     b->name, st->n_chain, b->max_chain, sh.n_past, hp->n_ctx);
            return -1;
        }
    }
    for (int i = 0; st->out == GPT2_STEP_SAMPLE && st->sample && i < sh.n_seq; i++)
        if (gpt2_sampler_penalises(st->sample[i]) &&
            (!st->history || !st->n_history || st->n_history[i] < 0 ||
             (st->n_history[i] && !st->history[i]))) {
            snprintf(err, errlen, "%s backend: sequence %d's repetition penalty needs its history", b->name,
                     i);
            return -1;
        }
    sh.out_rows = st->out == GPT2_STEP_ALL ? n : sh.n_seq;
    switch (st->out) {
    case GPT2_STEP_NONE: break;
    case GPT2_STEP_LAST:
    case GPT2_STEP_ALL:
        if (!st->logits) {
            snprintf(err, errlen, "%s backend: a step returning logits without a place for them", b->name);
            return -1;
        }
        break;
    case GPT2_STEP_SAMPLE:
        for (int i = 0; st->sample && i < sh.n_seq; i++)
            if (!b->can_draw(b, st->sample[i])) {
                snprintf(err, errlen, "%s backend: sequence %d's sampling settings need the host sampler",
                         b->name, i);
                return -1;
            }
        /* fall through */
    case GPT2_STEP_ARGMAX:
        if (!st->picks) {
            snprintf(err, errlen, "%s backend: a step returning picks without a place for them", b->name);
            return -1;
        }
        break;
    default: snprintf(err, errlen, "%s backend: unknown step output %d", b->name, (int)st->out); return -1;
    }
    if (shape) *shape = sh;
    return 0;
}

int gpt2_backend_eval_seq(gpt2_backend *b, int slot, const int32_t *ids, int n, int pos, gpt2_step_out out,
                          float *logits, int32_t *picks, const gpt2_sampler_params *sp, uint64_t draw,
                          char *err, size_t errlen)
{
    if (n < 1 || n > b->params.n_batch) {
        snprintf(err, errlen,
                 "%s backend: step of %d tokens at position %d does not fit (batch %d, context %d)", b->name,
                 n, pos, b->params.n_batch, b->model->hp.n_ctx);
        return -1;
    }
    gpt2_row rows[n];
    for (int r = 0; r < n; r++) rows[r] = (gpt2_row){.slot = slot, .pos = pos + r};
    const gpt2_sampler_params *sps[1] = {sp};
    gpt2_step st = {.n = n,
                    .ids = ids,
                    .rows = rows,
                    .out = out,
                    .sample = sps,
                    .draw = &draw,
                    .logits = logits,
                    .picks = picks};
    return b->eval(b, &st, err, errlen);
}
