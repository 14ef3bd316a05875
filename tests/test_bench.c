/* test_bench.c - `vkgpt2 bench` rows and vkgpt2-perfdoc (docs/PERFORMANCE.md's tables and charts).
 *
 * bench: the built binary run as a child process (fork + execve, stdout and stderr into files,
 * under a timeout) on a tiny synthetic model made by `vkgpt2 synth` in a fresh temporary directory
 * per test, its JSON rows parsed: the threads column is the thread count the run used (never 0),
 * CPU rows' mode is "direct" (nothing is replayed), Vulkan rows' "replay", --synth rows are named
 * synth-SIZE-TYPE and no temporary path reaches stdout, and bench without -m points at --synth.
 * perfdoc: the axis functions (perfdoc_axis.c, linked in) pick log against linear, tick and label;
 * the binary, fed rows whose sizes span decades, draws log axes that say so, tick labels that do
 * not overlap, legends that name backend, type and format, and tables without temporary paths.
 */
#include <math.h>

#include "vkgpt2.h"

#include "cli_harness.h"
#include "tools/perfdoc_axis.h"
#include "vkgpt2.h"

static char perfdoc_bin[4096];

/* The harness's directory and vkgpt2 (bin_path), and vkgpt2-perfdoc beside it. */
static void bench_setup(void)
{
    setup();
    snprintf(perfdoc_bin, sizeof perfdoc_bin, "%s/tools/vkgpt2-perfdoc", getenv("VKGPT2_BUILD_ROOT"));
    cr_assert(access(perfdoc_bin, X_OK) == 0, "%s: not an executable (%s)", perfdoc_bin, strerror(errno));
}

TestSuite(bench, .init = bench_setup, .fini = teardown, .timeout = 240);
TestSuite(perfdoc, .init = bench_setup, .fini = teardown, .timeout = 120);

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

/* Runs bin with args (NULL-terminated, argv[0] excluded) and TMPDIR set to the test's directory
 * (where --synth makes its models), stdin empty, for at most 180 s. */
static proc run_bin(const char *bin, const char *const *args)
{
    char tmpenv[4200];
    snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", tmp_dir);
    run_exe = bin;
    run_timeout_s = 180;
    proc p = run_full(NULL, 0, ENV(tmpenv), args);
    run_exe = NULL;
    return p;
}

#define BENCH(...) run_bin(bin_path, ARGS("bench", __VA_ARGS__))
#define PERFDOC(...) run_bin(perfdoc_bin, ARGS(__VA_ARGS__))

/* Makes the tiny synthetic model ./tiny (f16, byte vocabulary). */
static void make_tiny(void)
{
    proc p = run_bin(bin_path, ARGS("synth", "-o", "tiny", "--size", "tiny", "--type", "f16"));
    expect_ok(&p, "synth tiny");
    proc_free(&p);
}

/* The JSON rows of a bench --json run (one object per line); returns how many, at most max. */
static int parse_rows(const char *out, json_doc **rows, int max)
{
    int n = 0;
    for (const char *l = out; *l && n < max;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len) {
            char err[256];
            rows[n] = json_parse(l, len, err, sizeof err);
            cr_assert(rows[n], "row %d is not JSON (%s): %.*s", n, err, (int)len, l);
            n++;
        }
        l = e ? e + 1 : l + len;
    }
    return n;
}

static const char *row_str(const json_doc *d, const char *k)
{
    const json_value *v = json_get(json_root(d), k);
    return v && v->type == JSON_STRING ? v->str : NULL;
}

static double row_num(const json_doc *d, const char *k)
{
    double x = -1;
    cr_assert(json_as_num(json_get(json_root(d), k), &x), "row has no number \"%s\"", k);
    return x;
}

/* The number N in a CPU device string "CPU (avx512, N threads)", or -1. */
static int device_threads(const char *dev)
{
    const char *c = dev ? strrchr(dev, ',') : NULL;
    int n = -1;
    if (!c || sscanf(c + 1, "%d threads", &n) != 1) return -1;
    return n;
}

/* ---- bench rows ---- */

Test(bench, threads_column_is_the_count_used)
{
    make_tiny();
    long cores = vkg_default_threads();
    /* default (the physical cores), then -t 1: the row's threads is the count, never 0, and agrees with the
     * thread count the CPU backend reports in its device name */
    const char *const *runs[] = {
        ARGS("bench", "-m", "tiny", "-n", "2", "-r", "1", "--backend", "cpu", "--json"),
        ARGS("bench", "-m", "tiny", "-n", "2", "-r", "1", "--backend", "cpu", "-t", "1", "--json")};
    long want[] = {cores, 1};
    for (int i = 0; i < 2; i++) {
        proc p = run_bin(bin_path, runs[i]);
        expect_ok(&p, "bench --json");
        json_doc *rows[4];
        int n = parse_rows(p.out, rows, 4);
        cr_assert(n == 1, "run %d: %d rows:\n%s", i, n, p.out);
        cr_assert(row_num(rows[0], "threads") == want[i], "run %d: threads %g, want %ld", i,
                  row_num(rows[0], "threads"), want[i]);
        cr_assert(device_threads(row_str(rows[0], "device")) == want[i],
                  "run %d: device '%s' against threads %ld", i, row_str(rows[0], "device"), want[i]);
        json_free(rows[0]);
        proc_free(&p);
    }
    /* the markdown table: the threads cell of the row says the same */
    proc p = BENCH("-m", "tiny", "-n", "2", "-r", "1", "--backend", "cpu", "-t", "1");
    expect_ok(&p, "bench markdown");
    cr_assert(strstr(p.out, " 1 threads) | f16 | 1 | direct |"),
              "markdown row lacks threads 1 / mode direct:\n%s", p.out);
    cr_assert(!strstr(p.out, "| 0 |"), "a 0 cell in:\n%s", p.out);
    proc_free(&p);
    /* CSV: the threads field */
    p = BENCH("-m", "tiny", "-n", "2", "-r", "1", "--backend", "cpu", "-t", "1", "--csv");
    expect_ok(&p, "bench --csv");
    cr_assert(
        strstr(p.out,
               "kind,model,params,format,n_vocab,backend,device,weight_type,weights_bytes,threads,mode,"),
        "%s", p.out);
    cr_assert(strstr(p.out, "\",f16,"), "%s", p.out);
    cr_assert(strstr(p.out, ",1,direct,"), "CSV threads/mode fields wrong:\n%s", p.out);
    proc_free(&p);
}

Test(bench, cpu_rows_are_direct_vulkan_rows_replay)
{
    make_tiny();
    proc p = BENCH("-m", "tiny", "-n", "2", "-r", "1", "--backend", "cpu", "--json");
    expect_ok(&p, "bench cpu");
    json_doc *rows[4];
    cr_assert(parse_rows(p.out, rows, 4) == 1);
    cr_assert_str_eq(row_str(rows[0], "backend"), "cpu");
    cr_assert_str_eq(row_str(rows[0], "mode"), "direct", "CPU row's mode '%s'", row_str(rows[0], "mode"));
    json_free(rows[0]);
    proc_free(&p);
    /* --rerecord on the CPU: still one row, no re-record row */
    p = BENCH("-m", "tiny", "-n", "2", "-r", "1", "--backend", "cpu", "--rerecord");
    expect_ok(&p, "bench cpu --rerecord");
    cr_assert(!strstr(p.out, "replay") && !strstr(p.out, "re-record"), "CPU table mentions replay:\n%s",
              p.out);
    proc_free(&p);
    /* Vulkan (lavapipe): replay, and with --rerecord a second row re-record; the table is one
     * block, the prompt lines after it */
    p = BENCH("-m", "tiny", "-n", "2", "-r", "1", "--backend", "vulkan", "--rerecord", "--json");
    expect_ok(&p, "bench vulkan --rerecord");
    cr_assert(!strstr(p.err, "VUID") && !strstr(p.err, "alidation"), "validation messages:\n%s", p.err);
    /* Each mode at 1 and at the default tokens per submit. */
    cr_assert(parse_rows(p.out, rows, 4) == 4, "%s", p.out);
    static const char *const modes[4] = {"replay", "replay", "re-record", "re-record"};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(row_str(rows[i], "mode"), modes[i], "row %d", i);
        cr_assert_eq(row_num(rows[i], "tokens_per_submit"), i % 2 ? VKG_DEFAULT_TOKENS_PER_SUBMIT : 1,
                     "row %d", i);
        cr_assert_gt(row_num(rows[i], "gpu_us_per_token"), 0, "row %d: no device time", i);
        cr_assert_gt(row_num(rows[i], "dispatches_per_token"), 0, "row %d", i);
        cr_assert(row_num(rows[i], "submits_per_token") > 0 && row_num(rows[i], "submits_per_token") <= 1,
                  "row %d", i);
    }
    cr_assert_lt(row_num(rows[1], "submits_per_token"), row_num(rows[0], "submits_per_token"),
                 "several tokens per submit take fewer submits");
    cr_assert(row_num(rows[0], "threads") >= 1);
    for (int i = 0; i < 4; i++) json_free(rows[i]);
    proc_free(&p);
    p = BENCH("-m", "tiny", "-n", "2", "-r", "1", "--backend", "vulkan", "--rerecord");
    expect_ok(&p, "bench vulkan --rerecord markdown");
    const char *r1 = strstr(p.out, "| replay |"), *r2 = strstr(p.out, "| re-record |"),
               *pr = strstr(p.out, "prompt");
    cr_assert(r1 && r2 && pr && r1 < r2 && r2 < pr, "rows then prompt lines:\n%s", p.out);
    proc_free(&p);
}

Test(bench, synth_rows_are_named_by_size_and_type)
{
    proc p = BENCH("--synth", "tiny", "--types", "f16,f32", "-n", "2", "-r", "1", "--backend", "cpu",
                   "--json", "--ctx-sweep", "60");
    expect_ok(&p, "bench --synth");
    cr_assert(!strstr(p.out, tmp_dir) && !strstr(p.out, "vkgpt2-bench-"), "a temporary path in the rows:\n%s",
              p.out);
    cr_assert(!strstr(p.err, tmp_dir) && !strstr(p.err, "vkgpt2-bench-"), "a temporary path on stderr:\n%s",
              p.err);
    json_doc *rows[16];
    int n = parse_rows(p.out, rows, 16), decode = 0, ctx = 0;
    cr_assert(n >= 4, "%d rows:\n%s", n, p.out);
    for (int i = 0; i < n; i++) {
        const char *model = row_str(rows[i], "model"), *type = row_str(rows[i], "weight_type"),
                   *kind = row_str(rows[i], "kind");
        char want[64];
        snprintf(want, sizeof want, "synth-tiny-%s", type);
        cr_assert_str_eq(model, want, "row %d", i);
        cr_assert_str_eq(row_str(rows[i], "format"), "hf");
        cr_assert(row_num(rows[i], "params") > 1e5 && row_num(rows[i], "params") < 1e6, "tiny's params %g",
                  row_num(rows[i], "params"));
        cr_assert(row_num(rows[i], "n_vocab") > 256);
        cr_assert(row_num(rows[i], "threads") >= 1);
        decode += !strcmp(kind, "decode");
        ctx += !strcmp(kind, "ctx");
        json_free(rows[i]);
    }
    cr_assert(decode == 2 && ctx >= 2, "%d decode, %d ctx rows", decode, ctx);
    proc_free(&p);
    /* the markdown table too, and the temporary models are gone afterwards */
    p = BENCH("--synth", "tiny", "-n", "2", "-r", "1", "--backend", "cpu");
    expect_ok(&p, "bench --synth markdown");
    cr_assert(strstr(p.out, "| synth-tiny-f16 | cpu |"), "%s", p.out);
    cr_assert(!strstr(p.out, tmp_dir), "%s", p.out);
    proc_free(&p);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -d '%s'/vkgpt2-bench-* 2>/dev/null", tmp_dir);
    FILE *ls = popen(cmd, "r");
    cr_assert(ls);
    char line[512];
    cr_assert(!fgets(line, sizeof line, ls), "left behind: %s", line);
    pclose(ls);
}

Test(bench, without_model_mentions_synth)
{
    proc p = BENCH("-n", "2");
    cr_assert(!p.timed_out && !p.signaled);
    cr_assert(p.code == 2, "exit %d", p.code);
    cr_assert_str_eq(p.out, "");
    cr_assert(strstr(p.err, "-m MODEL") && strstr(p.err, "--synth"), "stderr: %s", p.err);
    cr_assert(strchr(p.err, '\n') == p.err + strlen(p.err) - 1, "more than one line: %s", p.err);
    proc_free(&p);
    /* --vocab / --types without --synth: refused, one line naming the flag */
    p = BENCH("-m", "x", "--vocab", "data/gpt2-vocab");
    cr_assert(p.code == 2 && strstr(p.err, "--vocab") && strstr(p.err, "--synth"), "exit %d, stderr: %s",
              p.code, p.err);
    proc_free(&p);
    /* help mentions --synth, --vocab and --label, and makes no model */
    p = BENCH("--synth", "tiny", "--help");
    expect_ok(&p, "bench --help");
    cr_assert(strstr(p.out, "--synth SIZES") && strstr(p.out, "--vocab DIR") && strstr(p.out, "--label NAME"),
              "%s", p.out);
    cr_assert_str_eq(p.err, "");
    proc_free(&p);
}

Test(bench, label_names_the_rows)
{
    make_tiny();
    proc p = BENCH("-m", "tiny", "--label", "my model", "-n", "2", "-r", "1", "--backend", "cpu", "--json");
    expect_ok(&p, "bench --label");
    json_doc *rows[2];
    cr_assert(parse_rows(p.out, rows, 2) == 1);
    cr_assert_str_eq(row_str(rows[0], "model"), "my model");
    json_free(rows[0]);
    proc_free(&p);
    p = BENCH("-m", "tiny", "--label", "a,b", "-n", "2", "-r", "1", "--backend", "cpu", "--csv");
    expect_ok(&p, "bench --label --csv");
    cr_assert(strstr(p.out, "\ndecode,\"a,b\","), "CSV quotes a name with a comma:\n%s", p.out);
    proc_free(&p);
}

/* ---- perfdoc: axes ---- */

Test(perfdoc, axis_log_only_beyond_a_decade)
{
    double sizes[] = {0.3, 166.2, 582.2}; /* tiny, 124M, 355M MiB */
    pd_axis a = pd_axis_pick(sizes, 3);
    cr_assert(a.log, "0.3..582 spans three decades");
    cr_assert(a.lo == 0.1 && fabs(a.hi - 1000) < 1e-9, "range %g..%g", a.lo, a.hi);
    double real[] = {166.2, 332.4, 582.2, 1187.0};
    a = pd_axis_pick(real, 4);
    cr_assert(!a.log, "166..1187 is under a decade and a bit: %g", 1187.0 / 166.2);
    cr_assert(a.lo == 0 && a.hi >= 1187.0 && a.step > 0);
    double ten[] = {10, 100}; /* exactly a decade: linear */
    cr_assert(!pd_axis_pick(ten, 2).log);
    double just[] = {10, 100.5};
    cr_assert(pd_axis_pick(just, 2).log);
    double zero[] = {0, 256, 512, 768}; /* n_past from 0: no log */
    cr_assert(!pd_axis_pick(zero, 4).log);
    double neg[] = {-5, 1000};
    pd_axis an = pd_axis_pick(neg, 2);
    cr_assert(!an.log && an.lo <= -5 && an.hi >= 1000);
    cr_assert(!pd_axis_pick(NULL, 0).log);
    double toks[] = {71428.6, 47.1, 14.1, 5.1};
    a = pd_axis_pick(toks, 4);
    cr_assert(a.log && a.lo == 1 && fabs(a.hi - 1e5) < 1e-6, "%g..%g", a.lo, a.hi);
    /* positions: ends at 0 and 1, a decade in the middle of two */
    double two[] = {1, 100};
    pd_axis b = pd_axis_pick(two, 2);
    cr_assert(b.log && fabs(pd_axis_pos(&b, 10) - 0.5) < 1e-9 && fabs(pd_axis_pos(&b, 1)) < 1e-9 &&
              fabs(pd_axis_pos(&b, 100) - 1) < 1e-9);
}

Test(perfdoc, axis_ticks_and_labels)
{
    double v[] = {0.3, 582.2};
    pd_axis a = pd_axis_pick(v, 2);
    double t[64];
    int n = pd_axis_ticks(&a, t, 64);
    cr_assert(n == 5, "decades 0.1..1000: %d ticks", n);
    for (int i = 0; i < n; i++) cr_assert(fabs(t[i] - pow(10, i - 1)) < 1e-9 * t[i], "tick %d = %g", i, t[i]);
    double w[] = {3, 90}; /* 1..100, two decades: 2 and 5 between */
    a = pd_axis_pick(w, 2);
    n = pd_axis_ticks(&a, t, 64);
    cr_assert(n == 7 && t[1] == 2 && t[2] == 5 && t[3] == 10 && t[6] == 100, "%d ticks", n);
    double l[] = {19.7, 57.8};
    a = pd_axis_pick(l, 2);
    n = pd_axis_ticks(&a, t, 64);
    cr_assert(!a.log && t[0] == 0 && t[n - 1] >= 57.8 && n >= 4 && n <= 11, "%d ticks up to %g", n, t[n - 1]);
    for (int i = 1; i < n; i++) cr_assert(fabs(t[i] - t[i - 1] - a.step) < 1e-9);
    char b[32];
    pd_tick_label(0, b, sizeof b);
    cr_assert_str_eq(b, "0");
    pd_tick_label(0.1, b, sizeof b);
    cr_assert_str_eq(b, "0.1");
    pd_tick_label(20, b, sizeof b);
    cr_assert_str_eq(b, "20");
    pd_tick_label(1000, b, sizeof b);
    cr_assert_str_eq(b, "1k");
    pd_tick_label(71428.6, b, sizeof b);
    cr_assert_str_eq(b, "71.4k");
    pd_tick_label(2e6, b, sizeof b);
    cr_assert_str_eq(b, "2M");
    /* stride: on a narrow axis labels thin out until neighbours keep apart; a log axis with 2 and
     * 5 between decades keeps the decades */
    double lin[] = {0, 1000000};
    a = pd_axis_pick(lin, 2);
    n = pd_axis_ticks(&a, t, 64);
    cr_assert(pd_tick_stride(&a, t, n, 600, 12) == 1);
    int st = pd_tick_stride(&a, t, n, 40, 12);
    cr_assert(st > 1);
    for (int i = 0; i + st < n; i += st) {
        char l0[32], l1[32];
        pd_tick_label(t[i], l0, sizeof l0);
        pd_tick_label(t[i + st], l1, sizeof l1);
        double gap = (pd_axis_pos(&a, t[i + st]) - pd_axis_pos(&a, t[i])) * 40;
        cr_assert(gap >= (pd_text_width(l0, 12) + pd_text_width(l1, 12)) / 2.0, "labels %s and %s overlap",
                  l0, l1);
    }
    a = pd_axis_pick(w, 2);
    n = pd_axis_ticks(&a, t, 64);
    st = pd_tick_stride(&a, t, n, 120, 12);
    cr_assert(st == 1 || st % 3 == 0, "stride %d", st);
}

/* ---- perfdoc: the binary ---- */

/* The attributes of the <text> element at p (up to its '>'): x, y, whether centred and rotated,
 * and its text; false if p does not start a well-formed one. */
static bool text_elem(const char *p, double *x, double *y, bool *centred, bool *rotated, char *txt, size_t n)
{
    const char *gt = strchr(p, '>'), *e = gt ? strstr(gt, "</text>") : NULL;
    const char *xa = strstr(p, " x=\""), *ya = strstr(p, " y=\""), *mid = strstr(p, "text-anchor=\"middle\""),
               *rot = strstr(p, "rotate(");
    if (!gt || !e || !xa || !ya || xa > gt || ya > gt) return false;
    *x = atof(xa + 4);
    *y = atof(ya + 4);
    *centred = mid && mid < gt;
    *rotated = rot && rot < gt;
    size_t len = (size_t)(e - gt - 1);
    if (len >= n) len = n - 1;
    memcpy(txt, gt + 1, len);
    txt[len] = 0;
    return true;
}

/* The x tick labels of a chart: the centred, unrotated <text> elements on the most common y
 * (titles and the axis title each have a y of their own). Returns how many, in document order. */
static int x_tick_labels(const char *svg, double *xs, char (*txt)[64], int max)
{
    double ys[512], xv[512];
    char tv[512][64];
    int n = 0;
    for (const char *p = svg; (p = strstr(p, "<text ")) && n < 512; p++) {
        bool c, r;
        if (text_elem(p, &xv[n], &ys[n], &c, &r, tv[n], sizeof tv[n]) && c && !r) n++;
    }
    double best = -1;
    int best_n = 0, m = 0;
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = 0; j < n; j++) c += ys[j] == ys[i];
        if (c > best_n) best_n = c, best = ys[i];
    }
    for (int i = 0; i < n && m < max; i++)
        if (ys[i] == best) {
            xs[m] = xv[i];
            memcpy(txt[m++], tv[i], sizeof tv[i]);
        }
    return m;
}

Test(perfdoc, size_chart_log_axes_legends_and_tables)
{
    /* decode rows as `vkgpt2 bench --synth tiny,124M,355M --vocab ... --json` writes them, tok/s
     * from 71k down to 5 (the case of a tiny model beside real sizes), and a Vulkan row */
    static const char rows[] =
        "{\"kind\": \"decode\", \"model\": \"synth-tiny-f16\", \"params\": 141120, \"format\": \"hf\", "
        "\"n_vocab\": 513, \"weight_type\": \"f16\", \"weights_bytes\": 302208, \"backend\": \"cpu\", "
        "\"device\": \"CPU (avx512, 2 threads)\", \"threads\": 2, \"mode\": \"direct\", \"prompt_tok_s\": "
        "139215.2, \"decode_ms_per_token\": {\"median\": 0.014, \"min\": 0.013, \"max\": 0.015}, "
        "\"weights_gbs\": 21.6}\n"
        "{\"kind\": \"decode\", \"model\": \"synth-124M-f16\", \"params\": 124439808, \"format\": \"hf\", "
        "\"n_vocab\": 50257, \"weight_type\": \"f16\", \"weights_bytes\": 174272256, \"backend\": \"cpu\", "
        "\"device\": \"CPU (avx512, 2 threads)\", \"threads\": 2, \"mode\": \"direct\", \"prompt_tok_s\": "
        "166.5, \"decode_ms_per_token\": {\"median\": 21.24, \"min\": 18.74, \"max\": 21.24}, "
        "\"weights_gbs\": 8.2}\n"
        "{\"kind\": \"decode\", \"model\": \"synth-355M-f16\", \"params\": 354823168, \"format\": \"hf\", "
        "\"n_vocab\": 50257, \"weight_type\": \"f16\", \"weights_bytes\": 610467840, \"backend\": \"cpu\", "
        "\"device\": \"CPU (avx512, 2 threads)\", \"threads\": 2, \"mode\": \"direct\", \"prompt_tok_s\": "
        "50.1, \"decode_ms_per_token\": {\"median\": 70.89, \"min\": 63.38, \"max\": 70.89}, "
        "\"weights_gbs\": 8.6}\n"
        "{\"kind\": \"decode\", \"model\": \"synth-124M-f16\", \"params\": 124439808, \"format\": \"hf\", "
        "\"n_vocab\": 50257, \"weight_type\": \"f16\", \"weights_bytes\": 174272256, \"backend\": "
        "\"vulkan\", \"device\": \"llvmpipe (LLVM 15.0.6, 256 bits)\", \"threads\": 2, \"mode\": \"replay\", "
        "\"prompt_tok_s\": 6.2, \"decode_ms_per_token\": {\"median\": 194.64, \"min\": 194.64, \"max\": "
        "194.64}, \"weights_gbs\": 0.9}\n"
        "{\"kind\": \"decode\", \"model\": \"synth-124M-f16\", \"params\": 124439808, \"format\": \"hf\", "
        "\"n_vocab\": 50257, \"weight_type\": \"f16\", \"weights_bytes\": 174272256, \"backend\": "
        "\"vulkan\", \"device\": \"llvmpipe (LLVM 15.0.6, 256 bits)\", \"threads\": 2, \"mode\": "
        "\"re-record\", \"prompt_tok_s\": 6.2, \"decode_ms_per_token\": {\"median\": 200.0, \"min\": 200.0, "
        "\"max\": 200.0}, \"weights_gbs\": 0.9}\n"
        "{\"kind\": \"ctx\", \"model\": \"synth-124M-f16\", \"params\": 124439808, \"format\": \"hf\", "
        "\"n_vocab\": 50257, \"weight_type\": \"f16\", \"weights_bytes\": 174272256, \"backend\": \"cpu\", "
        "\"device\": \"CPU (avx512, 2 threads)\", \"threads\": 2, \"n_past\": 0, \"decode_ms_per_token\": "
        "19.7}\n"
        "{\"kind\": \"ctx\", \"model\": \"synth-124M-f16\", \"params\": 124439808, \"format\": \"hf\", "
        "\"n_vocab\": 50257, \"weight_type\": \"f16\", \"weights_bytes\": 174272256, \"backend\": \"cpu\", "
        "\"device\": \"CPU (avx512, 2 threads)\", \"threads\": 2, \"n_past\": 512, \"decode_ms_per_token\": "
        "39.2}\n"
        "{\"kind\": \"ctx\", \"model\": \"synth-124M-f16\", \"params\": 124439808, \"format\": \"hf\", "
        "\"n_vocab\": 50257, \"weight_type\": \"f16\", \"weights_bytes\": 174272256, \"backend\": \"cpu\", "
        "\"device\": \"CPU (avx512, 2 threads)\", \"threads\": 2, \"n_past\": 1000, \"decode_ms_per_token\": "
        "57.8}\n";
    write_text("rows.json", rows);
    write_text("P.md",
               "# Performance\n\nhand-written text\n\n<!-- perfdoc:begin -->\nold\n<!-- perfdoc:end "
               "-->\n\ntail text\n");
    cr_assert(mkdir("img", 0755) == 0);
    proc p = PERFDOC("--doc", "P.md", "--img", "img", "rows.json");
    expect_ok(&p, "perfdoc");
    proc_free(&p);
    char *svg = read_file("img/toks_vs_size.svg", NULL), *md = read_file("P.md", NULL),
         *ctx = read_file("img/ctx_sweep.svg", NULL);
    cr_assert(svg && md && ctx);
    /* both axes span decades: log, and the titles say so */
    cr_assert(strstr(svg, "weights, MiB (log scale)"), "x axis not log:\n%s", svg);
    cr_assert(strstr(svg, "tokens/s (log scale)"), "y axis not log");
    cr_assert(strstr(svg, ">100k<") && strstr(svg, ">1k<"), "decade tick labels on the y axis");
    /* legends name backend, threads, type, format, vocabulary; points their size; the re-record
     * row repeats its replay row and is not a series */
    cr_assert(strstr(svg, ">cpu, 2 threads: f16 hf models, vocab 50257<"), "legend:\n%s", svg);
    cr_assert(strstr(svg, ">cpu, 2 threads: f16 hf models, vocab 513<"));
    cr_assert(strstr(svg, ">vulkan on llvmpipe (LLVM 15.0.6, 256 bits): f16 hf models, vocab 50257<"));
    cr_assert(strstr(svg, ">124M<") && strstr(svg, ">355M<") && strstr(svg, ">0.14M<"), "point labels");
    cr_assert(!strstr(svg, "re-record"));
    /* x tick labels: none overlaps its neighbour */
    double xs[64];
    char txt[64][64];
    int n = x_tick_labels(svg, xs, txt, 64);
    cr_assert(n >= 3, "%d x tick labels", n);
    for (int i = 0; i + 1 < n; i++)
        cr_assert(xs[i + 1] - xs[i] >= (pd_text_width(txt[i], 12) + pd_text_width(txt[i + 1], 12)) / 2.0,
                  "x labels '%s' and '%s' overlap", txt[i], txt[i + 1]);
    /* the rotated y title (x 4..20) is clear of every y tick label (right-aligned at x) */
    int ny = 0;
    for (const char *q = svg; (q = strstr(q, "<text ")); q++) {
        double x, ty;
        bool c, r;
        char lab[64];
        const char *gt = strchr(q, '>'), *end = strstr(q, "text-anchor=\"end\"");
        if (!end || end > gt || !text_elem(q, &x, &ty, &c, &r, lab, sizeof lab)) continue;
        cr_assert(x - pd_text_width(lab, 12) >= 22, "y label '%s' reaches the y title", lab);
        ny++;
    }
    cr_assert(ny >= 3, "%d y tick labels", ny);
    /* ctx chart: n_past from 0 is linear; the legend names the model */
    cr_assert(strstr(ctx, ">n_past (tokens in the KV cache)<"), "n_past axis must be linear");
    cr_assert(strstr(ctx, ">cpu, 2 threads: 124M f16 hf, vocab 50257 (synth-124M-f16)<"), "ctx legend:\n%s",
              ctx);
    /* tables: size, format and mode columns; the text around the markers kept */
    cr_assert(
        strstr(md,
               "| synth-124M-f16 | 124M | f16 | hf | 50257 | cpu | CPU (avx512, 2 threads) | 2 | direct |"),
        "%s", md);
    cr_assert(strstr(md,
                     "| synth-124M-f16 | 124M | f16 | hf | 50257 | vulkan | llvmpipe (LLVM 15.0.6, 256 bits) "
                     "| 2 | replay |"));
    cr_assert(strstr(md, "hand-written text") && strstr(md, "tail text") && !strstr(md, "\nold\n"));
    free(svg);
    free(md);
    free(ctx);
}

Test(perfdoc, bad_input_is_one_line)
{
    write_text("bad.json", "{\"kind\": \"decode\",\n");
    cr_assert(mkdir("img", 0755) == 0);
    proc p = PERFDOC("--doc", "P.md", "--img", "img", "bad.json");
    cr_assert(p.code == 1 && strstr(p.err, "bad.json") && strchr(p.err, '\n') == p.err + strlen(p.err) - 1,
              "exit %d, stderr: %s", p.code, p.err);
    proc_free(&p);
    p = PERFDOC("--doc", "P.md", "--img", "img", "--bogus", "bad.json");
    cr_assert(p.code == 2 && strstr(p.err, "--bogus"), "exit %d, stderr: %s", p.code, p.err);
    proc_free(&p);
    cr_assert(access("P.md", F_OK) != 0, "no document written on bad input");
}
