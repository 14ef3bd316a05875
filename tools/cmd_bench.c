/* cmd_bench.c - `vkgpt2 bench`: decode speed of a model beside the host's memory bandwidth.
 *
 * Each repeat evaluates a short prompt, then decodes -n tokens greedily, timing the decode steps
 * only. Reported: median / min / max ms per token over the repeats, the weight bytes streamed per
 * second at the median, the host memory bandwidth measured in the same run, and the process's CPU
 * use during the decode (user + system time over wall time), so a throttled or shared machine shows.
 * Vulkan rows come twice, with 1 decode token per submit and with the default several (the host us
 * per token, the GPU us per token from device timestamps, dispatches and submits per token show
 * what a chain saves). With --rerecord the Vulkan decode also runs with its command buffer recorded anew every token (as
 * llama.cpp does) and both rows are printed, each with the host thread's CPU ms per token: what
 * replaying one recording saves. A row's mode says which: "replay" or "re-record" on Vulkan,
 * "direct" on the CPU backend (the host runs each kernel itself; nothing is recorded).
 * With --parallel N1,N2,... it measures batched decode instead: for each N, N sequences of the same
 * prompt decode -n tokens together (vkg_generate_batch, greedy), and the table gives the aggregate
 * tokens per second over all sequences and the ms per token each sequence sees (one decode step).
 *
 * Rows name the model by --label, else by the -m path; --synth models (made in a temporary
 * directory) are labelled synth-SIZE-TYPE. Every row also carries the model's GPT-2 parameter count,
 * format and vocabulary size, and the thread count the run used (never 0: the default is resolved
 * to a count before the session starts).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/json.h"
#include "vkgpt2.h"

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
        (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* What every row says about the model: the name it goes by, its shape, and its GPT-2 parameter
 * count (from the shape, LM head tied to wte as GPT-2's own counts are). */
typedef struct bench_model {
    const char *name;    /* --label, else the -m path */
    vkg_model_info info; /* shape, format, weight type and bytes */
    double params;       /* parameters */
} bench_model;

/* GPT-2's parameter count for a shape: wte + wpe, per layer 12 n_embd^2 + 13 n_embd (attention,
 * MLP, two layer norms), and ln_f. 124M / 355M / 774M / 1558M for the published shapes. */
static double gpt2_params(const vkg_model_info *i)
{
    double e = i->n_embd;
    return (double)i->n_vocab * e + (double)i->n_ctx * e + i->n_layer * (12 * e * e + 13 * e) + 2 * e;
}

/* Writes s as one CSV field, quoted (with "" for ") when it holds a comma, quote or line break. */
static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"') putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* The JSON fields every row starts with after "kind": the model, its shape, where it ran and how. */
static void json_model_fields(const bench_model *bm, vkg_session *s, int threads)
{
    printf("\"model\": ");
    json_write_string(stdout, bm->name, strlen(bm->name));
    printf(", \"params\": %.0f, \"format\": ", bm->params);
    json_write_string(stdout, bm->info.format, strlen(bm->info.format));
    printf(", \"n_vocab\": %d, \"weight_type\": \"%s\", \"weights_bytes\": %zu, \"backend\": \"%s\", "
           "\"device\": ",
           bm->info.n_vocab, bm->info.weight_type, bm->info.weights_bytes, vkg_session_backend(s));
    json_write_string(stdout, vkg_session_device(s), strlen(vkg_session_device(s)));
    printf(", \"threads\": %d", threads);
}

/* The CSV fields model..threads of a row (see the header in cmd_bench). */
static void csv_model_fields(const bench_model *bm, vkg_session *s, int threads)
{
    csv_field(bm->name);
    printf(",%.0f,", bm->params);
    csv_field(bm->info.format);
    printf(",%d,%s,", bm->info.n_vocab, vkg_session_backend(s));
    csv_field(vkg_session_device(s));
    printf(",%s,%zu,%d", bm->info.weight_type, bm->info.weights_bytes, threads);
}

static const char csv_header[] =
    "kind,model,params,format,n_vocab,backend,device,weight_type,weights_bytes,threads,"
    "mode,n_past,decode_ms_median,decode_ms_min,decode_ms_max,prompt_tok_s,weights_gbs,"
    "host_bandwidth_gbs,tokens_per_submit,host_us_per_token,gpu_us_per_token,"
    "dispatches_per_token,submits_per_token\n";

/* Decode ms/token at n_past = 0, step, 2 step, ... (< n_ctx - 4): the context is filled with
 * batched evals between the points, then 4 greedy tokens are timed at each. */
static int ctx_sweep(vkg_session *s, const bench_model *bm, int threads, int step, bool json, bool csv)
{
    char err[1024];
    const vkg_model_info *info = &bm->info;
    int32_t *fill = malloc((size_t)info->n_ctx * sizeof *fill);
    if (!fill) return -1;
    for (int i = 0; i < info->n_ctx; i++) fill[i] = (int32_t)((i * 7919 + 13) % info->n_vocab);
    vkg_session_reset(s);
    vkg_sample_params gp = vkg_sample_defaults();
    gp.temp = 0;
    gp.ignore_eos = true;
    gp.n_predict = 5;
    if (!json && !csv)
        printf("\n| model | backend | threads | n_past | decode ms/token |\n| --- | --- | ---: | ---: | ---: "
               "|\n");
    for (int at = 0; at + 6 < info->n_ctx; at += step) {
        int have = vkg_session_n_past(s);
        if (at > have && vkg_eval(s, fill + have, (size_t)(at - have), NULL, err, sizeof err)) {
            fprintf(stderr, "vkgpt2: %s\n", err);
            free(fill);
            return -1;
        }
        int32_t one = fill[at];
        vkg_stats st;
        if (vkg_generate(s, &one, 1, &gp, NULL, NULL, NULL, NULL, &st, err, sizeof err)) {
            fprintf(stderr, "vkgpt2: %s\n", err);
            free(fill);
            return -1;
        }
        int np = vkg_session_n_past(s);
        if (json) {
            printf("{\"kind\": \"ctx\", ");
            json_model_fields(bm, s, threads);
            printf(", \"n_past\": %d, \"decode_ms_per_token\": %.4f}\n", at, st.decode_ms_per_token);
        } else if (csv) {
            printf("ctx,");
            csv_model_fields(bm, s, threads);
            printf(",,%d,%.4f,,,,,,,,,,\n", at, st.decode_ms_per_token);
        } else {
            printf("| %s | %s | %d | %d | %.3f |\n", bm->name, vkg_session_backend(s), threads, at,
                   st.decode_ms_per_token);
        }
        fflush(stdout);
        if (np > at + step) break;
    }
    free(fill);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmd_bench_kernels(int argc, char **argv, int first); /* cmd_bench_kernels.c */

int cmd_bench(int argc, char **argv, int first);

/* nftw callback of rm_tree: removes one entry (children first). */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a directory and everything under it (a --synth model). */
static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* --synth SIZES [--types T,...] [--vocab DIR]: each synthetic model in a temporary directory,
 * benchmarked by a nested cmd_bench with -m and --label synth-SIZE-TYPE; --threads-sweep LIST: a
 * nested run per thread count on the CPU. */
static int bench_expand(int argc, char **argv, int first, const char *synth, const char *types,
                        const char *vocab, const char *tsweep)
{
    if (!synth && (types || vocab)) {
        fprintf(stderr, "vkgpt2: bench: %s applies to --synth models only\n", types ? "--types" : "--vocab");
        return 2;
    }
    char **av = calloc((size_t)argc + 10, sizeof *av);
    if (!av) return 1;
    int n = 0;
    for (int i = 0; i < first; i++) av[n++] = argv[i];
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--synth") || !strcmp(argv[i], "--types") ||
            !strcmp(argv[i], "--threads-sweep") || !strcmp(argv[i], "--vocab")) {
            i++;
            continue;
        }
        av[n++] = argv[i];
    }
    int base = n, rc = 0;
    const char *td = getenv("TMPDIR");
    char tmpl[512], path[1024], tbuf[128], sbuf[256], ybuf[64], lbuf[384];
    snprintf(tmpl, sizeof tmpl, "%s/vkgpt2-bench-XXXXXX", td && *td ? td : "/tmp");
    bool made = false;
    snprintf(sbuf, sizeof sbuf, "%s", synth ? synth : "-");
    for (char *sz = sbuf; sz && *sz && !rc;) {
        char *sz_next = strchr(sz, ',');
        if (sz_next) *sz_next++ = 0;
        snprintf(ybuf, sizeof ybuf, "%s", types ? types : "f16");
        for (char *ty = ybuf; ty && *ty && !rc;) {
            char *comma = strchr(ty, ',');
            if (comma) *comma = 0;
            n = base;
            if (synth) {
                if (!made && !mkdtemp(tmpl)) {
                    perror("vkgpt2: bench: mkdtemp");
                    rc = 1;
                    break;
                }
                made = true;
                snprintf(path, sizeof path, "%s/gpt2-%s-%s", tmpl, sz, ty);
                snprintf(lbuf, sizeof lbuf, "synth-%s-%s", sz, ty);
                vkg_synth_params sp = {.size = sz, .format = "hf", .type = ty, .vocab_dir = vocab, .seed = 1};
                char err[512];
                fprintf(stderr, "vkgpt2: bench: synthesizing %s (%s%s)\n", lbuf,
                        vocab ? "vocabulary " : "byte vocabulary", vocab ? vocab : "");
                if (vkg_synth(path, &sp, 0, err, sizeof err)) {
                    fprintf(stderr, "vkgpt2: bench: %s\n", err);
                    rc = 1;
                    break;
                }
                av[n++] = "-m";
                av[n++] = path;
                av[n++] = "--label";
                av[n++] = lbuf;
            }
            if (tsweep) {
                char tl[128];
                snprintf(tl, sizeof tl, "%s", tsweep);
                for (char *t = tl; t && *t && !rc;) {
                    char *c2 = strchr(t, ',');
                    if (c2) *c2 = 0;
                    int m = n;
                    snprintf(tbuf, sizeof tbuf, "%s", t);
                    av[m++] = "-t";
                    av[m++] = tbuf;
                    av[m++] = "--backend";
                    av[m++] = "cpu";
                    rc = cmd_bench(m, av, first);
                    t = c2 ? c2 + 1 : NULL;
                }
            } else {
                rc = cmd_bench(n, av, first);
            }
            if (synth) rm_tree(path);
            ty = comma ? comma + 1 : NULL;
        }
        sz = sz_next;
    }
    if (made) rmdir(tmpl);
    free(av);
    return rc;
}

/* --parallel: batched decode at each width in list. */
static int bench_parallel(vkg_model *m, const bench_model *bm, vkg_session_params sp, const int *widths,
                          int n_widths, int n_tokens, int repeats, int prompt_len, bool json)
{
    char err[1024];
    const vkg_model_info info = bm->info;
    int max_w = 1;
    for (int i = 0; i < n_widths; i++) max_w = widths[i] > max_w ? widths[i] : max_w;
    sp.n_seq = max_w;
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    if (!s) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return 1;
    }
    int32_t *prompt = malloc((size_t)prompt_len * sizeof *prompt);
    vkg_batch_seq *seqs = malloc((size_t)max_w * sizeof *seqs);
    double *ms = malloc((size_t)repeats * sizeof *ms);
    int rc = 1;
    if (!prompt || !seqs || !ms) {
        fprintf(stderr, "vkgpt2: out of memory\n");
        goto out;
    }
    for (int i = 0; i < prompt_len; i++) prompt[i] = (int32_t)((i * 7919 + 13) % info.n_vocab);
    vkg_sample_params gp = vkg_sample_defaults();
    gp.temp = 0;
    gp.ignore_eos = true;
    gp.n_predict = n_tokens;
    for (int i = 0; i < max_w; i++)
        seqs[i] = (vkg_batch_seq){.prompt = prompt, .n_prompt = (size_t)prompt_len, .params = gp};
    if (!json) {
        printf("| model | backend | device | type | threads | sequences | decode steps | per-sequence "
               "ms/token (median, min-max) | aggregate tok/s | batch records |\n");
        printf("| --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |\n");
    }
    for (int w = 0; w < n_widths; w++) {
        vkg_stats st = {0};
        int steps = 0, toks = 0;
        for (int r = 0; r < repeats; r++) {
            if (vkg_generate_batch(s, seqs, (size_t)widths[w], widths[w], NULL, NULL, NULL, &st, err,
                                   sizeof err)) {
                fprintf(stderr, "vkgpt2: %s\n", err);
                goto out;
            }
            ms[r] = st.decode_steps ? st.decode_ms / st.decode_steps : 0;
            steps = st.decode_steps;
            toks = st.decode_tokens;
        }
        qsort(ms, (size_t)repeats, sizeof *ms, cmp_double);
        double med = ms[repeats / 2], tps = med > 0 ? toks / (med * steps) * 1e3 : 0;
        if (json) {
            printf("{\"kind\": \"parallel\", ");
            json_model_fields(bm, s, sp.n_threads);
            printf(
                ", \"sequences\": %d, \"tokens\": %d, \"repeats\": %d, "
                "\"decode_steps\": %d, \"ms_per_token\": {\"median\": %.4f, \"min\": %.4f, \"max\": %.4f}, "
                "\"aggregate_tokens_per_s\": %.2f, \"batch_cmdbuf_records\": %llu}\n",
                widths[w], n_tokens, repeats, steps, med, ms[0], ms[repeats - 1], tps,
                (unsigned long long)st.batch_cmdbuf_records);
        } else {
            printf("| %s | %s | %s | %s | %d | %d | %d | %.2f (%.2f-%.2f) | %.1f | %llu |\n", bm->name,
                   vkg_session_backend(s), vkg_session_device(s), info.weight_type, sp.n_threads, widths[w],
                   steps, med, ms[0], ms[repeats - 1], tps, (unsigned long long)st.batch_cmdbuf_records);
        }
        fflush(stdout);
    }
    rc = 0;
out:
    free(prompt);
    free(seqs);
    free(ms);
    vkg_session_free(s);
    return rc;
}

/* The page of `vkgpt2 bench --help`. */
static void bench_help(void)
{
    puts("usage: vkgpt2 bench -m MODEL [-n TOKENS] [-r REPEATS] [-t THREADS] [--backend auto|cpu|vulkan]\n"
         "                    [--device D] [--kv f16|f32] [--prompt-len N] [--rerecord] [--json]\n"
         "                    [--parallel N1,N2,...] [--label NAME]\n"
         "       vkgpt2 bench --synth SIZES [--types f16,f32] [--vocab DIR] [same options]\n"
         "Decode ms/token (median, min, max over repeats), weight GB/s at the median, host\n"
         "memory bandwidth measured in the same run, CPU use during decode. Defaults: -n 32, -r 3,\n"
         "-t the physical cores (the threads column shows the count used), --prompt-len 8.\n"
         "Mode column: replay (Vulkan: one recorded command buffer replayed every token),\n"
         "re-record (--rerecord: recorded anew every token), direct (CPU backend: nothing recorded).\n"
         "Vulkan rows come in pairs: 1 decode token per submit, then the default 8 (each step's pick\n"
         "feeding the next on the device). Host us/token: the calling thread's CPU time; GPU us/token:\n"
         "device timestamps around every dispatch (on in bench), first start to last end per submit;\n"
         "dispatches/token and submits/token of the decode.\n"
         "  --device D          the Vulkan device: " CLI_DEVICE_FORMS "\n"
         "                      (see vkgpt2 devices; default: the best one)\n"
         "  --label NAME        name of the model in the rows (default: the -m path)\n"
         "  --csv               CSV instead of the markdown table (--json: JSON lines, \"kind\" decode/ctx)\n"
         "  --ctx-sweep STEP    decode ms/token at n_past = 0, STEP, 2 STEP, ... up to the context\n"
         "  --threads-sweep L   one CPU run per thread count in L (e.g. 1,2)\n"
         "  --synth SIZES       instead of -m: synthetic GPT-2s (tiny,124M,355M,774M,1558M) made in a\n"
         "                      temporary directory and removed after; rows are named synth-SIZE-TYPE\n"
         "  --types T,...       weight types of the --synth models (default f16)\n"
         "  --vocab DIR         GPT-2's real vocabulary for the --synth models (tools/fetch-vocab.sh\n"
         "                      puts it in data/gpt2-vocab); default a small byte-level one\n"
         "  --parallel N1,N2,.. batched decode instead: for each N, N sequences decode -n tokens\n"
         "                      together; aggregate tok/s and the ms per token each sequence sees\n"
         "Also: vkgpt2 bench kernels --help (every op at every GPT-2 size).");
}

int cmd_bench(int argc, char **argv, int first)
{
    if (first < argc && !strcmp(argv[first], "kernels")) return cmd_bench_kernels(argc, argv, first + 1);
    {
        const char *synth = NULL, *types = NULL, *tsweep = NULL, *vocab = NULL;
        bool help = false; /* --help anywhere: print it, make no model */
        for (int i = first; i < argc; i++) help |= !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
        for (int i = first; i + 1 < argc && !help; i++) {
            if (!strcmp(argv[i], "--synth"))
                synth = argv[++i];
            else if (!strcmp(argv[i], "--types"))
                types = argv[++i];
            else if (!strcmp(argv[i], "--vocab"))
                vocab = argv[++i];
            else if (!strcmp(argv[i], "--threads-sweep"))
                tsweep = argv[++i];
        }
        if (help) {
            bench_help();
            return 0;
        }
        if (synth || tsweep || types || vocab)
            return bench_expand(argc, argv, first, synth, types, vocab, tsweep);
    }
    const char *model = NULL, *label = NULL;
    int n_tokens = 32, repeats = 3, prompt_len = 8;
    bool json = false, rerecord = false, csv = false;
    int ctx_step = 0; /* --ctx-sweep STEP */
    vkg_session_params sp = vkg_session_defaults();
    int widths[32], n_widths = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!strcmp(a, "--rerecord")) {
            rerecord = true;
            continue;
        }
        if (!strcmp(a, "--csv")) {
            csv = true;
            continue;
        }
        if (!strcmp(a, "--ctx-sweep")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1 << 20, &ctx_step)) return 2;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--label")) {
            if (!*v) {
                fprintf(stderr, "vkgpt2: --label: the name is empty\n");
                return 2;
            }
            label = v;
        } else if (!strcmp(a, "-n")) {
            if (cli_int(a, v, 1, 1 << 20, &n_tokens)) return 2;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repeat")) {
            if (cli_int(a, v, 1, 1000, &repeats)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (cli_int(a, v, 1, 1024, &sp.n_threads)) return 2;
        } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
            for (const char *p = v; *p;) {
                char num[16];
                size_t l = strcspn(p, ",");
                if (l == 0 || l >= sizeof num || n_widths == 32) {
                    fprintf(stderr, "vkgpt2: --parallel: '%s' is not a list of up to 32 numbers\n", v);
                    return 2;
                }
                memcpy(num, p, l);
                num[l] = 0;
                if (cli_int(a, num, 1, 4096, &widths[n_widths++])) return 2;
                p += l;
                if (*p == ',') p++;
            }
        } else if (!strcmp(a, "--prompt-len")) {
            if (cli_int(a, v, 1, 1 << 20, &prompt_len)) return 2;
        } else if (!strcmp(a, "--device")) {
            if (cli_device(a, v, &sp.device, &sp.device_name)) return 2;
        } else if (!strcmp(a, "--kv")) {
            int k;
            if (cli_choose(a, v, cli_kv_types, &k)) return 2;
            sp.kv = (vkg_kv_type)k;
        } else if (!strcmp(a, "--backend")) {
            int b;
            if (cli_choose(a, v, cli_backends, &b)) return 2;
            sp.backend = (vkg_backend)b;
        } else {
            fprintf(stderr, "vkgpt2: unknown option '%s' (see vkgpt2 bench --help)\n", a);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr,
                "vkgpt2: bench needs -m MODEL, or --synth SIZES for synthetic GPT-2s (e.g. --synth 124M)\n");
        return 2;
    }
    /* "All cores" made explicit, so that the rows show the count the session and the bandwidth
     * measurement use (the CPU pool resolves <= 0 the same way). */
    if (sp.n_threads <= 0) {
        sp.n_threads = vkg_default_threads();
    }
    char err[1024];
    vkg_model *m = vkg_model_load(model, err, sizeof err);
    if (!m) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return 1;
    }
    bench_model bm = {.name = label ? label : model, .info = vkg_model_get_info(m)};
    bm.params = gpt2_params(&bm.info);
    const vkg_model_info info = bm.info;
    if (prompt_len + n_tokens > info.n_ctx) {
        fprintf(stderr, "vkgpt2: --prompt-len %d + -n %d exceed the context of %d\n", prompt_len, n_tokens,
                info.n_ctx);
        vkg_model_free(m);
        return 2;
    }
    if (n_widths) {
        int prc = bench_parallel(m, &bm, sp, widths, n_widths, n_tokens, repeats, prompt_len, json);
        vkg_model_free(m);
        return prc;
    }
    double bw = vkg_measure_host_bandwidth(sp.n_threads, (size_t)512 << 20);
    int32_t *prompt = malloc((size_t)prompt_len * sizeof *prompt);
    double *ms = malloc((size_t)repeats * sizeof *ms);
    vkg_sample_params gp = vkg_sample_defaults();
    gp.temp = 0;
    gp.ignore_eos = true;
    gp.n_predict = n_tokens + 1; /* n_tokens decode steps after the first pick */
    int rc = 1;
    vkg_session *s = NULL;
    double prompt_tps[2] = {0, 0};
    int n_modes = 0;
    if (!prompt || !ms) {
        fprintf(stderr, "vkgpt2: out of memory\n");
        goto out;
    }
    for (int i = 0; i < prompt_len; i++) prompt[i] = (int32_t)((i * 7919 + 13) % info.n_vocab);
    static bool csv_header_done; /* one header for all the nested runs of --synth / --threads-sweep */
    if (csv) {
        if (!csv_header_done) fputs(csv_header, stdout);
        csv_header_done = true;
    } else if (!json) {
        printf("| model | backend | device | type | threads | mode | tokens/submit | decode ms/token "
               "(median, min-max) | host us/token | GPU us/token | dispatches/token | submits/token | "
               "weights GB/s | host bandwidth GB/s | CPU %% |\n");
        printf("| --- | --- | --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: "
               "| ---: |\n");
    }
    /* Vulkan rows: one decode token per submit, then the default (several per submit). */
    static const int ks[2] = {1, VKG_DEFAULT_TOKENS_PER_SUBMIT};
    for (int row = 0; row < (rerecord ? 4 : 2); row++) {
        int mode = row / 2;
        sp.rerecord = mode == 1;
        sp.tokens_per_submit = ks[row % 2];
        sp.time_gpu = true;
        s = vkg_session_create(m, &sp, err, sizeof err);
        if (!s) {
            fprintf(stderr, "vkgpt2: %s\n", err);
            goto out;
        }
        bool vulkan = !strcmp(vkg_session_backend(s), "vulkan");
        if (!vulkan && row > 0) { /* the CPU: nothing recorded, nothing submitted */
            vkg_session_free(s);
            s = NULL;
            break;
        }
        double cpu_pct = 0, host_ms = 0, gpu_us = 0, submits = 0;
        vkg_stats st = {0};
        for (int r = 0; r < repeats; r++) {
            vkg_session_reset(s);
            double c0 = cpu_ms(), w0 = vkg_now_ms(), h0 = thread_cpu_ms();
            if (vkg_generate(s, prompt, (size_t)prompt_len, &gp, NULL, NULL, NULL, NULL, &st, err,
                             sizeof err)) {
                fprintf(stderr, "vkgpt2: %s\n", err);
                goto out;
            }
            double wall = vkg_now_ms() - w0, cpu = cpu_ms() - c0;
            ms[r] = st.decode_ms_per_token;
            /* The calling thread's CPU time over every step of the run, per step. */
            host_ms += (thread_cpu_ms() - h0) / (st.decode_tokens + 1) / repeats;
            gpu_us += st.decode_tokens ? st.decode_gpu_ms * 1e3 / st.decode_tokens / repeats : 0;
            submits += st.decode_tokens ? (double)st.decode_submits / st.decode_tokens / repeats : 0;
            cpu_pct += wall > 0 ? 100.0 * cpu / wall / repeats : 0;
        }
        qsort(ms, (size_t)repeats, sizeof *ms, cmp_double);
        double med = ms[repeats / 2];
        double gbs = med > 0 ? info.weights_bytes / (med * 1e6) : 0;
        if (row % 2 == 0) prompt_tps[mode] = st.prompt_ms > 0 ? st.prompt_tokens * 1e3 / st.prompt_ms : 0;
        n_modes = mode + 1;
        int k = vulkan ? ks[row % 2] : 1;
        const char *mname = !vulkan ? "direct" : mode ? "re-record" : "replay";
        if (csv) {
            printf("decode,");
            csv_model_fields(&bm, s, sp.n_threads);
            printf(",%s,%d,%.4f,%.4f,%.4f,%.2f,%.2f,%.2f,%d,%.1f,%.1f,%llu,%.3f\n", mname, prompt_len, med,
                   ms[0], ms[repeats - 1], prompt_tps[mode], gbs, bw, k, host_ms * 1e3, gpu_us,
                   (unsigned long long)st.dispatches_per_token, submits);
        } else if (json) {
            printf("{\"kind\": \"decode\", ");
            json_model_fields(&bm, s, sp.n_threads);
            printf(
                ", \"mode\": \"%s\", \"prompt_tokens\": %d, \"prompt_tok_s\": %.2f, "
                "\"tokens\": %d, \"repeats\": %d, \"decode_ms_per_token\": {\"median\": %.4f, \"min\": %.4f, "
                "\"max\": %.4f}, \"host_ms_per_token\": %.4f, \"weights_gbs\": %.2f, \"host_bandwidth_gbs\": "
                "%.2f, "
                "\"cpu_percent\": %.0f, \"dispatches_per_token\": %llu, \"decode_cmdbuf_records\": %llu, "
                "\"tokens_per_submit\": %d, \"host_us_per_token\": %.1f, \"gpu_us_per_token\": %.1f, "
                "\"submits_per_token\": %.3f}\n",
                mname, prompt_len, prompt_tps[mode], n_tokens, repeats, med, ms[0], ms[repeats - 1], host_ms,
                gbs, bw, cpu_pct, (unsigned long long)st.dispatches_per_token,
                (unsigned long long)st.decode_cmdbuf_records, k, host_ms * 1e3, gpu_us, submits);
        } else {
            char gpu[32] = "-", disp[32] = "-", subm[32] = "-"; /* the CPU backend submits nothing */
            if (vulkan) {
                snprintf(gpu, sizeof gpu, "%.0f", gpu_us);
                snprintf(disp, sizeof disp, "%llu", (unsigned long long)st.dispatches_per_token);
                snprintf(subm, sizeof subm, "%.3f", submits);
            }
            printf("| %s | %s | %s | %s | %d | %s | %d | %.2f (%.2f-%.2f) | %.0f | %s | %s | %s | %.1f | "
                   "%.1f | %.0f |\n",
                   bm.name, vkg_session_backend(s), vkg_session_device(s), info.weight_type, sp.n_threads,
                   mname, k, med, ms[0], ms[repeats - 1], host_ms * 1e3, gpu, disp, subm, gbs, bw, cpu_pct);
        }
        fflush(stdout);
        vkg_session_free(s);
        s = NULL;
    }
    if (!json && !csv) /* after the table, which these lines would otherwise split */
        for (int i = 0; i < n_modes; i++)
            printf("%sprompt%s: %d tokens at %.1f tok/s\n", i ? "" : "\n",
                   n_modes > 1 ? (i ? " (re-record)" : " (replay)") : "", prompt_len, prompt_tps[i]);
    if (ctx_step) {
        sp.rerecord = false;
        s = vkg_session_create(m, &sp, err, sizeof err);
        if (!s) {
            fprintf(stderr, "vkgpt2: %s\n", err);
            goto out;
        }
        if (ctx_sweep(s, &bm, sp.n_threads, ctx_step, json, csv)) goto out;
    }
    rc = 0;
out:
    free(prompt);
    free(ms);
    vkg_session_free(s);
    vkg_model_free(m);
    return rc;
}
