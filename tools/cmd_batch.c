/* cmd_batch.c - `vkgpt2 generate --parallel N` / `--prompts FILE`: many sequences at once.
 *
 * Sequences: with -p/-f, N continuations of that one prompt (sequence i samples with seed + i);
 * with --prompts FILE, one sequence per non-empty line (line i, counting non-empty lines from 0,
 * samples with seed + i), at most N at once (default 4), finished ones replaced by waiting ones.
 * Output: text mode prints each sequence as one block when it finishes, in the order they finish:
 *     [seq I] PROMPT+CONTINUATION
 * (a line "[seq I] ", the prompt and its continuation, then a newline); --json prints one JSON
 * object per sequence per line (JSON lines), in sequence order once all are done, with the fields
 * of the single-sequence --json object plus "seq", "seed", "slot" and "prompt_shared".
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/json.h"
#include "vkgpt2.h"

typedef struct batch_text {
    char *text;
    size_t len, cap;
} batch_text;

typedef struct batch_ctx {
    bool json;
    batch_text *out;                /* per sequence */
    const char *const *prompt_text; /* per sequence */
    const size_t *prompt_len;
    volatile sig_atomic_t *interrupted;
    bool *stdout_closed;
    bool failed; /* out of memory collecting text */
} batch_ctx;

static int append(batch_text *t, const char *s, size_t len)
{
    if (t->len + len + 1 > t->cap) {
        size_t cap = (t->len + len + 1) * 2;
        char *p = realloc(t->text, cap);
        if (!p) return -1;
        t->text = p;
        t->cap = cap;
    }
    memcpy(t->text + t->len, s, len);
    t->len += len;
    t->text[t->len] = 0;
    return 0;
}

static int on_batch_token(void *user, int seq, int32_t id, const char *text, size_t len)
{
    batch_ctx *c = user;
    batch_text *t = &c->out[seq];
    if (append(t, text, len)) {
        c->failed = true;
        return 1;
    }
    if (id >= 0) return *c->interrupted ? 1 : 0;
    /* The sequence finished: its block, unless JSON comes at the end. */
    if (!c->json && !*c->stdout_closed) {
        errno = 0;
        printf("[seq %d] ", seq);
        fwrite(c->prompt_text[seq], 1, c->prompt_len[seq], stdout);
        fwrite(t->text ? t->text : "", 1, t->len, stdout);
        fputc('\n', stdout);
        if ((fflush(stdout) || ferror(stdout)) && errno == EPIPE) *c->stdout_closed = true;
    }
    return 0;
}

static void print_ids(FILE *f, const int32_t *ids, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", ids[i]);
    fputc(']', f);
}

int cmd_generate_batch(const char *model_path, vkg_session_params sess, vkg_sample_params sp,
                       const char *prompt, size_t plen, const char *prompts_file, int n_parallel, bool json,
                       double load_ms_extra, volatile sig_atomic_t *interrupted, bool *stdout_closed);

int cmd_generate_batch(const char *model_path, vkg_session_params sess, vkg_sample_params sp,
                       const char *prompt, size_t plen, const char *prompts_file, int n_parallel, bool json,
                       double load_ms_extra, volatile sig_atomic_t *interrupted, bool *stdout_closed)
{
    char err[1024];
    int rc = 1;
    char *file = NULL;
    size_t n_seq = 0;
    const char **ptext = NULL;
    size_t *plens = NULL;
    int32_t **pids = NULL;
    size_t *n_pids = NULL;
    vkg_batch_seq *seqs = NULL;
    vkg_batch_result *res = NULL;
    batch_text *out = NULL;
    vkg_model *m = NULL;
    vkg_session *s = NULL;

    /* The prompts. */
    if (prompts_file) {
        size_t flen;
        if (!(file = cli_read_file(prompts_file, &flen))) return 1;
        for (size_t i = 0; i < flen;) {
            size_t e = i;
            while (e < flen && file[e] != '\n') e++;
            size_t l = e - i;
            if (l && file[i + l - 1] == '\r') l--;
            if (l) n_seq++;
            i = e + 1;
        }
        if (!n_seq) {
            fprintf(stderr, "vkgpt2: --prompts %s: no prompts (one per line)\n", prompts_file);
            free(file);
            return 1;
        }
        ptext = calloc(n_seq, sizeof *ptext);
        plens = calloc(n_seq, sizeof *plens);
        if (!ptext || !plens) goto oom;
        size_t k = 0;
        for (size_t i = 0; i < flen;) {
            size_t e = i;
            while (e < flen && file[e] != '\n') e++;
            size_t l = e - i;
            if (l && file[i + l - 1] == '\r') l--;
            if (l) {
                ptext[k] = file + i;
                plens[k] = l;
                k++;
            }
            i = e + 1;
        }
        if (n_parallel <= 0) n_parallel = n_seq < 4 ? (int)n_seq : 4;
    } else {
        n_seq = (size_t)(n_parallel > 0 ? n_parallel : 1);
        n_parallel = (int)n_seq;
        ptext = calloc(n_seq, sizeof *ptext);
        plens = calloc(n_seq, sizeof *plens);
        if (!ptext || !plens) goto oom;
        for (size_t i = 0; i < n_seq; i++) {
            ptext[i] = prompt;
            plens[i] = plen;
        }
    }
    if ((size_t)n_parallel > n_seq) n_parallel = (int)n_seq;
    sess.n_seq = n_parallel;

    double t0 = vkg_now_ms();
    if (!(m = vkg_model_load(model_path, err, sizeof err))) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        goto out;
    }
    if (!(s = vkg_session_create(m, &sess, err, sizeof err))) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        goto out;
    }
    double load_ms = vkg_now_ms() - t0 + load_ms_extra;
    vkg_model_info info = vkg_model_get_info(m);
    if (!strcmp(info.format, "synth") || sess.verbose)
        fprintf(stderr, "vkgpt2: model %s (%s, %s, %d layers, %d wide), %zu %s, %d at once\n", model_path,
                info.format, info.weight_type, info.n_layer, info.n_embd, n_seq,
                cli_plural((long)n_seq, "sequence", "sequences"), n_parallel);

    pids = calloc(n_seq, sizeof *pids);
    n_pids = calloc(n_seq, sizeof *n_pids);
    seqs = calloc(n_seq, sizeof *seqs);
    res = calloc(n_seq, sizeof *res);
    out = calloc(n_seq, sizeof *out);
    if (!pids || !n_pids || !seqs || !res || !out) goto oom;
    for (size_t i = 0; i < n_seq; i++) {
        /* N continuations of one prompt share its tokens (and so its KV cache). */
        if (i > 0 && !prompts_file) {
            pids[i] = pids[0];
            n_pids[i] = n_pids[0];
        } else if (vkg_tokenize(m, ptext[i], plens[i], &pids[i], &n_pids[i], err, sizeof err)) {
            if (prompts_file)
                fprintf(stderr, "vkgpt2: --prompts %s: line %zu: %s\n", prompts_file, i + 1, err);
            else
                fprintf(stderr, "vkgpt2: prompt: %s\n", err);
            goto out;
        }
        if (n_pids[i] > (size_t)info.n_ctx) {
            fprintf(stderr, "vkgpt2: prompt %zu: %zu tokens, more than the model's context of %d\n", i,
                    n_pids[i], info.n_ctx);
            goto out;
        }
        seqs[i] = (vkg_batch_seq){.prompt = pids[i], .n_prompt = n_pids[i], .params = sp};
        seqs[i].params.seed = sp.seed + i;
    }
    batch_ctx c = {.json = json,
                   .out = out,
                   .prompt_text = ptext,
                   .prompt_len = plens,
                   .interrupted = interrupted,
                   .stdout_closed = stdout_closed};
    vkg_stats st;
    if (vkg_generate_batch(s, seqs, n_seq, n_parallel, on_batch_token, &c, res, &st, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        goto out;
    }
    if (c.failed) {
        fprintf(stderr, "vkgpt2: out of memory collecting the text\n");
        goto out;
    }
    if (*stdout_closed) {
        rc = 141;
        goto out;
    }
    if (json) {
        FILE *f = stdout;
        const char *dev = vkg_session_device(s);
        for (size_t i = 0; i < n_seq; i++) {
            const vkg_batch_result *r = &res[i];
            fprintf(f, "{\"seq\": %zu, \"seed\": %llu, \"slot\": %d, \"prompt_shared\": %s, \"prompt\": ", i,
                    (unsigned long long)seqs[i].params.seed, r->slot, r->prompt_shared ? "true" : "false");
            json_write_string(f, ptext[i], plens[i]);
            fputs(", \"prompt_ids\": ", f);
            print_ids(f, pids[i], n_pids[i]);
            fputs(", \"ids\": ", f);
            print_ids(f, r->ids, r->n_ids);
            fputs(", \"text\": ", f);
            json_write_string(f, out[i].text ? out[i].text : "", out[i].len);
            fprintf(f, ", \"backend\": \"%s\", \"device\": ", vkg_session_backend(s));
            json_write_string(f, dev, strlen(dev));
            fprintf(f,
                    ", \"timings\": {\"load_ms\": %.3f, \"prompt_tokens\": %d, \"prompt_ms\": %.3f, "
                    "\"decode_tokens\": %d, \"decode_ms_per_token\": %.4f, \"sample_ms\": %.3f, "
                    "\"total_ms\": %.3f}",
                    load_ms, r->prompt_tokens, r->prompt_ms, r->decode_tokens, r->decode_ms_per_token,
                    r->sample_ms, r->total_ms + load_ms);
            fprintf(f, ", \"memory\": {\"weights_bytes\": %zu, \"kv_bytes\": %zu, \"scratch_bytes\": %zu}",
                    st.weights_bytes, st.kv_bytes, st.scratch_bytes);
            fprintf(
                f,
                ", \"counters\": {\"decode_cmdbuf_records\": %llu, \"prefill_cmdbuf_records\": %llu, "
                "\"batch_cmdbuf_records\": %llu, \"decode_steps\": %d, "
                "\"submits\": %llu, \"dispatches_per_token\": %llu, \"barriers_per_token\": %llu, "
                "\"readback_bytes_per_token\": %llu, \"device_memory_bytes\": %llu}",
                (unsigned long long)st.decode_cmdbuf_records, (unsigned long long)st.prefill_cmdbuf_records,
                (unsigned long long)st.batch_cmdbuf_records, st.decode_steps, (unsigned long long)st.submits,
                (unsigned long long)st.dispatches_per_token, (unsigned long long)st.barriers_per_token,
                (unsigned long long)st.readback_bytes_per_token, (unsigned long long)st.device_memory_bytes);
            fprintf(f, ", \"stopped\": \"%s\"}\n",
                    r->stopped && *interrupted ? "interrupted"
                        : r->hit_eos           ? "eos"
                        : r->hit_context_end   ? "context"
                                               : "n_predict");
        }
    }
    fflush(stdout);
    if (*stdout_closed || cli_stdout_errno() == EPIPE) {
        rc = 141;
        goto out;
    } /* quietly */
    fprintf(stderr, "\nvkgpt2: backend %s on %s, %zu %s, %d at once\n", vkg_session_backend(s),
            vkg_session_device(s), n_seq, cli_plural((long)n_seq, "sequence", "sequences"), n_parallel);
    fprintf(stderr, "vkgpt2:     load time = %9.2f ms\n", load_ms);
    fprintf(stderr, "vkgpt2:   prompt eval = %9.2f ms / %d %s computed\n", st.prompt_ms, st.prompt_tokens,
            cli_plural(st.prompt_tokens, "token", "tokens"));
    fprintf(
        stderr,
        "vkgpt2:        decode = %9.2f ms / %d %s, %d %s (%.2f ms/step per sequence, %.1f tok/s in all)\n",
        st.decode_ms, st.decode_steps, cli_plural(st.decode_steps, "step", "steps"), st.decode_tokens,
        cli_plural(st.decode_tokens, "token", "tokens"), st.decode_steps ? st.decode_ms / st.decode_steps : 0,
        st.decode_ms > 0 ? st.decode_tokens * 1e3 / st.decode_ms : 0);
    fprintf(stderr, "vkgpt2:   sample time = %9.2f ms\n", st.sample_ms);
    fprintf(stderr, "vkgpt2:    total time = %9.2f ms\n", st.total_ms + load_ms);
    fprintf(stderr, "vkgpt2:        memory = weights %.1f MiB, KV cache %.1f MiB (%d %s), scratch %.1f MiB\n",
            st.weights_bytes / 1048576.0, st.kv_bytes / 1048576.0, n_parallel,
            cli_plural(n_parallel, "slot", "slots"), st.scratch_bytes / 1048576.0);
    if (n_seq == 1)
        fprintf(stderr, "vkgpt2:          seed = %llu (-s %llu repeats this run)\n",
                (unsigned long long)sp.seed, (unsigned long long)sp.seed);
    else
        fprintf(stderr, "vkgpt2:          seed = %llu (sequence i: %llu + i; -s %llu repeats this run)\n",
                (unsigned long long)sp.seed, (unsigned long long)sp.seed, (unsigned long long)sp.seed);
    /* The counters are the Vulkan backend's: none on the CPU. */
    if (sess.verbose && strcmp(vkg_session_backend(s), "cpu"))
        fprintf(stderr, "vkgpt2:      counters = batch records %llu, prefill records %llu, submits %llu\n",
                (unsigned long long)st.batch_cmdbuf_records, (unsigned long long)st.prefill_cmdbuf_records,
                (unsigned long long)st.submits);
    rc = *interrupted ? 130 : 0;
    goto out;
oom:
    fprintf(stderr, "vkgpt2: out of memory\n");
out:
    if (res) vkg_batch_results_free(res, n_seq);
    for (size_t i = 0; pids && i < n_seq; i++)
        if (i == 0 || prompts_file) vkg_free(pids[i]);
    for (size_t i = 0; out && i < n_seq; i++) free(out[i].text);
    free(pids);
    free(n_pids);
    free(seqs);
    free(res);
    free(out);
    free(ptext);
    free(plens);
    free(file);
    vkg_session_free(s);
    vkg_model_free(m);
    return rc;
}
