/* batch.c - vkg_generate_batch: many sequences at once, each in its own KV cache slot.
 *
 * The loop (continuous batching):
 *   1. admit waiting sequences into free slots: the prompt's first n-1 tokens go into the slot by
 *      ordinary steps, or, where another slot already holds the same tokens (a shared prompt), by
 *      a KV copy of the longest common prefix and ordinary steps for the rest; the prompt's last
 *      token becomes the sequence's first input;
 *   2. one batched decode step: row r feeds the input token of live sequence r at its position in
 *      its slot; the backend picks (argmax or a draw on the device) or hands back every row's
 *      logits for the host sampler;
 *   3. each row's pick is emitted; sequences that hit <|endoftext|>, their n_predict, the end of
 *      the context or a callback stop leave, freeing their slot for step 1.
 * Draw i of a sequence uses its own seed and counter i, and the repetition penalty its own
 * history, so each sequence produces what vkg_generate produces for it alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkgpt2.h"

#include "core/backend.h"
#include "core/notice.h"
#include "core/sampler.h"
#include "session.h"
#include "core/tokenizer.h"
#include "core/clock.h"

enum { SEQ_WAITING, SEQ_LIVE, SEQ_DONE };

typedef struct seq_state {
    int state;             /* SEQ_* */
    int slot;              /* KV slot while live */
    const int32_t *prompt; /* its prompt (<|endoftext|> for an empty one) */
    int n_prompt;
    int n_predict; /* after clamping to the context */
    int32_t *hist; /* prompt then generated tokens */
    int n_hist;
    int n_gen;              /* generated tokens (= draws so far) */
    gpt2_sampler_params sp; /* its sampling settings */
    gpt2_sampler *sampler;  /* host sampler (logits on the host) */
    gpt2_stream stream;     /* its UTF-8 stream */
    bool stream_open;
    vkg_batch_result res; /* what it reports */
} seq_state;

/* A slot's valid prefix: positions [0, len) of the slot hold the KV of tokens[0..len). */
typedef struct slot_state {
    int owner;             /* live sequence index, or -1 */
    const int32_t *tokens; /* not owned: a sequence's prompt */
    int len;
} slot_state;

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Puts the first n tokens of q's prompt into slot `slot`: copies the longest prefix another slot
 * holds, evaluates the rest. */
static int fill_slot(vkg_session *s, slot_state *slots, int n_slots, int slot, const int32_t *ids, int n,
                     bool *shared, vkg_stats *st, char *err, size_t errlen)
{
    gpt2_backend *be = s->be;
    slot_state *dst = &slots[slot];
    int have = dst->tokens ? common_prefix(dst->tokens, dst->len, ids, n) : 0, from = slot;
    for (int k = 0; k < n_slots; k++) {
        if (k == slot || !slots[k].tokens) continue;
        int c = common_prefix(slots[k].tokens, slots[k].len, ids, n);
        if (c > have) {
            have = c;
            from = k;
        }
    }
    /* Until the slot is whole again it holds only what both agree on. */
    dst->len = dst->tokens ? common_prefix(dst->tokens, dst->len, ids, n) : 0;
    if (from != slot) {
        if (be->kv_copy(be, slot, from, have, err, errlen)) return -1;
        *shared = true;
    }
    dst->tokens = ids;
    dst->len = have;
    int nb = be->params.n_batch;
    for (int i = have; i < n; i += nb) {
        int step = n - i < nb ? n - i : nb;
        int32_t dummy;
        if (gpt2_backend_eval_seq(be, slot, ids + i, step, i, GPT2_STEP_ARGMAX, NULL, &dummy, NULL, 0, err,
                                  errlen))
            return -1;
        dst->len = i + step;
        st->prompt_tokens += step;
    }
    return 0;
}

/* After the device failed: a CPU backend takes over (unless Vulkan was forced) and every live
 * sequence's evaluated tokens go back into its slot. */
static int recover(vkg_session *s, seq_state *q, size_t n_seqs, slot_state *slots, int n_slots, char *err,
                   size_t errlen)
{
    if (session_move_to_cpu(s, err, errlen)) return -1;
    for (int k = 0; k < n_slots; k++) slots[k].len = 0;
    for (size_t i = 0; i < n_seqs; i++) {
        if (q[i].state != SEQ_LIVE) continue;
        bool shared = false;
        vkg_stats dummy = {0};
        /* Everything but the pending input (hist[n_hist - 1]) was evaluated. */
        if (fill_slot(s, slots, n_slots, q[i].slot, q[i].hist, q[i].n_hist - 1, &shared, &dummy, err, errlen))
            return -1;
        slots[q[i].slot].len =
            q[i].n_prompt - 1 < slots[q[i].slot].len ? q[i].n_prompt - 1 : slots[q[i].slot].len;
        slots[q[i].slot].tokens = q[i].prompt;
    }
    return 0;
}

/* Whether the backend can draw every one of n rows itself. */
static bool rows_drawable(const gpt2_backend *be, const gpt2_sampler_params *const *sp, int n)
{
    for (int r = 0; r < n; r++)
        if (!be->can_draw(be, sp[r])) return false;
    return true;
}

static void finish(seq_state *q, int idx, slot_state *slots, vkg_batch_cb cb, void *user, double t0)
{
    const char *piece;
    size_t len = 0;
    gpt2_stream_flush(&q->stream, &piece, &len);
    if (cb) cb(user, idx, -1, len ? piece : "", len);
    q->state = SEQ_DONE;
    slots[q->slot].owner = -1;
    q->res.n_ids = (size_t)q->n_gen;
    q->res.decode_ms_per_token = q->res.decode_tokens ? q->res.decode_ms / q->res.decode_tokens : 0;
    q->res.total_ms = gpt2_clock_ms() - t0;
}

int vkg_generate_batch(vkg_session *s, const vkg_batch_seq *seqs, size_t n_seqs, int n_parallel,
                       vkg_batch_cb cb, void *user, vkg_batch_result *results, vkg_stats *stats, char *err,
                       size_t errlen)
{
    const gpt2_model *gm = &s->model->m;
    const gpt2_hparams *hp = &gm->hp;
    const int V = hp->n_vocab, n_ctx = hp->n_ctx;
    double t0 = gpt2_clock_ms();
    vkg_stats st = {0};
    int32_t eot = gm->vocab.eot;
    int rc = -1;
    int n_slots = s->be->params.n_slots;
    if (n_parallel <= 0) n_parallel = n_slots;
    if (n_parallel > n_slots) {
        snprintf(err, errlen,
                 "%d sequences at once need a session with n_seq >= %d (this one has %d KV slots)",
                 n_parallel, n_parallel, n_slots);
        return -1;
    }
    if (results) memset(results, 0, n_seqs * sizeof *results);
    if (n_seqs == 0) {
        if (stats) *stats = st;
        return 0;
    }
    int max_rows = n_parallel;
    seq_state *q = calloc(n_seqs, sizeof *q);
    slot_state *slots = calloc((size_t)n_slots, sizeof *slots);
    int32_t *ids = malloc((size_t)max_rows * sizeof *ids), *picks = malloc((size_t)max_rows * sizeof *picks);
    gpt2_row *rows = malloc((size_t)max_rows * sizeof *rows);
    int *row_seq = malloc((size_t)max_rows * sizeof *row_seq);
    const gpt2_sampler_params **row_sp = malloc((size_t)max_rows * sizeof *row_sp);
    uint64_t *row_step = malloc((size_t)max_rows * sizeof *row_step);
    const int32_t **row_hist = malloc((size_t)max_rows * sizeof *row_hist);
    int *row_nhist = malloc((size_t)max_rows * sizeof *row_nhist);
    float *logits = NULL;
    if (!q || !slots || !ids || !picks || !rows || !row_seq || !row_sp || !row_step || !row_hist ||
        !row_nhist) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int k = 0; k < n_slots; k++) slots[k].owner = -1;
    s->batch_active = true;
    s->n_past = 0; /* slot 0 is about to be overwritten */

    /* Sequences: prompts, limits, samplers. */
    for (size_t i = 0; i < n_seqs; i++) {
        seq_state *x = &q[i];
        const vkg_sample_params *p = &seqs[i].params;
        x->prompt = seqs[i].prompt;
        x->n_prompt = (int)seqs[i].n_prompt;
        if (seqs[i].n_prompt == 0) {
            if (eot < 0) {
                snprintf(err, errlen,
                         "sequence %zu: empty prompt and the vocabulary has no <|endoftext|> to start from",
                         i);
                goto out;
            }
            x->prompt = &gm->vocab.eot;
            x->n_prompt = 1;
        }
        if (seqs[i].n_prompt > (size_t)n_ctx) {
            snprintf(err, errlen,
                     "sequence %zu: the prompt has %zu tokens, more than the model's context of %d", i,
                     seqs[i].n_prompt, n_ctx);
            goto out;
        }
        x->n_predict = p->n_predict < 0 ? 0 : p->n_predict;
        int room = n_ctx - x->n_prompt;
        if (x->n_predict > room + 1) {
            gpt2_notice(VKG_NOTICE_WARNING,
                        "sequence %zu: n_predict %d clamped to %d: the context holds %d positions", i,
                        x->n_predict, room + 1, n_ctx);
            x->n_predict = room + 1;
        }
        x->sp = (gpt2_sampler_params){.temp = p->temp,
                                      .top_k = p->top_k,
                                      .top_p = p->top_p,
                                      .repeat_penalty = p->repeat_penalty,
                                      .repeat_last_n = p->repeat_last_n,
                                      .seed = p->seed};
        x->sampler = gpt2_sampler_create(&x->sp, V);
        x->hist = malloc(((size_t)x->n_prompt + (size_t)x->n_predict + 1) * sizeof *x->hist);
        if (!x->sampler || !x->hist) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        memcpy(x->hist, x->prompt, (size_t)x->n_prompt * sizeof *x->hist);
        x->n_hist = x->n_prompt;
        x->res.prompt_tokens = x->n_prompt;
        x->res.ids = x->hist + x->n_prompt; /* a view until the end */
        gpt2_stream_init(&x->stream, &gm->vocab);
        x->stream_open = true;
    }

    size_t next_wait = 0, n_done = 0;
    for (;;) {
        /* 1. Admit waiting sequences into free slots (the lowest first). */
        int live = 0;
        for (int k = 0; k < n_parallel; k++) live += slots[k].owner >= 0;
        for (int k = 0; k < n_parallel && next_wait < n_seqs; k++) {
            if (slots[k].owner >= 0) continue;
            seq_state *x = &q[next_wait];
            int idx = (int)next_wait++;
            x->slot = k;
            x->res.slot = k;
            if (x->n_predict == 0) { /* nothing to generate: done at once */
                x->state = SEQ_LIVE;
                slots[k].owner = idx;
                finish(x, idx, slots, cb, user, t0);
                n_done++;
                k--; /* the slot is free again */
                continue;
            }
            double t = gpt2_clock_ms();
            if (fill_slot(s, slots, n_parallel, k, x->prompt, x->n_prompt - 1, &x->res.prompt_shared, &st,
                          err, errlen) &&
                (!s->be->failed || recover(s, q, n_seqs, slots, n_parallel, err, errlen) ||
                 fill_slot(s, slots, n_parallel, k, x->prompt, x->n_prompt - 1, &x->res.prompt_shared, &st,
                           err, errlen)))
                goto out;
            x->res.prompt_ms = gpt2_clock_ms() - t;
            st.prompt_ms += x->res.prompt_ms;
            x->state = SEQ_LIVE;
            slots[k].owner = idx;
            live++;
        }
        if (n_done == n_seqs) break;
        if (live == 0) break; /* cannot happen: a waiting sequence always finds a slot */

        /* 2. One decode step over every live sequence. */
        int n = 0;
        for (int k = 0; k < n_parallel; k++) {
            int o = slots[k].owner;
            if (o < 0) continue;
            seq_state *x = &q[o];
            row_seq[n] = o;
            rows[n] = (gpt2_row){.slot = k, .pos = x->n_hist - 1};
            ids[n] = x->hist[x->n_hist - 1];
            row_sp[n] = &x->sp;
            row_step[n] = (uint64_t)x->n_gen;
            row_hist[n] = x->hist; /* before the row's input, hist[n_hist - 1] */
            row_nhist[n] = x->n_hist - 1;
            n++;
        }
        /* The backend draws every row itself, or hands back every row's logits. */
        bool on_device = rows_drawable(s->be, row_sp, n);
        if (!on_device && !logits) {
            logits = malloc((size_t)max_rows * V * sizeof *logits);
            if (!logits) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
        double t = gpt2_clock_ms();
        gpt2_step step = {.n = n,
                          .ids = ids,
                          .rows = rows,
                          .sample = row_sp,
                          .draw = row_step,
                          .history = row_hist,
                          .n_history = row_nhist,
                          .out = on_device ? GPT2_STEP_SAMPLE : GPT2_STEP_ALL,
                          .logits = logits,
                          .picks = picks};
        if (s->be->eval(s->be, &step, err, errlen)) {
            if (!s->be->failed || recover(s, q, n_seqs, slots, n_parallel, err, errlen)) goto out;
            on_device = rows_drawable(s->be, row_sp, n);
            if (!on_device && !logits) {
                logits = malloc((size_t)max_rows * V * sizeof *logits);
                if (!logits) {
                    snprintf(err, errlen, "out of memory");
                    goto out;
                }
            }
            step.out = on_device ? GPT2_STEP_SAMPLE : GPT2_STEP_ALL;
            step.logits = logits;
            if (s->be->eval(s->be, &step, err, errlen)) goto out;
        }
        double dt = gpt2_clock_ms() - t;
        st.decode_ms += dt;
        st.decode_steps++;
        st.decode_tokens += n;

        /* 3. Emit each row's pick; finished sequences leave. */
        for (int r = 0; r < n; r++) {
            int o = row_seq[r];
            seq_state *x = &q[o];
            x->res.decode_tokens++;
            x->res.decode_ms += dt;
            int32_t next = picks[r];
            if (!on_device) {
                double ts = gpt2_clock_ms();
                next = gpt2_sampler_pick(x->sampler, logits + (size_t)r * V, x->hist, x->n_hist,
                                         (uint64_t)x->n_gen);
                x->res.sample_ms += gpt2_clock_ms() - ts;
                st.sample_ms += gpt2_clock_ms() - ts;
            }
            bool done = false;
            if (next == eot && !seqs[o].params.ignore_eos) {
                x->res.hit_eos = true;
                done = true;
            } else {
                x->hist[x->n_hist++] = next;
                x->n_gen++;
                if (cb) {
                    const char *piece;
                    size_t len;
                    if (gpt2_stream_feed(&x->stream, next, &piece, &len, err, errlen)) goto out;
                    if (cb(user, o, next, piece, len)) {
                        x->res.stopped = true;
                        done = true;
                    }
                }
                if (x->n_gen == x->n_predict)
                    done = true;
                else if (!done && x->n_hist - 1 >= n_ctx) {
                    x->res.hit_context_end = true;
                    gpt2_notice(VKG_NOTICE_WARNING,
                                "sequence %d reached the end of the context (%d positions); stopping", o,
                                n_ctx);
                    done = true;
                }
            }
            if (done) {
                finish(x, o, slots, cb, user, t0);
                n_done++;
            }
        }
    }
    rc = 0;
out:
    s->batch_active = false;
    s->n_past = 0;
    session_fill_stats(s, &st, t0);
    for (size_t i = 0; q && i < n_seqs; i++) {
        st.hit_eos |= q[i].res.hit_eos;
        st.hit_context_end |= q[i].res.hit_context_end;
    }
    if (stats) *stats = st;
    for (size_t i = 0; q && i < n_seqs; i++) {
        seq_state *x = &q[i];
        if (results && rc == 0) {
            results[i] = x->res;
            results[i].ids = malloc(((size_t)x->n_gen + 1) * sizeof *results[i].ids);
            if (results[i].ids)
                memcpy(results[i].ids, x->hist + x->n_prompt, (size_t)x->n_gen * sizeof *x->hist);
            else
                results[i].n_ids = 0;
        }
        if (x->stream_open) gpt2_stream_free(&x->stream);
        gpt2_sampler_free(x->sampler);
        free(x->hist);
    }
    free(q);
    free(slots);
    free(ids);
    free(picks);
    free(rows);
    free(row_seq);
    free(row_sp);
    free(row_step);
    free(row_hist);
    free(row_nhist);
    free(logits);
    return rc;
}

void vkg_batch_results_free(vkg_batch_result *results, size_t n)
{
    for (size_t i = 0; results && i < n; i++) {
        free(results[i].ids);
        results[i].ids = NULL;
        results[i].n_ids = 0;
    }
}
