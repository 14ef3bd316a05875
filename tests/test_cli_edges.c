/* test_cli_edges.c - what a first user of the vkgpt2 command runs into, through the real binary:
 * the default model, device indexes, --profile with batches, seeds, --version and per-command
 * help, the KV type of --backend auto, notices (the library prints nothing itself), argument
 * parsing details, closed pipes, full disks, and the header's worked example compiled as written.
 */
#include "cli_harness.h"

#include "vkgpt2.h"

TestSuite(edges, .init = setup, .fini = teardown);

/* Environment without any Vulkan driver (validation off: the loader would complain as well). */
#define NO_VULKAN                                                                                            \
    ENV("VK_ICD_FILENAMES=/nonexistent.json", "VK_DRIVER_FILES=/nonexistent.json", "VKGPT2_VALIDATION=0")

static bool has_line_starting(const char *s, const char *prefix)
{
    for (const char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, prefix, strlen(prefix))) return true;
    return false;
}

/* ---- (a) the default model ---- */

Test(edges, default_model_is_demo_model_else_first_under_models)
{
    /* Nothing: an error with the hint, for generate, eval, tokenize and detokenize alike. */
    proc a = RUN("-p", "hi");
    expect_error(&a, "no model at all", "tools/demo.sh");
    cr_assert(strstr(a.err, "-m"), "%s", a.err);
    proc t = RUN_IN("hi", "tokenize");
    expect_error(&t, "tokenize without a model", "tools/demo.sh");
    proc d = RUN_IN("1 2", "detokenize");
    expect_error(&d, "detokenize without a model", "models/synth-124M-f16");
    proc e = RUN("eval", "--ids", "1", "--logits", "x.f32");
    expect_error(&e, "eval without a model", "models/synth-124M-f16");
    proc_free(&a);
    proc_free(&t);
    proc_free(&d);
    proc_free(&e);

    /* Some model under models/ (after files that are none): used, and said so. */
    cr_assert(mkdir("models", 0755) == 0);
    write_file("models/aaa-notes.txt", "not a model", 11);
    synth("models/bbb", "tiny", "hf", "f32", "1");
    synth("models/ccc.bin", "tiny", "ggml", "f32", "2");
    proc b = RUN("-p", "Hello", "-n", "3", "--temp", "0", "--backend", "cpu");
    expect_ok(&b, "first model under models/");
    cr_assert(strstr(b.err, "using models/bbb"), "%s", b.err);
    proc bt = RUN_IN("Hello", "tokenize");
    expect_ok(&bt, "tokenize with the first model");
    cr_assert(bt.out_len > 1, "%s", bt.out);

    /* The demo's model, once there, comes first (and needs no notice). */
    synth("models/synth-124M-f16", "tiny", "hf", "f16", "3");
    proc c = RUN("-p", "Hello", "-n", "3", "--temp", "0", "--backend", "cpu", "-v");
    expect_ok(&c, "the demo's model");
    cr_assert(!strstr(c.err, "using models/"), "%s", c.err);
    cr_assert(strstr(c.err, "models/synth-124M-f16"), "-v does not name the model:\n%s", c.err);
    proc h = RUN("--help");
    expect_ok(&h, "--help");
    cr_assert(strstr(h.out, "models/synth-124M-f16") && strstr(h.out, "first model under models/"), "%s",
              h.out);
    proc_free(&b);
    proc_free(&bt);
    proc_free(&c);
    proc_free(&h);
}

/* ---- (b) device indexes ---- */

Test(edges, device_that_does_not_exist_is_an_error_under_every_backend)
{
    synth_tiny();
    const char *backends[] = {"auto", "vulkan"};
    for (int i = 0; i < 2; i++) {
        proc p = RUN("-m", "tiny", "-p", "hi", "-n", "2", "--device", "99", "--backend", backends[i]);
        expect_error(&p, backends[i], "99");
        cr_assert(strstr(p.err, "does not exist"), "%s", p.err);
        proc_free(&p);
    }
    proc dflt = RUN("-m", "tiny", "-p", "hi", "-n", "2", "--device", "99");
    expect_error(&dflt, "default backend, --device 99", "99");
    proc ev = RUN("eval", "-m", "tiny", "--ids", "1 2", "--logits", "x.f32", "--device", "99");
    expect_error(&ev, "eval --device 99", "99");
    cr_assert(file_size("x.f32") < 0);
    /* No Vulkan at all: device 0 does not exist either. */
    proc nv = RUN_ENV(NO_VULKAN, "-m", "tiny", "-p", "hi", "-n", "2", "--device", "0");
    expect_error(&nv, "--device 0 without Vulkan", "device 0");
    /* The device that exists still works under auto (lavapipe, named). */
    proc ok = RUN("-m", "tiny", "-p", "hi", "-n", "2", "--device", "0");
    expect_ok(&ok, "--device 0");
    cr_assert(strstr(ok.err, "backend vulkan"), "%s", ok.err);
    /* The CPU backend ignores --device, and says so. */
    proc c = RUN("-m", "tiny", "-p", "hi", "-n", "2", "--backend", "cpu", "--device", "0");
    expect_ok(&c, "--backend cpu --device 0");
    cr_assert(has_line_starting(c.err, "vkgpt2: --device 0 is ignored"), "no warning:\n%s", c.err);
    cr_assert(strstr(c.err, "backend cpu"), "%s", c.err);
    proc_free(&dflt);
    proc_free(&ev);
    proc_free(&nv);
    proc_free(&ok);
    proc_free(&c);
}

/* Every command reads --device alike: an index or a name (lavapipe's "llvmpipe" here), and a
 * value that is none is the same one line naming the flag, before anything runs. */
Test(edges, device_by_name_and_bad_device_alike_in_every_command)
{
    synth_tiny();
    const char *shader = "#version 450\nlayout(local_size_x = 1) in;\nvoid main() {}\n";
    write_file("k.comp", shader, strlen(shader));
    static const char *const bad[] = {"-1", ""};
    for (int b = 0; b < 2; b++) {
        char want[96];
        snprintf(want, sizeof want, "vkgpt2: --device: '%s' is not a device index, UUID prefix or name",
                 bad[b]);
        proc runs[] = {
            RUN("-m", "tiny", "-p", "hi", "-n", "1", "--device", bad[b]),
            RUN("bench", "-m", "tiny", "-n", "1", "-r", "1", "--device", bad[b]),
            RUN("bench", "kernels", "--backend", "vulkan", "--device", bad[b]),
            RUN("kbench", "k.comp", "--grid", "1", "--device", bad[b]),
            RUN("selftest", "--quick", "--device", bad[b]),
        };
        for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
            expect_error(&runs[i], want, want);
            cr_assert(runs[i].code == 2, "%s: exit %d", want, runs[i].code);
            proc_free(&runs[i]);
        }
    }
    /* bench and kbench by name: the named device runs them. */
    proc bn = RUN("bench", "-m", "tiny", "-n", "1", "-r", "1", "--backend", "vulkan", "--device", "llvmpipe",
                  "--json");
    expect_ok(&bn, "bench --device llvmpipe");
    cr_assert(strstr(bn.out, "\"device\": \"llvmpipe"), "%s", bn.out);
    proc kn = RUN("kbench", "k.comp", "--grid", "1", "--repeat", "1", "--device", "llvmpipe", "--json");
    expect_ok(&kn, "kbench --device llvmpipe");
    cr_assert(strstr(kn.out, "\"device\": \"llvmpipe"), "%s", kn.out);
    /* A name that matches nothing is an error naming it, in bench as in generate. */
    proc bx = RUN("bench", "-m", "tiny", "-n", "1", "-r", "1", "--device", "no-such-gpu");
    no_crash(&bx, "bench --device no-such-gpu");
    cr_assert(bx.code != 0 && strstr(bx.err, "no-such-gpu"), "exit %d: %s", bx.code, bx.err);
    proc kx = RUN("kbench", "k.comp", "--grid", "1", "--device", "no-such-gpu");
    expect_error(&kx, "kbench --device no-such-gpu", "no-such-gpu");
    proc_free(&bn);
    proc_free(&kn);
    proc_free(&bx);
    proc_free(&kx);
}

/* ---- (c) --profile / --trace with batches ---- */

Test(edges, profile_and_trace_refused_with_batches)
{
    synth_tiny();
    write_file("p.txt", "one\ntwo\n", 8);
    proc a = RUN("-m", "tiny", "-p", "hi", "-np", "2", "--profile");
    expect_error(&a, "-np --profile", "--profile");
    proc b = RUN("-m", "tiny", "--prompts", "p.txt", "--trace", "t.json");
    expect_error(&b, "--prompts --trace", "--trace");
    cr_assert(strstr(b.err, "--prompts"), "%s", b.err);
    cr_assert(file_size("t.json") < 0, "a trace was written");
    proc_free(&a);
    proc_free(&b);
}

/* ---- (d) seeds ---- */

static uint64_t json_seed(const proc *p, char **text)
{
    json_doc *d = parse_json(p);
    const json_value *r = json_root(d);
    double v = jnum(r, "seed");
    cr_assert(v >= 0);
    /* The exact value, not the double: read the digits. */
    const char *k = strstr(p->out, "\"seed\": ");
    cr_assert(k);
    uint64_t s = strtoull(k + 8, NULL, 10);
    if (text) *text = strdup(jfield(r, "text", JSON_STRING)->str);
    json_free(d);
    return s;
}

Test(edges, random_seed_by_default_printed_and_reproducible)
{
    synth("m", "2x64x4", "hf", "f32", "3");
    const char *base[] = {"-m", "m", "-p", "Once", "-n", "24", "--ignore-eos", "--backend", "cpu", "--json"};
    proc r1 = run_full(
        NULL, 0, NULL,
        ARGS(base[0], base[1], base[2], base[3], base[4], base[5], base[6], base[7], base[8], base[9]));
    proc r2 = run_full(
        NULL, 0, NULL,
        ARGS(base[0], base[1], base[2], base[3], base[4], base[5], base[6], base[7], base[8], base[9]));
    proc r3 = run_full(NULL, 0, NULL,
                       ARGS(base[0], base[1], base[2], base[3], base[4], base[5], base[6], base[7], base[8],
                            base[9], "-s", "-1"));
    expect_ok(&r1, "run 1");
    expect_ok(&r2, "run 2");
    expect_ok(&r3, "run -s -1");
    char *t1;
    uint64_t s1 = json_seed(&r1, &t1), s2 = json_seed(&r2, NULL), s3 = json_seed(&r3, NULL);
    /* Two runs in the same second draw different seeds (64 random bits: equal by chance 2^-64). */
    cr_assert(s1 != s2 && s1 != s3 && s2 != s3, "seeds %llu %llu %llu", (unsigned long long)s1,
              (unsigned long long)s2, (unsigned long long)s3);
    /* The printed seed repeats the run. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s1);
    proc again = run_full(NULL, 0, NULL,
                          ARGS(base[0], base[1], base[2], base[3], base[4], base[5], base[6], base[7],
                               base[8], base[9], "-s", seed));
    expect_ok(&again, "-s SEED");
    char *ta;
    cr_assert(json_seed(&again, &ta) == s1);
    cr_assert(!strcmp(t1, ta), "seed %s: '%s' then '%s'", seed, t1, ta);
    free(t1);
    free(ta);
    /* Text mode: the seed is in the timings. */
    proc txt = RUN("-m", "m", "-p", "Once", "-n", "4", "--backend", "cpu", "-s", "77");
    expect_ok(&txt, "text mode");
    cr_assert(strstr(txt.err, "seed = 77"), "%s", txt.err);
    /* Batched: the base seed in the timings, seed + i per sequence in the JSON lines. */
    proc bt = RUN("-m", "m", "-p", "Once", "-n", "4", "--backend", "cpu", "-np", "2");
    expect_ok(&bt, "batched text");
    cr_assert(strstr(bt.err, "seed = "), "%s", bt.err);
    proc bj = RUN("-m", "m", "-p", "Once", "-n", "4", "--backend", "cpu", "-np", "2", "-s", "500", "--json");
    expect_ok(&bj, "batched json");
    cr_assert(strstr(bj.out, "\"seed\": 500,") && strstr(bj.out, "\"seed\": 501,"), "%s", bj.out);
    /* Documented. */
    proc h = RUN("generate", "--help");
    expect_ok(&h, "generate --help");
    cr_assert(strstr(h.out, "entropy") && strstr(h.out, "-s, --seed"), "%s", h.out);
    proc_free(&r1);
    proc_free(&r2);
    proc_free(&r3);
    proc_free(&again);
    proc_free(&txt);
    proc_free(&bt);
    proc_free(&bj);
    proc_free(&h);
}

/* ---- (e) version, (f) per-command help ---- */

Test(edges, version)
{
    proc p = RUN("--version");
    expect_ok(&p, "--version");
    char want[64];
    snprintf(want, sizeof want, "vkgpt2 %s (libvkgpt2 %s)\n", VKG_VERSION, vkg_version());
    cr_assert(!strcmp(p.out, want), "'%s' vs '%s'", p.out, want);
    cr_assert(!strcmp(VKG_VERSION, vkg_version()));
    char num[32];
    snprintf(num, sizeof num, "%d.%d.%d", VKG_VERSION_MAJOR, VKG_VERSION_MINOR, VKG_VERSION_PATCH);
    cr_assert(!strcmp(num, VKG_VERSION), "%s vs %s", num, VKG_VERSION);
    /* meson.build's project version is the one in the header. */
    const char *src = getenv("VKGPT2_SOURCE_ROOT");
    cr_assert(src);
    char path[4096], pat[64];
    snprintf(path, sizeof path, "%s/meson.build", src);
    char *mb = read_file(path, NULL);
    cr_assert(mb);
    snprintf(pat, sizeof pat, "version : '%s'", VKG_VERSION);
    cr_assert(strstr(mb, pat), "meson.build has no %s", pat);
    free(mb);
    proc_free(&p);
}

Test(edges, every_command_has_its_own_help)
{
    static const struct {
        const char *cmd;
        const char *flags[16];
    } pages[] = {
        {"generate",
         {"-m, --model", "-p, --prompt", "-n, --n_predict", "-s, --seed", "--temp", "--backend", "--device",
          "--kv", "--json", "--profile", "--trace", "-np, --parallel", "--prompts", "default"}},
        {"eval",
         {"-m, --model", "--ids", "--logits", "--json", "--backend", "--device", "--kv", "--profile",
          "--trace", "-t, --threads", "default"}},
        {"tokenize", {"-m, --model", "default", "stdin"}},
        {"detokenize", {"-m, --model", "default", "stdin"}},
        {"synth",
         {"-o, --output", "--size", "--format", "--type", "--seed", "--vocab", "default 1", "(default)"}},
        {"devices", {"--device N", "-h, --help"}},
    };
    proc main_page = RUN("--help");
    expect_ok(&main_page, "--help");
    cr_assert(strstr(main_page.out, "eval") && strstr(main_page.out, "--json"));
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        proc p = RUN(pages[i].cmd, "--help");
        expect_ok(&p, pages[i].cmd);
        char usage[64];
        snprintf(usage, sizeof usage, "usage: vkgpt2 %s", pages[i].cmd);
        cr_assert(!strncmp(p.out, usage, strlen(usage)), "%s --help starts with: %.80s", pages[i].cmd, p.out);
        cr_assert(strcmp(p.out, main_page.out), "%s --help is the general page", pages[i].cmd);
        for (int f = 0; f < 16 && pages[i].flags[f]; f++)
            cr_assert(strstr(p.out, pages[i].flags[f]), "%s --help lacks '%s':\n%s", pages[i].cmd,
                      pages[i].flags[f], p.out);
        cr_assert(p.err_len == 0, "%s", p.err);
        proc_free(&p);
    }
    proc_free(&main_page);
}

/* ---- (g) --backend auto without a GPU computes what --backend cpu computes ---- */

Test(edges, auto_without_gpu_gives_the_cpu_logits)
{
    synth("m", "2x64x4", "hf", "f32", "5");
    const char *ids = "1 2 3 4 5 6 7 8 9 10 11 12";
    proc c = RUN("eval", "-m", "m", "--ids", ids, "--logits", "cpu.f32", "--backend", "cpu");
    expect_ok(&c, "cpu");
    /* No driver at all, and only lavapipe (which auto passes over for the CPU backend). */
    proc a = RUN_ENV(NO_VULKAN, "eval", "-m", "m", "--ids", ids, "--logits", "auto.f32", "--backend", "auto");
    expect_ok(&a, "auto without Vulkan");
    proc l = RUN("eval", "-m", "m", "--ids", ids, "--logits", "auto2.f32");
    expect_ok(&l, "auto with lavapipe only");
    cr_assert(strstr(l.err, "backend cpu"), "%s", l.err);
    size_t n1, n2, n3;
    char *x = read_file("cpu.f32", &n1), *y = read_file("auto.f32", &n2), *z = read_file("auto2.f32", &n3);
    cr_assert(x && y && z && n1 > 0 && n1 == n2 && n1 == n3);
    cr_assert(!memcmp(x, y, n1), "auto (no Vulkan) and cpu logits differ");
    cr_assert(!memcmp(x, z, n1), "auto (lavapipe) and cpu logits differ");
    /* An f16 KV cache asked for by name is still f16 (and so differs). */
    proc h = RUN("eval", "-m", "m", "--ids", ids, "--logits", "f16.f32", "--backend", "cpu", "--kv", "f16");
    expect_ok(&h, "cpu --kv f16");
    char *w = read_file("f16.f32", NULL);
    cr_assert(w && memcmp(x, w, n1), "--kv f16 gave the f32 logits");
    free(x);
    free(y);
    free(z);
    free(w);
    proc_free(&c);
    proc_free(&a);
    proc_free(&l);
    proc_free(&h);
}

/* ---- (h) notices: the library is silent, the command speaks ---- */

typedef struct seen {
    int n, warnings;
    char text[4096];
} seen;

static void collect(void *user, vkg_notice_kind kind, const char *msg)
{
    seen *s = user;
    s->n++;
    s->warnings += kind == VKG_NOTICE_WARNING;
    cr_assert(!strchr(msg, '\n'), "a notice with a newline: '%s'", msg);
    cr_assert(strncmp(msg, "vkgpt2", 6), "a notice with the command's prefix: '%s'", msg);
    strncat(s->text, msg, sizeof s->text - strlen(s->text) - 2);
    strcat(s->text, "|");
}

/* Generates past the context (a clamp and the end of the context) on the CPU; returns 0. */
static int long_generation(void)
{
    char err[512];
    vkg_model *m = vkg_model_load("tiny", err, sizeof err);
    cr_assert(m, "%s", err);
    vkg_session_params sp = vkg_session_defaults();
    sp.backend = VKG_BACKEND_CPU;
    vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
    cr_assert(s, "%s", err);
    int32_t ids[2] = {72, 105};
    vkg_sample_params gp = vkg_sample_defaults();
    gp.n_predict = 5000;
    gp.ignore_eos = true;
    vkg_stats st;
    int rc = vkg_generate(s, ids, 2, &gp, NULL, NULL, NULL, NULL, &st, err, sizeof err);
    cr_assert(rc == 0, "%s", err);
    cr_assert(st.hit_context_end);
    vkg_session_free(s);
    vkg_model_free(m);
    return rc;
}

Test(edges, library_prints_nothing_notices_go_to_the_handler)
{
    synth_tiny();
    /* No handler: stderr (a file here) stays empty. */
    fflush(stderr);
    int saved = dup(2);
    int fd = open("lib.err", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0 && dup2(fd, 2) == 2);
    close(fd);
    vkg_set_notice_handler(NULL, NULL);
    long_generation();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    size_t n;
    char *e = read_file("lib.err", &n);
    cr_assert(e && n == 0, "libvkgpt2 printed on its own: '%s'", e);
    free(e);
    /* A handler: it gets both notices, one line each. */
    seen s = {0};
    vkg_set_notice_handler(collect, &s);
    long_generation();
    vkg_set_notice_handler(NULL, NULL);
    cr_assert(s.warnings == 2 && strstr(s.text, "clamped") && strstr(s.text, "end of the context"), "%s",
              s.text);
}

Test(edges, device_lost_notice_starts_on_a_new_line)
{
    synth("m", "2x64x4", "hf", "f32", "3");
    /* stderr and stdout into one file (a terminal shows both): the notice comes mid-text (submit 3:
     * the second chain of 8 decode tokens, after the first one's text). */
    merge_stderr = true;
    proc p = RUN_ENV(ENV("VKGPT2_FAULT=submit:3"), "-m", "m", "-p", "Hello world", "-n", "16", "--temp", "0",
                     "--ignore-eos", "--device", "0");
    merge_stderr = false;
    expect_ok(&p, "device lost under auto");
    const char *k = strstr(p.out, "vkgpt2: ");
    cr_assert(k, "no notice:\n%s", p.out);
    cr_assert(strstr(k, "continuing on the CPU"), "the first notice is not the fallback:\n%s", p.out);
    cr_assert(k > p.out && k[-1] == '\n', "the notice starts mid-line:\n%s", p.out);
    cr_assert(!strncmp(p.out, "Hello world", 11) && k - p.out > 12, "no text before the notice:\n%s", p.out);
    /* Into separate files, the text is untouched by it. */
    proc q = RUN_ENV(ENV("VKGPT2_FAULT=submit:3"), "-m", "m", "-p", "Hello world", "-n", "16", "--temp", "0",
                     "--ignore-eos", "--device", "0");
    expect_ok(&q, "device lost, separate files");
    cr_assert(count_lines(q.out, q.out_len) == 1, "stdout:\n%s", q.out);
    cr_assert(has_line_starting(q.err, "vkgpt2: ") && strstr(q.err, "continuing on the CPU"), "%s", q.err);
    proc_free(&p);
    proc_free(&q);
}

/* ---- (i) smaller ones ---- */

Test(edges, numbers_out_of_range_and_stray_words)
{
    synth_tiny();
    static const struct {
        const char *args[8];
        const char *needle, *also;
    } cases[] = {
        {{"-m", "tiny", "-s", "99999999999999999999"}, "-s", "out of range"},
        {{"-m", "tiny", "-n", "99999999999999999999"}, "-n", "out of range"},
        {{"-m", "tiny", "-t", "-99999999999999999999"}, "-t", "out of range"},
        {{"synth", "-o", "x", "--seed", "99999999999999999999"}, "--seed", "out of range"},
        {{"-m", "tiny", "-s", "12ab"}, "-s", "not an integer"},
        {{"-m", "tiny", "hello"}, "'hello'", "unexpected argument"},
        {{"generate", "-m", "tiny", "hello"}, "'hello'", "unexpected argument"},
        {{"eval", "-m", "tiny", "stray"}, "'stray'", "unexpected argument"},
        {{"tokenize", "-m", "tiny", "stray"}, "'stray'", "unexpected argument"},
        {{"synth", "-o", "x", "stray"}, "'stray'", "unexpected argument"},
        {{"-m", "tiny", "--frobnicate"}, "--frobnicate", "unknown option"},
        {{"--json=1", "-m", "tiny"}, "--json", "takes no value"},
        {{"--version", "extra"}, "extra", "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        proc p = run_full(NULL, 0, NULL, cases[i].args);
        char what[128];
        snprintf(what, sizeof what, "case %zu (%s %s ...)", i, cases[i].args[0], cases[i].args[1]);
        expect_error(&p, what, cases[i].needle);
        cr_assert(strstr(p.err, cases[i].also), "%s: '%s' not in: %s", what, cases[i].also, p.err);
        proc_free(&p);
    }
}

Test(edges, singular_counts_and_no_vulkan_counters_on_the_cpu)
{
    synth_tiny();
    /* The byte-level vocabulary: "a" is one token; -n 2 makes one decode step. */
    proc p = RUN("-m", "tiny", "-p", "a", "-n", "2", "--ignore-eos", "--backend", "cpu", "-v");
    expect_ok(&p, "one token");
    cr_assert(strstr(p.err, "/ 1 token (") && !strstr(p.err, "1 tokens"), "%s", p.err);
    cr_assert(!strstr(p.err, "counters"), "-v on the CPU prints Vulkan counters:\n%s", p.err);
    proc v = RUN("-m", "tiny", "-p", "a", "-n", "2", "--ignore-eos", "--backend", "vulkan", "-v");
    expect_ok(&v, "vulkan -v");
    cr_assert(strstr(v.err, "counters = "), "-v on Vulkan lost its counters:\n%s", v.err);
    proc b = RUN("-m", "tiny", "-p", "a", "-n", "2", "--ignore-eos", "--backend", "cpu", "-np", "1");
    expect_ok(&b, "one sequence");
    cr_assert(strstr(b.err, "1 sequence,") && !strstr(b.err, "1 sequences") && strstr(b.err, "(1 slot)"),
              "%s", b.err);
    proc_free(&p);
    proc_free(&v);
    proc_free(&b);
}

Test(edges, long_options_take_equals_values)
{
    synth_tiny();
    proc a = RUN("-m", "tiny", "-p", "Hello", "-n", "6", "--temp", "0", "--backend", "cpu", "--top_k", "5");
    expect_ok(&a, "spaces");
    proc b = RUN("--model=tiny", "--prompt=Hello", "--n_predict=6", "--temp=0", "--backend=cpu", "--top_k=5");
    expect_ok(&b, "equals");
    cr_assert(a.out_len > 6 && !strcmp(a.out, b.out), "'%s' vs '%s'", a.out, b.out);
    /* A value that looks like an option stays a value. */
    proc c = RUN("-m", "tiny", "-p", "--top_k=5", "-n", "1", "--temp", "0", "--backend", "cpu");
    expect_ok(&c, "-p --top_k=5");
    cr_assert(!strncmp(c.out, "--top_k=5", 9), "%s", c.out);
    /* Other commands. */
    proc s = RUN("synth", "--output=s2", "--size=tiny", "--format=ggml", "--seed=4");
    expect_ok(&s, "synth --opt=value");
    cr_assert(file_size("s2") > 0);
    proc t = RUN_IN("Hello", "tokenize", "--model=tiny");
    expect_ok(&t, "tokenize --model=");
    proc e = RUN("eval", "--model=tiny", "--ids=1 2", "--logits=l.f32", "--backend=cpu");
    expect_ok(&e, "eval --opt=value");
    cr_assert(file_size("l.f32") > 0);
    proc_free(&a);
    proc_free(&b);
    proc_free(&c);
    proc_free(&s);
    proc_free(&t);
    proc_free(&e);
}

Test(edges, threads_capped_at_a_multiple_of_the_cpus)
{
    synth_tiny();
    proc p = RUN("-m", "tiny", "-p", "hi", "-n", "2", "--backend", "cpu", "-t", "1000");
    expect_ok(&p, "-t 1000");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char want[96];
    snprintf(want, sizeof want, "vkgpt2: -t 1000 capped to %ld", 4 * cpus);
    cr_assert(has_line_starting(p.err, want), "no '%s' in:\n%s", want, p.err);
    snprintf(want, sizeof want, "%ld threads", 4 * cpus);
    cr_assert(strstr(p.err, want), "the session does not run %s:\n%s", want, p.err);
    proc_free(&p);
}

/* Every command that writes to stdout ends quietly with 141 when the reader is gone. */
Test(edges, closed_pipe_is_a_quiet_141_for_every_command)
{
    synth_tiny();
    char ids[20001];
    for (int i = 0; i < 5000; i++) memcpy(ids + 4 * i, "101 ", 4);
    ids[20000] = 0;
    static const struct {
        const char *in;
        const char *args[12];
    } cases[] = {
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "8", "--backend", "cpu"}},
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "8", "--backend", "cpu", "--json"}},
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "8", "--backend", "cpu", "-np", "2"}},
        {"Hello there", {"tokenize", "-m", "tiny"}},
        {"", {"detokenize", "-m", "tiny"}},
        {NULL, {"eval", "-m", "tiny", "--ids", "1 2", "--logits", "-", "--backend", "cpu"}},
        {NULL, {"--help"}},
        {NULL, {"eval", "--help"}},
        {NULL, {"devices"}},
        {NULL, {"--version"}},
    };
    stdout_closed_pipe = true;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *in = i == 4 ? ids : cases[i].in;
        proc p = run_full(in, in ? strlen(in) : 0, NULL, cases[i].args);
        no_crash(&p, cases[i].args[0]);
        cr_assert(p.code == 141, "%s %s | (closed): exit %d\nstderr: %s", cases[i].args[0],
                  cases[i].args[1] ? cases[i].args[1] : "", p.code, p.err);
        cr_assert(!strstr(p.err, "failed") && !strstr(p.err, "Broken pipe") && !strstr(p.err, "total time"),
                  "%s: messages on stderr:\n%s", cases[i].args[0], p.err);
        proc_free(&p);
    }
    stdout_closed_pipe = false;
}

/* A full disk: the error names the reason, for every command. */
Test(edges, full_disk_names_the_reason)
{
    if (access("/dev/full", W_OK)) cr_skip_test("no /dev/full");
    synth_tiny();
    static const struct {
        const char *in;
        const char *args[12];
    } cases[] = {
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "4", "--backend", "cpu"}},
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "4", "--backend", "cpu", "--json"}},
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "4", "--backend", "cpu", "-np", "2"}},
        {NULL, {"eval", "-m", "tiny", "--ids", "1 2", "--logits", "-", "--backend", "cpu"}},
        {"Hello", {"tokenize", "-m", "tiny"}},
        {"72 101", {"detokenize", "-m", "tiny"}},
        {NULL, {"--help"}},
        {NULL, {"synth", "--help"}},
        {NULL, {"devices"}},
        {NULL, {"--version"}},
    };
    const char *reason = strerror(ENOSPC);
    stdout_to = "/dev/full";
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        proc p = run_full(cases[i].in, cases[i].in ? strlen(cases[i].in) : 0, NULL, cases[i].args);
        no_crash(&p, cases[i].args[0]);
        cr_assert(p.code != 0, "%s > /dev/full: exit 0", cases[i].args[0]);
        cr_assert(strstr(p.err, "write failed") && strstr(p.err, reason), "%s > /dev/full: no '%s':\n%s",
                  cases[i].args[0], reason, p.err);
        proc_free(&p);
    }
    stdout_to = NULL;
}

/* ---- the header's worked example, compiled and run as written ---- */

Test(edges, header_example_compiles_and_runs)
{
    const char *src = getenv("VKGPT2_SOURCE_ROOT"), *build = getenv("VKGPT2_BUILD_ROOT");
    const char *cc = getenv("VKGPT2_CC"), *ccflags = getenv("VKGPT2_CC_FLAGS");
    cr_assert(src && build && cc && *cc,
              "VKGPT2_SOURCE_ROOT, VKGPT2_BUILD_ROOT, VKGPT2_CC (meson test sets them)");
    char path[4096];
    snprintf(path, sizeof path, "%s/include/vkgpt2.h", src);
    char *h = read_file(path, NULL);
    cr_assert(h, "%s", path);
    /* The example: the lines " *     CODE" (and blank " *" lines) after "A worked example". */
    const char *p = strstr(h, "A worked example");
    cr_assert(p);
    const char *end = strstr(p, "*/");
    cr_assert(end);
    FILE *f = fopen("example.c", "w");
    cr_assert(f);
    int code_lines = 0;
    for (const char *l = p; l < end;) {
        const char *nl = strchr(l, '\n');
        if (!nl || nl > end) break;
        size_t len = (size_t)(nl - l);
        if (len >= 7 && !strncmp(l, " *     ", 7)) {
            fprintf(f, "%.*s\n", (int)(len - 7), l + 7);
            code_lines++;
        } else if (len == 2 && !strncmp(l, " *", 2) && code_lines) {
            fputc('\n', f);
        } else if (code_lines && len > 3) {
            break; /* the prose after the example */
        }
        l = nl + 1;
    }
    cr_assert(fclose(f) == 0);
    cr_assert(code_lines > 20, "only %d lines of example found", code_lines);
    free(h);
    char cmd[16384];
    snprintf(
        cmd, sizeof cmd,
        "%s -std=c11 -Wall -Wextra -Werror -pedantic %s -I'%s/include' -I'%s/include' example.c -o example "
        "-L'%s' -lvkgpt2 -Wl,-rpath,'%s' > cc.log 2>&1",
        cc, ccflags ? ccflags : "", src, build, build, build);
    int rc = system(cmd);
    if (rc) {
        char *log = read_file("cc.log", NULL);
        cr_assert_fail("the header's example does not compile (%s):\n%s", cmd, log ? log : "");
    }
    /* It loads models/gpt2: a synthetic one stands in. */
    cr_assert(mkdir("models", 0755) == 0);
    synth("models/gpt2", "tiny", "hf", "f32", "1");
    rc = system("VKGPT2_VALIDATION=0 ./example > ex.out 2> ex.err");
    char *out = read_file("ex.out", NULL), *err = read_file("ex.err", NULL);
    cr_assert(rc == 0, "the example exits with %d:\nstdout: %s\nstderr: %s", rc, out, err);
    cr_assert(strstr(out, " ms/token on "), "%s", out);
    cr_assert(err && !*err, "the example (no notice handler) got text on stderr: %s", err);
    free(out);
    free(err);
}
