/* api.c - the public API of vkgpt2.h: models, tokens, sessions, generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vkgpt2.h"

#include "core/backend.h"
#include "core/format_gguf.h"
#include "core/model.h"
#include "core/notice.h"
#include "core/outfile.h"
#include "core/profile.h"
#include "core/sampler.h"
#include "session.h"
#include "core/synth.h"
#include "core/tokenizer.h"
#include "core/vocab.h"
#include "core/clock.h"

/* ---- models ---- */

vkg_model *vkg_model_load(const char *path, char *err, size_t errlen)
{
    vkg_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (gpt2_model_load(&m->m, path, err, errlen)) {
        free(m);
        return NULL;
    }
    return m;
}

void vkg_model_free(vkg_model *m)
{
    if (!m) return;
    gpt2_tokenizer_free(m->tok);
    gpt2_model_free(&m->m);
    free(m);
}

vkg_model_info vkg_model_get_info(const vkg_model *m)
{
    const gpt2_hparams *hp = &m->m.hp;
    return (vkg_model_info){.n_vocab = hp->n_vocab,
                            .n_ctx = hp->n_ctx,
                            .n_embd = hp->n_embd,
                            .n_head = hp->n_head,
                            .n_layer = hp->n_layer,
                            .format = m->m.format,
                            .weight_type = gpt2_dtype_name(m->m.wtype),
                            .weights_bytes = gpt2_weights_bytes(&m->m),
                            .eot = m->m.vocab.eot};
}

/* ---- tokens ---- */

static gpt2_tokenizer *model_tokenizer(vkg_model *m, char *err, size_t errlen)
{
    if (!m->tok) {
        if (m->m.vocab.n_tokens == 0) {
            snprintf(err, errlen, "the model has no vocabulary (vocab.json/merges.txt) to tokenize with");
            return NULL;
        }
        m->tok = gpt2_tokenizer_create(&m->m.vocab, err, errlen);
    }
    return m->tok;
}

int vkg_tokenize(vkg_model *m, const char *text, size_t len, int32_t **ids, size_t *n_ids, char *err,
                 size_t errlen)
{
    gpt2_tokenizer *t = model_tokenizer(m, err, errlen);
    if (!t) return -1;
    return gpt2_tokenize(t, text, len, ids, n_ids, err, errlen);
}

int vkg_detokenize(const vkg_model *m, const int32_t *ids, size_t n_ids, char **text, size_t *len, char *err,
                   size_t errlen)
{
    *text = gpt2_detokenize_alloc(&m->m.vocab, ids, n_ids, len, err, errlen);
    return *text ? 0 : -1;
}

void vkg_free(void *p) { free(p); }

/* ---- sessions ---- */

vkg_session_params vkg_session_defaults(void)
{
    return (vkg_session_params){.backend = VKG_BACKEND_AUTO,
                                .device = -1,
                                .n_threads = 0,
                                .n_batch = 64,
                                .kv = VKG_KV_AUTO,
                                .verbose = false,
                                .n_seq = 1};
}

vkg_session *vkg_session_create(vkg_model *m, const vkg_session_params *p, char *err, size_t errlen)
{
    const gpt2_hparams *hp = &m->m.hp;
    vkg_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->model = m;
    s->history = malloc((size_t)hp->n_ctx * sizeof *s->history);
    s->logits = malloc((size_t)hp->n_vocab * sizeof *s->logits);
    if (!s->history || !s->logits) {
        snprintf(err, errlen, "out of memory");
        vkg_session_free(s);
        return NULL;
    }
    gpt2_backend_params bp = {.n_threads = p->n_threads,
                              .n_batch = p->n_batch > 0 ? p->n_batch : 64,
                              .kv_type = p->kv == VKG_KV_F32 ? GPT2_F32 : GPT2_F16,
                              .device = p->device,
                              .device_name = p->device_name && *p->device_name ? p->device_name : NULL,
                              .cpu_ops = getenv("VKGPT2_CPU_OPS"),
                              .verbose = p->verbose,
                              .rerecord = p->rerecord,
                              .gpu_timing = p->time_gpu,
                              .n_slots = p->n_seq > 0 ? p->n_seq : 1,
                              /* auto: a software Vulkan device (lavapipe) is slower than our own
                               * CPU kernels; a --device the user names is still used */
                              .skip_cpu_device = p->backend == VKG_BACKEND_AUTO && p->device < 0 &&
                                  !(p->device_name && *p->device_name)};
    if (p->backend != VKG_BACKEND_CPU && p->device >= 0) {
        /* A device index the caller named must exist, whatever the backend would fall back to. */
        char why[512];
        int n_dev = gpt2_backend_vk_count_devices(why, sizeof why);
        if (n_dev < 0 || p->device >= n_dev) {
            if (n_dev <= 0)
                snprintf(err, errlen, "Vulkan device %d does not exist (%s)", p->device,
                         n_dev < 0 ? why : "no Vulkan device at all");
            else if (n_dev == 1)
                snprintf(err, errlen, "Vulkan device %d does not exist (there is one, device 0)", p->device);
            else
                snprintf(err, errlen, "Vulkan device %d does not exist (there are %d: 0..%d)", p->device,
                         n_dev, n_dev - 1);
            vkg_session_free(s);
            return NULL;
        }
    }
    s->want = p->backend;
    s->tokens_per_submit = p->tokens_per_submit > 0 ? p->tokens_per_submit : VKG_DEFAULT_TOKENS_PER_SUBMIT;
    if (s->tokens_per_submit > VKG_MAX_TOKENS_PER_SUBMIT) s->tokens_per_submit = VKG_MAX_TOKENS_PER_SUBMIT;
    if (p->backend != VKG_BACKEND_CPU) {
        char why[512];
        gpt2_backend_why reason;
        s->be = gpt2_backend_vk_create(&m->m, &bp, &reason, why, sizeof why);
        if (!s->be &&
            (p->backend == VKG_BACKEND_VULKAN || (p->device_name && *p->device_name) ||
             reason == GPT2_WHY_BAD_PARAMS)) {
            /* a device the caller named is used or is an error, never silently replaced; a typo
             * in VKGPT2_CPU_OPS is the user's error, not a missing GPU */
            snprintf(err, errlen, "%s%s", reason == GPT2_WHY_BAD_PARAMS ? "" : "vulkan backend: ", why);
            vkg_session_free(s);
            return NULL;
        }
        if (!s->be && reason == GPT2_WHY_CPU_DEVICE) {
            /* Expected on GPU-less machines: the timing report names the backend; -v says why. */
            if (p->verbose)
                gpt2_notice(VKG_NOTICE_INFO,
                            "%s; using the faster CPU backend (asking for the Vulkan "
                            "backend or naming the device uses it)",
                            why);
        } else if (!s->be && reason == GPT2_WHY_NO_MEMORY) /* a device, but too small or out of memory */
            gpt2_notice(VKG_NOTICE_WARNING,
                        "the Vulkan device cannot hold the model (%s); running on the CPU", why);
        else if (!s->be)
            gpt2_notice(VKG_NOTICE_WARNING, "no Vulkan device (%s); running on the CPU", why);
    }
    /* The KV type follows the backend actually chosen: AUTO on the CPU is f32, what the CPU
     * backend asked for by name uses, so both compute the same logits. */
    if (!s->be && p->kv == VKG_KV_AUTO) bp.kv_type = GPT2_F32;
    s->bp = bp;
    if (s->be && p->kv == VKG_KV_AUTO) s->bp.kv_type = GPT2_F32; /* for a later move to the CPU */
    if (!s->be) s->be = gpt2_backend_cpu_create(&m->m, &bp, NULL, err, errlen);
    if (!s->be) {
        vkg_session_free(s);
        return NULL;
    }
    return s;
}

void vkg_session_free(vkg_session *s)
{
    if (!s) return;
    if (s->be) s->be->destroy(s->be);
    gpt2_prof_free(s->prof);
    free(s->history);
    free(s->logits);
    free(s);
}

const char *vkg_session_backend(const vkg_session *s) { return s->be->name; }
const char *vkg_session_device(const vkg_session *s) { return s->be->device_name; }
void vkg_session_reset(vkg_session *s) { s->n_past = 0; }
int vkg_session_n_past(const vkg_session *s) { return s->n_past; }

/* The Vulkan backend failed in a step (device lost, out of device memory): unless Vulkan was
 * forced, go on with a fresh CPU backend that re-evaluates the n_past tokens already in the
 * context, so the step that failed can be run again. Returns 0, or -1 leaving err as it was. */
int session_move_to_cpu(vkg_session *s, char *err, size_t errlen)
{
    if (!s->be->failed || s->want == VKG_BACKEND_VULKAN || s->be->kind == GPT2_BACKEND_CPU) return -1;
    if (s->batch_active)
        gpt2_notice(VKG_NOTICE_FALLBACK, "%s; continuing on the CPU, each live sequence re-evaluated", err);
    else
        gpt2_notice(VKG_NOTICE_FALLBACK, "%s; continuing on the CPU from the %d tokens in the context", err,
                    s->n_past);
    char why[512];
    gpt2_backend *cpu = gpt2_backend_cpu_create(&s->model->m, &s->bp, NULL, why, sizeof why);
    if (!cpu) {
        snprintf(err, errlen, "the Vulkan device failed and no CPU backend could take over: %s", why);
        return -1;
    }
    s->be->destroy(s->be);
    s->be = cpu;
    s->n_moves++;
    cpu->prof = s->prof;
    if (s->batch_active) return 0; /* vkg_generate_batch re-evaluates each of its sequences */
    int nb = cpu->params.n_batch;
    for (int i = 0; i < s->n_past; i += nb) {
        int step = s->n_past - i < nb ? s->n_past - i : nb;
        int32_t dummy;
        if (gpt2_backend_eval_seq(cpu, 0, s->history + i, step, i, GPT2_STEP_ARGMAX, NULL, &dummy, NULL, 0,
                                  err, errlen))
            return -1;
    }
    return 0;
}

/* One step of the session's sequence (slot 0): ids[0..n) at s->n_past; picks: n_chain of them for a
 * chain (stop_id ends it), else one. The sequence's history (for a penalty) is s->history. */
static int session_step(vkg_session *s, const int32_t *ids, int n, gpt2_step_out out, float *logits,
                        int32_t *picks, const gpt2_sampler_params *sp, uint64_t draw, int n_chain,
                        int32_t stop_id, char *err, size_t errlen)
{
    gpt2_row rows[n];
    for (int r = 0; r < n; r++) rows[r] = (gpt2_row){.slot = 0, .pos = s->n_past + r};
    const gpt2_sampler_params *sps[1] = {sp};
    const int32_t *hist[1] = {s->history};
    int n_hist[1] = {s->n_past};
    gpt2_step st = {.n = n,
                    .ids = ids,
                    .rows = rows,
                    .out = out,
                    .sample = sps,
                    .draw = &draw,
                    .n_chain = n_chain,
                    .stop_id = stop_id,
                    .history = hist,
                    .n_history = n_hist,
                    .logits = logits,
                    .picks = picks};
    return s->be->eval(s->be, &st, err, errlen);
}

/* Runs n tokens through the backend in steps of n_batch. logits: all rows, or NULL; the last row
 * always lands in s->logits when want_last. pick (when not NULL and neither logits nor want_last):
 * the last chunk's draw with sp (which the backend's can_draw accepts) at index draw. */
static int eval_tokens(vkg_session *s, const int32_t *ids, size_t n, float *logits, bool want_last,
                       int32_t *pick, const gpt2_sampler_params *sp, uint64_t draw, char *err, size_t errlen)
{
    const gpt2_hparams *hp = &s->model->m.hp;
    if ((size_t)s->n_past + n > (size_t)hp->n_ctx) {
        snprintf(err, errlen, "%zu tokens after %d already in the context exceed its %d positions", n,
                 s->n_past, hp->n_ctx);
        return -1;
    }
    int nb = s->be->params.n_batch;
    for (size_t i = 0; i < n; i += (size_t)nb) {
        int step = (int)(n - i < (size_t)nb ? n - i : (size_t)nb);
        bool last = i + (size_t)step == n;
        float *out = logits ? logits + i * (size_t)hp->n_vocab : (last && want_last ? s->logits : NULL);
        gpt2_prof_step_begin(s->prof, step, s->n_past); /* no-op without a profile */
        /* Chunks before the last bring back nothing: the backends stop them before the LM head. */
        int32_t *am = last ? pick : NULL;
        gpt2_step_out what = logits ? GPT2_STEP_ALL
            : out                   ? GPT2_STEP_LAST
            : am                    ? GPT2_STEP_SAMPLE
                                    : GPT2_STEP_NONE;
        /* The step run again after a move to the CPU also leaves its last row in s->logits (with
         * its argmax in the pick): the new backend may not draw as the old one did (vkg_generate's
         * sampler then takes over). */
        float *again = out ? out : last ? s->logits : NULL;
        gpt2_step_out what_again = logits ? GPT2_STEP_ALL : again ? GPT2_STEP_LAST : GPT2_STEP_NONE;
        if (session_step(s, ids + i, step, what, out, am, sp, draw, 1, -1, err, errlen) &&
            (session_move_to_cpu(s, err, errlen) ||
             session_step(s, ids + i, step, what_again, again, am, NULL, 0, 1, -1, err, errlen)))
            return -1;
        gpt2_prof_step_end(s->prof);
        memcpy(s->history + s->n_past, ids + i, (size_t)step * sizeof *ids);
        s->n_past += step;
    }
    if (logits && want_last)
        memcpy(s->logits, logits + (n - 1) * (size_t)hp->n_vocab, (size_t)hp->n_vocab * sizeof(float));
    return 0;
}

int vkg_eval(vkg_session *s, const int32_t *ids, size_t n_ids, float *logits, char *err, size_t errlen)
{
    if (n_ids == 0) return 0;
    return eval_tokens(s, ids, n_ids, logits, true, NULL, NULL, 0, err, errlen);
}

/* ---- generation ---- */

void session_fill_stats(const vkg_session *s, vkg_stats *st, double t0_ms)
{
    st->decode_ms_per_token = st->decode_tokens ? st->decode_ms / st->decode_tokens : 0;
    st->total_ms = gpt2_clock_ms() - t0_ms;
    st->weights_bytes = s->be->weights_bytes;
    st->kv_bytes = s->be->kv_bytes;
    st->scratch_bytes = s->be->scratch_bytes;
    const gpt2_counters *c = &s->be->counters;
    st->decode_cmdbuf_records = c->decode_cmdbuf_records;
    st->prefill_cmdbuf_records = c->prefill_cmdbuf_records;
    st->batch_cmdbuf_records = c->batch_cmdbuf_records;
    st->submits = c->submits;
    st->dispatches_per_token = c->dispatches_per_token;
    st->barriers_per_token = c->barriers_per_token;
    st->readback_bytes_per_token = c->readback_bytes_last;
    st->device_memory_bytes =
        s->be->kind != GPT2_BACKEND_CPU ? s->be->weights_bytes + s->be->kv_bytes + s->be->scratch_bytes : 0;
}

vkg_sample_params vkg_sample_defaults(void)
{
    return (vkg_sample_params){.n_predict = 200,
                               .temp = 0.9f,
                               .top_k = 40,
                               .top_p = 0.9f,
                               .repeat_penalty = 1.0f,
                               .repeat_last_n = 64,
                               .seed = 0,
                               .ignore_eos = false};
}

int vkg_generate(vkg_session *s, const int32_t *prompt, size_t n_prompt, const vkg_sample_params *p,
                 vkg_token_cb cb, void *user, int32_t **out_ids, size_t *n_out, vkg_stats *stats, char *err,
                 size_t errlen)
{
    const gpt2_model *gm = &s->model->m;
    const gpt2_hparams *hp = &gm->hp;
    double t0 = gpt2_clock_ms();
    vkg_stats st = {0};
    int32_t eot = gm->vocab.eot;
    uint64_t gpu0 = 0; /* the device time before the decode */
    int rc = -1;
    int32_t *gen = NULL;
    size_t n_gen = 0;
    gpt2_sampler *sampler = NULL;
    gpt2_stream stream;
    gpt2_stream_init(&stream, &gm->vocab);

    if (n_prompt == 0 && s->n_past == 0) {
        if (eot < 0) {
            snprintf(err, errlen, "empty prompt and the vocabulary has no <|endoftext|> to start from");
            goto out;
        }
        prompt = &eot; /* unconditional generation starts from <|endoftext|>, as GPT-2 was trained */
        n_prompt = 1;
    }
    if ((size_t)s->n_past + n_prompt > (size_t)hp->n_ctx) {
        snprintf(err, errlen, "the prompt has %zu tokens, more than the model's context of %d",
                 n_prompt + (size_t)s->n_past, hp->n_ctx);
        goto out;
    }
    int n_predict = p->n_predict < 0 ? 0 : p->n_predict;
    int room = hp->n_ctx - s->n_past - (int)n_prompt;
    if (n_predict > room + 1) {
        /* The last generated token needs no position of its own: it is never evaluated. */
        gpt2_notice(VKG_NOTICE_WARNING, "n_predict %d clamped to %d: the context holds %d positions",
                    n_predict, room + 1, hp->n_ctx);
        n_predict = room + 1;
    }
    gpt2_sampler_params sp = {.temp = p->temp,
                              .top_k = p->top_k,
                              .top_p = p->top_p,
                              .repeat_penalty = p->repeat_penalty,
                              .repeat_last_n = p->repeat_last_n,
                              .seed = p->seed};
    /* The backend draws on its own when it can (the GPU then returns 4 bytes per token); else it
     * hands over the logits and the host sampler draws. */
    bool need_logits = !s->be->can_draw(s->be, &sp);
    sampler = gpt2_sampler_create(&sp, hp->n_vocab);
    gen = malloc(((size_t)n_predict + 1) * sizeof *gen);
    if (!sampler || !gen) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    /* Prompt. */
    int32_t next = -1;
    double t = gpt2_clock_ms();
    int moves = s->n_moves;
    if (n_prompt &&
        eval_tokens(s, prompt, n_prompt, NULL, need_logits, need_logits ? NULL : &next, &sp, 0, err, errlen))
        goto out;
    /* Moved to the CPU: it draws by itself only greedily; otherwise sample here from now on. */
    if (s->n_moves != moves && !need_logits) need_logits = !s->be->can_draw(s->be, &sp);
    st.prompt_tokens = (int)n_prompt;
    st.prompt_ms = gpt2_clock_ms() - t;

    /* Decode: pick, emit, evaluate the pick, repeat. Where the backend draws, up to K tokens are
     * evaluated per submit (a chain: each step's pick feeds the next on the device) and their picks
     * wait in `ahead`; token i's successor is then popped from there, its own evaluation done. */
    int K = s->tokens_per_submit < s->be->max_chain ? s->tokens_per_submit : s->be->max_chain;
    if (K < 1 || s->prof) K = 1; /* profiles time one step at a time */
    int32_t ahead[VKG_MAX_TOKENS_PER_SUBMIT];
    gpu0 = s->be->counters.gpu_ns;
    int n_ahead = 0, at = 0;
    for (int i = 0; i < n_predict; i++) {
        if (need_logits) {
            t = gpt2_clock_ms();
            next = gpt2_sampler_pick(sampler, s->logits, s->history, s->n_past, (uint64_t)i);
            st.sample_ms += gpt2_clock_ms() - t;
            if (s->prof)
                gpt2_prof_add(s->prof, PROF_HOST, "sample", t * 1e3, (gpt2_clock_ms() - t) * 1e3, 0, 0);
        }
        if (next == eot && !p->ignore_eos) {
            st.hit_eos = true;
            break;
        }
        gen[n_gen++] = next;
        if (cb) {
            const char *piece;
            size_t len;
            if (gpt2_stream_feed(&stream, next, &piece, &len, err, errlen)) goto out;
            if (cb(user, next, piece, len)) break;
        }
        if (i + 1 == n_predict) break;
        if (s->n_past >= hp->n_ctx) {
            st.hit_context_end = true;
            break;
        }
        if (!need_logits && at < n_ahead) { /* evaluated by the chain already: its next pick */
            s->history[s->n_past++] = next;
            next = ahead[at++];
            st.decode_tokens++;
            continue;
        }
        t = gpt2_clock_ms();
        moves = s->n_moves;
        if (need_logits) {
            if (eval_tokens(s, &next, 1, NULL, true, NULL, &sp, (uint64_t)i + 1, err, errlen)) goto out;
        } else {
            /* The steps still wanted and the context's room bound the chain. */
            int k = K, want = n_predict - 1 - i, room = hp->n_ctx - s->n_past;
            if (k > want) k = want;
            if (k > room) k = room;
            int32_t stop = p->ignore_eos ? -1 : eot;
            gpt2_prof_step_begin(s->prof, 1, s->n_past); /* no-op without a profile (then k is 1) */
            int rs = session_step(s, &next, 1, GPT2_STEP_SAMPLE, NULL, ahead, &sp, (uint64_t)i + 1, k, stop,
                                  err, errlen);
            gpt2_prof_step_end(s->prof);
            if (rs) {
                /* The device failed: on the CPU from the tokens really produced (the failed submit
                 * produced none), drawing there if it can, else from its logits. */
                if (session_move_to_cpu(s, err, errlen)) goto out;
                need_logits = !s->be->can_draw(s->be, &sp);
                if (need_logits
                        ? eval_tokens(s, &next, 1, NULL, true, NULL, &sp, (uint64_t)i + 1, err, errlen)
                        : session_step(s, &next, 1, GPT2_STEP_SAMPLE, NULL, ahead, &sp, (uint64_t)i + 1, k,
                                       stop, err, errlen))
                    goto out;
            }
            if (!need_logits) {
                s->history[s->n_past++] = next;
                next = ahead[0];
                n_ahead = k;
                at = 1;
            }
        }
        if (s->n_moves != moves && !need_logits) need_logits = !s->be->can_draw(s->be, &sp);
        st.decode_ms += gpt2_clock_ms() - t;
        st.decode_tokens++;
        st.decode_submits++;
    }
    if (s->n_past >= hp->n_ctx && (int)n_gen < p->n_predict && !st.hit_eos) {
        st.hit_context_end = true;
    }
    if (st.hit_context_end)
        gpt2_notice(VKG_NOTICE_WARNING, "reached the end of the context (%d positions); stopping", hp->n_ctx);
    if (cb) {
        const char *piece;
        size_t len;
        gpt2_stream_flush(&stream, &piece, &len);
        if (len) cb(user, -1, piece, len);
    }
    rc = 0;
out:
    st.decode_steps = st.decode_tokens;
    if (rc == 0 && s->be->counters.gpu_ns >= gpu0)
        st.decode_gpu_ms = (double)(s->be->counters.gpu_ns - gpu0) / 1e6;
    st.tokens_per_submit = st.decode_submits ? (double)st.decode_tokens / st.decode_submits : 0;
    session_fill_stats(s, &st, t0);
    if (stats) *stats = st;
    gpt2_stream_free(&stream);
    gpt2_sampler_free(sampler);
    if (rc == 0 && out_ids) {
        *out_ids = gen;
        *n_out = n_gen;
    } else {
        free(gen);
    }
    return rc;
}

/* ---- vocabulary-only models, synthetic models, devices ---- */

vkg_model *vkg_vocab_load(const char *path, char *err, size_t errlen)
{
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/config.json", path);
    struct stat sb;
    bool dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (!dir || stat(probe, &sb) == 0) return vkg_model_load(path, err, errlen);
    /* A directory without config.json: just a vocabulary. */
    vkg_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (gpt2_vocab_load_dir(&m->m.vocab, path, err, errlen)) {
        free(m);
        return NULL;
    }
    m->m.hp.n_vocab = m->m.vocab.n_tokens;
    snprintf(m->m.format, sizeof m->m.format, "vocab");
    return m;
}

/* The format a synth output's name asks for: "gguf" for .gguf, "ggml" for .bin, else NULL. */
static const char *format_of_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    if (n >= 5 && !strncmp(path + n - 5, ".gguf", 5)) return "gguf";
    if (n >= 4 && !strncmp(path + n - 4, ".bin", 4)) return "ggml";
    return NULL;
}

int vkg_synth(const char *path, const vkg_synth_params *p, unsigned flags, char *err, size_t errlen)
{
    gpt2_synth_params sp;
    gpt2_synth_defaults(&sp);
    if (!path || !*path) {
        snprintf(err, errlen, "synth: needs an output path");
        return -1;
    }
    if (gpt2_synth_parse_size(&sp, p->size ? p->size : "tiny", err, errlen)) return -1;
    const char *type = p->type ? p->type : "f32", *named = format_of_name(path);
    const char *format = p->format ? p->format : named ? named : "hf";
    if (strcmp(type, "f32") && strcmp(type, "f16")) {
        snprintf(err, errlen, "synth: type '%s' is not f32 or f16", type);
        return -1;
    }
    if (strcmp(format, "hf") && strcmp(format, "ggml") && strcmp(format, "gguf")) {
        snprintf(err, errlen, "synth: format '%s' is not hf, ggml or gguf", format);
        return -1;
    }
    if (named ? strcmp(format, named) != 0 : !strcmp(format, "gguf")) {
        snprintf(err, errlen, "%s: format %s does not match the name (%s)", path, format,
                 named
                     ? (!strcmp(named, "gguf") ? "a .gguf name is a GGUF file" : "a .bin name is a ggml file")
                     : "a GGUF file's name ends in .gguf");
        return -1;
    }
    bool hf = !strcmp(format, "hf");
    unsigned of = flags & VKG_OUT_FORCE ? 0 : GPT2_OUT_NO_REPLACE;
    const char *inputs[2] = {p->vocab_dir, NULL};
    int rc = gpt2_out_check(path, of | (hf ? GPT2_OUT_DIR : 0), inputs, err, errlen);
    if (rc != 0) return rc;
    sp.wtype = strcmp(type, "f16") ? GPT2_F32 : GPT2_F16;
    sp.seed = p->seed;
    gpt2_vocab vocab = {0};
    if (p->vocab_dir) {
        if (gpt2_vocab_load_dir(&vocab, p->vocab_dir, err, errlen)) return -1;
        sp.vocab = &vocab;
    }
    gpt2_model m;
    rc = gpt2_synth(&m, &sp, err, errlen);
    gpt2_vocab_free(&vocab);
    if (rc != 0) return -1;
    if (hf)
        rc = gpt2_write_hf_ex(&m, path, of, err, errlen);
    else if (!strcmp(format, "ggml"))
        rc = gpt2_write_ggml_ex(&m, path, of, err, errlen);
    else
        rc = gpt2_write_gguf_ex(&m, path, of, err, errlen);
    gpt2_model_free(&m);
    return rc;
}

const char *vkg_version(void) { return VKG_VERSION; }

int vkg_list_devices(void *file, char *err, size_t errlen)
{
    return gpt2_backend_vk_list_devices(file, err, errlen);
}

int vkg_default_threads(void) { return gpt2_backend_cpu_default_threads(); }

double vkg_measure_host_bandwidth(int n_threads, size_t bytes)
{
    return gpt2_backend_cpu_bandwidth(n_threads, bytes);
}

/* ---- profiling ---- */

int vkg_session_profile(vkg_session *s, char *err, size_t errlen)
{
    if (s->prof) return 0;
    if (s->n_past) {
        snprintf(err, errlen, "profiling must be turned on before the session's first eval");
        return -1;
    }
    if (!(s->prof = gpt2_prof_create())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(s->prof->backend, sizeof s->prof->backend, "%s", s->be->name);
    snprintf(s->prof->device, sizeof s->prof->device, "%s", s->be->device_name);
    if (s->be->peaks)
        s->be->peaks(s->be, &s->prof->peak_gbs, &s->prof->peak_gflops, s->prof->peak_note,
                     sizeof s->prof->peak_note);
    s->be->prof = s->prof;
    return 0;
}

double vkg_now_ms(void) { return gpt2_clock_ms(); }

void vkg_profile_event(vkg_session *s, const char *name, double t0_ms, double t1_ms)
{
    if (s->prof) gpt2_prof_add(s->prof, PROF_HOST, name, t0_ms * 1e3, (t1_ms - t0_ms) * 1e3, 0, 0);
}

void vkg_profile_print(const vkg_session *s, void *file)
{
    if (s->prof) gpt2_prof_print(s->prof, file);
}

void vkg_profile_json(const vkg_session *s, void *file)
{
    if (s->prof)
        gpt2_prof_json(s->prof, file);
    else
        fputs("null", file);
}

int vkg_profile_trace(const vkg_session *s, const char *path, unsigned flags, char *err, size_t errlen)
{
    if (!s->prof) {
        snprintf(err, errlen, "trace: the session has no profile (vkg_session_profile was not called)");
        return -1;
    }
    return gpt2_prof_trace(s->prof, path, flags & VKG_OUT_FORCE ? 0 : GPT2_OUT_NO_REPLACE, err, errlen);
}
