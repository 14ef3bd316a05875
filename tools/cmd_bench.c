/* cmd_bench.c - `vkgpt2 bench`: decode speed of a model beside the host's memory bandwidth.
 *
 * Each repeat evaluates a short prompt, then decodes -n tokens greedily, timing the decode steps
 * only. Reported: median / min / max ms per token over the repeats, the weight bytes streamed per
 * second at the median, the host memory bandwidth measured in the same run, and the process's CPU
 * use during the decode (user + system time over wall time), so a throttled or shared machine shows.
 * With --rerecord the Vulkan decode also runs with its command buffer recorded anew every token (as
 * llama.cpp does) and both rows are printed, each with the host thread's CPU ms per token: what
 * replaying one recording saves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "vkgpt2.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmd_bench(int argc, char **argv, int first)
{
    const char *model = NULL;
    int n_tokens = 32, repeats = 3, prompt_len = 8;
    bool json = false, rerecord = false;
    vkg_session_params sp = vkg_session_defaults();
    bool kv_set = false;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts("usage: vkgpt2 bench -m MODEL [-n TOKENS] [-r REPEATS] [-t THREADS] [--backend auto|cpu|vulkan]\n"
                 "                    [--device N] [--kv f16|f32] [--prompt-len N] [--rerecord] [--json]\n"
                 "Decode ms/token (median, min, max over repeats), weight GB/s at the median, host\n"
                 "memory bandwidth measured in the same run, CPU use during decode. --rerecord: also time\n"
                 "the Vulkan decode with its command buffer recorded anew every token.");
            return 0;
        }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "--rerecord")) { rerecord = true; continue; }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-n")) { if (cli_int(a, v, 1, 1 << 20, &n_tokens)) return 2; }
        else if (!strcmp(a, "-r") || !strcmp(a, "--repeat")) { if (cli_int(a, v, 1, 1000, &repeats)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (cli_int(a, v, 1, 1024, &sp.n_threads)) return 2; }
        else if (!strcmp(a, "--prompt-len")) { if (cli_int(a, v, 1, 1 << 20, &prompt_len)) return 2; }
        else if (!strcmp(a, "--device")) { if (cli_int(a, v, 0, 1000, &sp.device)) return 2; }
        else if (!strcmp(a, "--kv")) {
            if (strcmp(v, "f16") && strcmp(v, "f32")) { fprintf(stderr, "vkgpt2: --kv: '%s' is not f16 or f32\n", v); return 2; }
            sp.kv_f16 = !strcmp(v, "f16");
            kv_set = true;
        } else if (!strcmp(a, "--backend")) {
            if (!strcmp(v, "cpu")) sp.backend = VKG_BACKEND_CPU;
            else if (!strcmp(v, "vulkan")) sp.backend = VKG_BACKEND_VULKAN;
            else if (!strcmp(v, "auto")) sp.backend = VKG_BACKEND_AUTO;
            else { fprintf(stderr, "vkgpt2: --backend: '%s' is not auto, cpu or vulkan\n", v); return 2; }
        } else {
            fprintf(stderr, "vkgpt2: unknown option '%s' (see vkgpt2 bench --help)\n", a);
            return 2;
        }
    }
    if (!model) { fprintf(stderr, "vkgpt2: bench needs -m MODEL\n"); return 2; }
    if (!kv_set) sp.kv_f16 = sp.backend != VKG_BACKEND_CPU;
    char err[1024];
    vkg_model *m = vkg_model_load(model, err, sizeof err);
    if (!m) { fprintf(stderr, "vkgpt2: %s\n", err); return 1; }
    vkg_model_info info = vkg_model_get_info(m);
    if (prompt_len + n_tokens > info.n_ctx) {
        fprintf(stderr, "vkgpt2: --prompt-len %d + -n %d exceed the context of %d\n", prompt_len, n_tokens, info.n_ctx);
        vkg_model_free(m);
        return 2;
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
    if (!prompt || !ms) { fprintf(stderr, "vkgpt2: out of memory\n"); goto out; }
    for (int i = 0; i < prompt_len; i++) prompt[i] = (int32_t)((i * 7919 + 13) % info.n_vocab);
    if (!json) {
        printf("| model | backend | device | type | threads | mode | decode ms/token (median, min-max) | host ms/token | weights GB/s | host bandwidth GB/s | CPU %% |\n");
        printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    }
    for (int mode = 0; mode < (rerecord ? 2 : 1); mode++) {
        sp.rerecord = mode == 1;
        s = vkg_session_create(m, &sp, err, sizeof err);
        if (!s) { fprintf(stderr, "vkgpt2: %s\n", err); goto out; }
        if (mode == 1 && strcmp(vkg_session_backend(s), "vulkan")) break; /* nothing to re-record */
        double cpu_pct = 0, host_ms = 0;
        vkg_stats st = {0};
        for (int r = 0; r < repeats; r++) {
            vkg_session_reset(s);
            double c0 = cpu_ms(), w0 = now_ms(), h0 = thread_cpu_ms();
            if (vkg_generate(s, prompt, (size_t)prompt_len, &gp, NULL, NULL, NULL, NULL, &st, err, sizeof err)) {
                fprintf(stderr, "vkgpt2: %s\n", err);
                goto out;
            }
            double wall = now_ms() - w0, cpu = cpu_ms() - c0;
            ms[r] = st.decode_ms_per_token;
            /* The calling thread's CPU time over every step of the run, per step. */
            host_ms += (thread_cpu_ms() - h0) / (st.decode_tokens + 1) / repeats;
            cpu_pct += wall > 0 ? 100.0 * cpu / wall / repeats : 0;
        }
        qsort(ms, (size_t)repeats, sizeof *ms, cmp_double);
        double med = ms[repeats / 2];
        double gbs = med > 0 ? info.weights_bytes / (med * 1e6) : 0;
        const char *mname = mode ? "re-record" : "replay";
        if (json) {
            printf("{\"model\": ");
            cli_json_string(stdout, model, strlen(model));
            printf(", \"backend\": \"%s\", \"device\": ", vkg_session_backend(s));
            cli_json_string(stdout, vkg_session_device(s), strlen(vkg_session_device(s)));
            printf(", \"weight_type\": \"%s\", \"weights_bytes\": %zu, \"threads\": %d, \"mode\": \"%s\", "
                   "\"tokens\": %d, \"repeats\": %d, \"decode_ms_per_token\": {\"median\": %.4f, \"min\": %.4f, "
                   "\"max\": %.4f}, \"host_ms_per_token\": %.4f, \"weights_gbs\": %.2f, \"host_bandwidth_gbs\": %.2f, "
                   "\"cpu_percent\": %.0f, \"dispatches_per_token\": %llu, \"decode_cmdbuf_records\": %llu}\n",
                   info.weight_type, info.weights_bytes, sp.n_threads, mname, n_tokens, repeats, med, ms[0],
                   ms[repeats - 1], host_ms, gbs, bw, cpu_pct, (unsigned long long)st.dispatches_per_token,
                   (unsigned long long)st.decode_cmdbuf_records);
        } else {
            printf("| %s | %s | %s | %s | %d | %s | %.2f (%.2f-%.2f) | %.3f | %.1f | %.1f | %.0f |\n", model,
                   vkg_session_backend(s), vkg_session_device(s), info.weight_type, sp.n_threads, mname, med,
                   ms[0], ms[repeats - 1], host_ms, gbs, bw, cpu_pct);
        }
        vkg_session_free(s);
        s = NULL;
    }
    rc = 0;
out:
    free(prompt);
    free(ms);
    vkg_session_free(s);
    vkg_model_free(m);
    return rc;
}
