/* test_cli.c - the vkgpt2 command, end to end: the built binary run as a child process.
 *
 * Every case runs $VKGPT2_BUILD_ROOT/tools/vkgpt2 with fork + execve (no shell), stdin from a file,
 * stdout and stderr into files, under a timeout (a hang is killed and fails the test). Models are
 * made by `vkgpt2 synth` in a fresh temporary directory per test (the test's working directory).
 *
 * Contract checked for every error: a non-zero exit (never a signal), nothing on stdout, and
 * exactly one line on stderr that starts with "vkgpt2: " and names the file or argument at fault.
 */
#include "cli_harness.h"
#include <math.h>
#include <stdarg.h>

TestSuite(cli, .init = setup, .fini = teardown);

/* ---- generate ---- */

Test(cli, greedy_cpu_and_vulkan_agree)
{
    synth_tiny();
    proc c = RUN("generate", "-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "16", "--backend", "cpu");
    expect_ok(&c, "generate cpu");
    proc v = RUN("generate", "-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "16", "--backend", "vulkan");
    expect_ok(&v, "generate vulkan");
    cr_assert(!strncmp(c.out, "Hello", 5), "stdout does not start with the prompt: %s", c.out);
    cr_assert(c.out_len > 6 && c.out[c.out_len - 1] == '\n', "no text generated: '%s'", c.out);
    cr_assert(c.out_len == v.out_len && !memcmp(c.out, v.out, c.out_len),
              "greedy text differs\ncpu:    %s\nvulkan: %s", c.out, v.out);
    cr_assert(strstr(c.err, "backend cpu"), "%s", c.err);
    cr_assert(strstr(v.err, "backend vulkan"), "%s", v.err);
    proc_free(&c);
    proc_free(&v);
}

Test(cli, ggml_style_flags_without_subcommand)
{
    synth_tiny();
    proc a = RUN("-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "8", "--backend", "cpu");
    expect_ok(&a, "flags only");
    proc b = RUN("generate", "-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "8", "--backend", "cpu");
    expect_ok(&b, "generate");
    cr_assert(a.out_len > 6 && !strcmp(a.out, b.out), "'%s' vs '%s'", a.out, b.out);
    proc_free(&a);
    proc_free(&b);
}

Test(cli, same_seed_same_text_per_backend)
{
    synth("m", "2x64x4", "hf", "f16", "3");
    const char *backends[] = {"cpu", "vulkan"};
    for (int b = 0; b < 2; b++) {
        proc p1 =
            RUN("-m", "m", "-p", "Once", "-n", "24", "-s", "1234", "--ignore-eos", "--backend", backends[b]);
        expect_ok(&p1, backends[b]);
        proc p2 =
            RUN("-m", "m", "-p", "Once", "-n", "24", "-s", "1234", "--ignore-eos", "--backend", backends[b]);
        expect_ok(&p2, backends[b]);
        cr_assert(p1.out_len > 5 && !strcmp(p1.out, p2.out), "%s: seed 1234 gave '%s' then '%s'", backends[b],
                  p1.out, p2.out);
        if (b == 0) {
            /* The runs are deterministic, so this is no flaky check: another seed, other text. */
            proc p3 =
                RUN("-m", "m", "-p", "Once", "-n", "24", "-s", "99", "--ignore-eos", "--backend", "cpu");
            expect_ok(&p3, "seed 99");
            cr_assert(strcmp(p1.out, p3.out), "seeds 1234 and 99 gave the same text '%s'", p1.out);
            proc_free(&p3);
        }
        proc_free(&p1);
        proc_free(&p2);
    }
}

static void check_json_shape(const json_value *r)
{
    jfield(r, "prompt_ids", JSON_ARRAY);
    jfield(r, "ids", JSON_ARRAY);
    jfield(r, "text", JSON_STRING);
    jfield(r, "backend", JSON_STRING);
    const json_value *t = jfield(r, "timings", JSON_OBJECT);
    const char *tk[] = {"load_ms", "prompt_ms", "decode_ms_per_token", "sample_ms", "total_ms"};
    for (size_t i = 0; i < sizeof tk / sizeof *tk; i++) cr_assert(jnum(t, tk[i]) >= 0, "%s < 0", tk[i]);
    cr_assert(jint(t, "prompt_tokens") >= 0);
    cr_assert(jint(t, "decode_tokens") >= 0);
    const json_value *m = jfield(r, "memory", JSON_OBJECT);
    cr_assert(jint(m, "weights_bytes") > 0);
    cr_assert(jint(m, "kv_bytes") > 0);
    cr_assert(jint(m, "scratch_bytes") >= 0);
    const json_value *c = jfield(r, "counters", JSON_OBJECT);
    jint(c, "decode_cmdbuf_records");
    jint(c, "readback_bytes_per_token");
}

Test(cli, json_output)
{
    synth_tiny();
    proc p = RUN("-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "12", "--ignore-eos", "--backend", "cpu",
                 "--json");
    expect_ok(&p, "--json");
    json_doc *d = parse_json(&p);
    const json_value *r = json_root(d);
    check_json_shape(r);
    cr_assert(!strcmp(jfield(r, "backend", JSON_STRING)->str, "cpu"));
    const json_value *ids = jfield(r, "ids", JSON_ARRAY);
    cr_assert(ids->len == 12, "%zu ids, expected 12", ids->len);
    size_t n_prompt = jfield(r, "prompt_ids", JSON_ARRAY)->len;
    cr_assert(n_prompt > 0);
    const json_value *t = jfield(r, "timings", JSON_OBJECT);
    cr_assert(jint(t, "prompt_tokens") == (int64_t)n_prompt);
    cr_assert(jint(t, "decode_tokens") == 11, "decode_tokens %lld", (long long)jint(t, "decode_tokens"));

    /* The JSON text is what plain mode prints after the prompt (and before its final newline). */
    proc q = RUN("-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "12", "--ignore-eos", "--backend", "cpu");
    expect_ok(&q, "plain");
    const json_value *text = jfield(r, "text", JSON_STRING);
    cr_assert(q.out_len == 5 + text->len + 1 && !memcmp(q.out + 5, text->str, text->len),
              "plain '%s' vs JSON text '%s'", q.out, text->str);
    json_free(d);
    proc_free(&p);
    proc_free(&q);
}

/* Strict UTF-8 (no overlongs, surrogates or leads past f4). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t need = c < 0x80       ? 1
            : c >= 0xc2 && c <= 0xdf ? 2
            : c >= 0xe0 && c <= 0xef ? 3
            : c >= 0xf0 && c <= 0xf4 ? 4
                                     : 0;
        if (!need || i + need > n) return false;
        for (size_t k = 1; k < need; k++)
            if ((s[i + k] & 0xc0) != 0x80) return false;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) ||
            (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
            return false;
        i += need;
    }
    return true;
}

/* Uniform sampling over the byte-level vocabulary emits every kind of broken byte sequence; the
 * JSON must stay valid UTF-8 (bad bytes become \ufffd) whatever the text holds. */
Test(cli, json_text_is_valid_utf8)
{
    synth_tiny();
    for (int seed = 1; seed <= 40; seed++) {
        char s[16];
        snprintf(s, sizeof s, "%d", seed);
        proc p = RUN("-m", "tiny", "-n", "200", "-s", s, "--temp", "1e6", "--top_k", "0", "--top_p", "1",
                     "--ignore-eos", "--json", "--backend", "cpu");
        expect_ok(&p, "uniform sampling");
        cr_assert(valid_utf8((const unsigned char *)p.out, p.out_len),
                  "seed %d: --json output is not UTF-8:\n%s", seed, p.out);
        json_doc *d = parse_json(&p);
        cr_assert(jfield(json_root(d), "ids", JSON_ARRAY)->len == 128); /* <|endoftext|> + 128 = n_ctx + 1 */
        json_free(d);
        proc_free(&p);
    }
}

Test(cli, json_vulkan_one_record_small_readback)
{
    synth_tiny();
    proc p = RUN("-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "64", "--ignore-eos", "--backend",
                 "vulkan", "--json");
    expect_ok(&p, "--json vulkan");
    json_doc *d = parse_json(&p);
    const json_value *r = json_root(d);
    check_json_shape(r);
    cr_assert(!strcmp(jfield(r, "backend", JSON_STRING)->str, "vulkan"));
    cr_assert(jfield(r, "ids", JSON_ARRAY)->len == 64);
    const json_value *c = jfield(r, "counters", JSON_OBJECT);
    cr_assert(jint(c, "decode_cmdbuf_records") == 1,
              "decode_cmdbuf_records %lld (the decode step must be recorded once)",
              (long long)jint(c, "decode_cmdbuf_records"));
    cr_assert(jint(c, "readback_bytes_per_token") <= 4, "readback_bytes_per_token %lld",
              (long long)jint(c, "readback_bytes_per_token"));
    json_free(d);
    proc_free(&p);
}

Test(cli, prompt_from_file_and_stdin)
{
    synth_tiny();
    write_file("prompt.txt", "Hello", 5);
    proc a = RUN("-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "8", "--backend", "cpu");
    expect_ok(&a, "-p");
    proc b = RUN("-m", "tiny", "-f", "prompt.txt", "--temp", "0", "-n", "8", "--backend", "cpu");
    expect_ok(&b, "-f FILE");
    proc c = RUN_IN("Hello", "-m", "tiny", "-f", "-", "--temp", "0", "-n", "8", "--backend", "cpu");
    expect_ok(&c, "-f -");
    cr_assert(!strcmp(a.out, b.out), "'%s' vs '%s'", a.out, b.out);
    cr_assert(!strcmp(a.out, c.out), "'%s' vs '%s'", a.out, c.out);
    proc d = RUN("-m", "tiny", "-p", "Hello", "-f", "prompt.txt");
    expect_error(&d, "-p and -f", "-f");
    proc_free(&a);
    proc_free(&b);
    proc_free(&c);
    proc_free(&d);
}

Test(cli, empty_prompt_starts_from_endoftext)
{
    synth_tiny();
    proc p =
        RUN("-m", "tiny", "-p", "", "--temp", "0", "-n", "8", "--ignore-eos", "--backend", "cpu", "--json");
    expect_ok(&p, "empty prompt");
    json_doc *d = parse_json(&p);
    const json_value *r = json_root(d);
    cr_assert(jfield(r, "ids", JSON_ARRAY)->len == 8, "nothing generated from an empty prompt");
    cr_assert(jint(jfield(r, "timings", JSON_OBJECT), "prompt_tokens") == 1,
              "<|endoftext|> was not evaluated");
    json_free(d);
    /* Sampling from nothing, text mode, and on Vulkan too. */
    proc q = RUN("-m", "tiny", "-n", "8", "-s", "5", "--ignore-eos", "--backend", "vulkan");
    expect_ok(&q, "no -p, vulkan");
    cr_assert(q.out_len > 1, "nothing generated: '%s'", q.out);
    proc_free(&p);
    proc_free(&q);
}

/* ---- eval ---- */

static float *eval_logits(const char *model, const char *ids, const char *backend, const char *out,
                          size_t *n_floats)
{
    proc p = RUN("eval", "-m", model, "--ids", ids, "--logits", out, "--backend", backend, "--force");
    expect_ok(&p, "eval");
    cr_assert(p.out_len == 0, "eval wrote to stdout: %s", p.out);
    proc_free(&p);
    size_t len;
    char *buf = read_file(out, &len);
    cr_assert(buf, "%s not written", out);
    cr_assert(len % 4 == 0);
    *n_floats = len / 4;
    /* Little-endian f32 on disk. */
    float *f = malloc(len + 4);
    cr_assert(f);
    for (size_t i = 0; i < *n_floats; i++) {
        const unsigned char *b = (const unsigned char *)buf + 4 * i;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&f[i], &u, 4);
    }
    free(buf);
    return f;
}

static const char eval_ids[] = "464 2068 7586 21831 18045 625 262 16931 3290 13 50 60 70 80";
#define EVAL_N 14

Test(cli, eval_logits_cpu_vs_vulkan)
{
    synth_tiny();
    const int n_vocab = 513; /* tiny: 256 bytes + 256 merges + <|endoftext|> */
    /* tiny's ids must stay below n_vocab */
    const char *ids = "1 72 101 108 108 111 32 119 111 114 108 100 300 512";
    size_t nc, nv;
    float *c = eval_logits("tiny", ids, "cpu", "cpu.f32", &nc);
    float *v = eval_logits("tiny", ids, "vulkan", "vk.f32", &nv);
    cr_assert(nc == (size_t)EVAL_N * n_vocab, "%zu floats, expected %d x %d", nc, EVAL_N, n_vocab);
    cr_assert(nv == nc);
    float maxabs = 0;
    for (size_t i = 0; i < nc; i++) {
        cr_assert(isfinite(c[i]) && isfinite(v[i]), "non-finite logit at %zu", i);
        if (fabsf(c[i]) > maxabs) maxabs = fabsf(c[i]);
    }
    cr_assert(maxabs > 0, "all logits are zero");
    for (size_t i = 0; i < nc; i++)
        cr_assert(fabsf(c[i] - v[i]) <= 1e-3f * fmaxf(fabsf(c[i]), 1.0f),
                  "logit [%zu][%zu]: cpu %g vs vulkan %g", i / n_vocab, i % n_vocab, c[i], v[i]);
    free(c);
    free(v);
}

Test(cli, eval_ggml_equals_hf)
{
    const char *types[] = {"f32", "f16"};
    for (int t = 0; t < 2; t++) {
        synth("m_hf", "2x64x4", "hf", types[t], "7");
        synth("m.bin", "2x64x4", "ggml", types[t], "7");
        size_t na, nb;
        float *a = eval_logits("m_hf", "10 20 30 40 50", "cpu", "a.f32", &na);
        float *b = eval_logits("m.bin", "10 20 30 40 50", "cpu", "b.f32", &nb);
        cr_assert(na == nb && na % 5 == 0 && na > 0);
        cr_assert(!memcmp(a, b, na * 4), "%s: ggml and hf logits differ", types[t]);
        /* --ids takes commas and newlines too. */
        size_t nc;
        float *c = eval_logits("m.bin", "10,20\n30, 40 50", "cpu", "c.f32", &nc);
        cr_assert(nc == na && !memcmp(b, c, na * 4), "separators change the result");
        free(a);
        free(b);
        free(c);
        cr_assert(rm_tree("m_hf") == 0);
        cr_assert(remove("m.bin") == 0);
    }
}

Test(cli, eval_real_vocab_ids)
{
    const char *vocab = real_vocab_dir();
    if (!vocab) cr_skip_test("data/gpt2-vocab missing (tools/fetch-vocab.sh)");
    proc s = RUN("synth", "-o", "real", "--size", "tiny", "--vocab", vocab);
    expect_ok(&s, "synth --vocab");
    proc_free(&s);
    size_t n;
    float *f = eval_logits("real", eval_ids, "cpu", "r.f32", &n);
    cr_assert(n == (size_t)EVAL_N * 50257, "%zu floats, expected %d x 50257", n, EVAL_N);
    free(f);
}

/* ---- tokenize / detokenize ---- */

Test(cli, tokenize_detokenize_round_trip)
{
    synth_tiny();
    const char *text = "Hello world, \xc3\xbcn\xc3\xaf"
                       "c\xc3\xb6"
                       "d\xc3\xa9 \xf0\x9f\x98\x80 <|endoftext|>\n\n  tabs\t!";
    proc t = RUN_IN(text, "tokenize", "-m", "tiny");
    expect_ok(&t, "tokenize");
    cr_assert(t.out_len > 1 && t.out[t.out_len - 1] == '\n' && count_lines(t.out, t.out_len) == 1,
              "ids are not one line: '%s'", t.out);
    proc d = RUN_IN(t.out, "detokenize", "-m", "tiny");
    expect_ok(&d, "detokenize");
    cr_assert(d.out_len == strlen(text) && !memcmp(d.out, text, d.out_len), "round trip gave '%s'", d.out);
    proc_free(&t);
    proc_free(&d);

    const char *vocab = real_vocab_dir();
    if (!vocab) return;
    /* The vocabulary directory itself is accepted as -m. */
    proc r = RUN_IN("Hello world", "tokenize", "-m", vocab);
    expect_ok(&r, "tokenize real vocab");
    cr_assert(!strcmp(r.out, "15496 995\n"), "'Hello world' -> '%s'", r.out);
    proc b = RUN_IN("15496 995", "detokenize", "-m", vocab);
    expect_ok(&b, "detokenize real vocab");
    cr_assert(!strcmp(b.out, "Hello world"), "-> '%s'", b.out);
    proc_free(&r);
    proc_free(&b);
}

Test(cli, tokenize_errors)
{
    synth_tiny();
    proc a = run_full("\xff\xfe", 2, NULL, ARGS("tokenize", "-m", "tiny"));
    expect_error(&a, "tokenize invalid UTF-8", "stdin");
    proc b = RUN_IN("1 99999", "detokenize", "-m", "tiny");
    expect_error(&b, "detokenize out of range", "99999");
    proc c = RUN_IN("1 abc\n2\n", "detokenize", "-m", "tiny");
    expect_error(&c, "detokenize not a number", "abc");
    proc d = RUN_IN("x", "tokenize", "-m", "nonexistent-dir");
    expect_error(&d, "tokenize no model", "nonexistent-dir");
    proc_free(&a);
    proc_free(&b);
    proc_free(&c);
    proc_free(&d);
}

/* ---- context limits ---- */

Test(cli, n_predict_clamped_to_context)
{
    synth_tiny();
    const char *backends[] = {"cpu", "vulkan"};
    for (int b = 0; b < 2; b++) {
        proc p = RUN("-m", "tiny", "-p", "Hi", "--temp", "0", "-n", "1000", "--ignore-eos", "--json",
                     "--backend", backends[b]);
        expect_ok(&p, backends[b]);
        cr_assert(strstr(p.err, "clamped"), "%s: no notice of the clamp: %s", backends[b], p.err);
        json_doc *d = parse_json(&p);
        const json_value *r = json_root(d);
        size_t n_prompt = jfield(r, "prompt_ids", JSON_ARRAY)->len, n_gen = jfield(r, "ids", JSON_ARRAY)->len;
        /* 128 positions; the last generated token needs none of its own. */
        cr_assert(n_prompt + n_gen == 129, "%s: %zu + %zu tokens", backends[b], n_prompt, n_gen);
        cr_assert(!strcmp(jfield(r, "stopped", JSON_STRING)->str, "context"));
        json_free(d);
        proc_free(&p);
    }
}

Test(cli, prompt_longer_than_context)
{
    synth_tiny();
    char text[1201];
    for (int i = 0; i < 400; i++) memcpy(text + 3 * i, "ab ", 3);
    text[1200] = 0;
    write_file("long.txt", text, 1200);
    proc p = RUN("-m", "tiny", "-f", "long.txt", "-n", "4", "--backend", "cpu");
    expect_error(&p, "long prompt file", "long.txt");
    cr_assert(strstr(p.err, "128"), "does not name the context size: %s", p.err);
    proc q = RUN("-m", "tiny", "-p", text, "-n", "4", "--backend", "cpu");
    expect_error(&q, "long prompt", "prompt");
    /* eval: 129 ids */
    char ids[129 * 2 + 1];
    for (int i = 0; i < 129; i++) memcpy(ids + 2 * i, "5 ", 2);
    ids[258] = 0;
    proc e = RUN("eval", "-m", "tiny", "--ids", ids, "--logits", "x.f32", "--backend", "cpu");
    expect_error(&e, "eval 129 ids", "--ids");
    cr_assert(file_size("x.f32") < 0, "a logits file was written on error");
    proc_free(&p);
    proc_free(&q);
    proc_free(&e);
}

/* ---- backends ---- */

Test(cli, no_vulkan_at_all)
{
    synth_tiny();
    /* Validation off: with it on, the loader's own complaints are relayed to stderr as well. */
    const char *const *env =
        ENV("VK_ICD_FILENAMES=/nonexistent.json", "VK_DRIVER_FILES=/nonexistent.json", "VKGPT2_VALIDATION=0");
    proc ref = RUN("-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "8", "--backend", "cpu");
    expect_ok(&ref, "cpu");
    proc a = RUN_ENV(env, "-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "8", "--backend", "auto");
    expect_ok(&a, "auto without Vulkan");
    cr_assert(!strcmp(a.out, ref.out), "'%s' vs '%s'", a.out, ref.out);
    cr_assert(strstr(a.err, "backend cpu"), "%s", a.err);
    /* One notice line about the missing device. */
    size_t notices = 0;
    for (const char *l = a.err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, "vkgpt2: no Vulkan", 17)) notices++;
    cr_assert(notices == 1, "expected one 'no Vulkan' notice:\n%s", a.err);
    proc v = RUN_ENV(env, "-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "8", "--backend", "vulkan");
    expect_error(&v, "--backend vulkan without Vulkan", "vulkan");
    proc dv = RUN_ENV(env, "devices");
    expect_error(&dv, "devices without Vulkan", "Vulkan");
    proc_free(&ref);
    proc_free(&a);
    proc_free(&v);
    proc_free(&dv);
}

Test(cli, cpu_ops_under_vulkan_same_text)
{
    synth_tiny();
    proc a = RUN("-m", "tiny", "-p", "Hello", "--temp", "0", "-n", "16", "--backend", "vulkan");
    expect_ok(&a, "vulkan");
    proc b = RUN_ENV(ENV("VKGPT2_CPU_OPS=gelu,attention"), "-m", "tiny", "-p", "Hello", "--temp", "0", "-n",
                     "16", "--backend", "vulkan");
    expect_ok(&b, "VKGPT2_CPU_OPS=gelu,attention");
    cr_assert(strstr(b.err, "backend vulkan"), "%s", b.err);
    cr_assert(!strcmp(a.out, b.out), "'%s' vs '%s'", a.out, b.out);
    proc c = RUN_ENV(ENV("VKGPT2_CPU_OPS=frobnicate"), "-m", "tiny", "-p", "Hello", "--backend", "vulkan");
    expect_error(&c, "VKGPT2_CPU_OPS=frobnicate", "frobnicate");
    proc_free(&a);
    proc_free(&b);
    proc_free(&c);
}

Test(cli, devices_lists_llvmpipe)
{
    proc p = RUN("devices");
    expect_ok(&p, "devices");
    cr_assert(strstr(p.out, "llvmpipe"), "no llvmpipe in:\n%s", p.out);
    /* the GPU-readiness rows: which f16 prefill matmul (and coopmat shape) the device gets, the
     * buffer limit, the UUID --device may name */
    cr_assert(strstr(p.out, "f16 prefill matmul") && strstr(p.out, "maxBufferSize") &&
                  strstr(p.out, "device UUID"),
              "%s", p.out);
    proc_free(&p);
}

/* --device by name substring and by deviceUUID prefix; -v names the prefill matmul variant; a name
 * no device has, with Vulkan forced, is one line. */
Test(cli, device_by_name_or_uuid_and_verbose_variant)
{
    synth_tiny();
    proc d = RUN("devices");
    expect_ok(&d, "devices");
    const char *u = strstr(d.out, "device UUID");
    cr_assert(u, "%s", d.out);
    char uuid[9];
    cr_assert_eq(sscanf(u, "device UUID %8s", uuid), 1);
    const char *sels[] = {"LLVMPIPE", uuid};
    for (int k = 0; k < 2; k++) {
        proc p = RUN("-m", "tiny", "-p", "Hi", "-n", "2", "--temp", "0", "--backend", "vulkan", "--device",
                     sels[k], "-v");
        expect_ok(&p, sels[k]);
        cr_assert(strstr(p.err, "f16 prefill matmuls run tiled") &&
                      strstr(p.err, "backend vulkan on llvmpipe"),
                  "--device %s:\n%s", sels[k], p.err);
        proc_free(&p);
    }
    proc q = RUN("-m", "tiny", "-p", "Hi", "-n", "2", "--backend", "vulkan", "--device", "no-such-gpu");
    expect_error(&q, "--device no-such-gpu", "no-such-gpu");
    proc_free(&q);
    proc_free(&d);
}

/* ---- bad input ---- */

Test(cli, bad_model_files)
{
    proc p = RUN("-m", "does-not-exist.bin", "-p", "hi");
    expect_error(&p, "nonexistent model", "does-not-exist.bin");
    proc_free(&p);

    synth("m.bin", "tiny", "ggml", "f16", "1");
    size_t len;
    char *data = read_file("m.bin", &len);
    cr_assert(data && len > 1000);
    size_t cuts[] = {0, 1, 3, 4, 7, 8, 20, 27, 28, 100, 1000, len / 3, len / 2, len - 4, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char name[64], what[96];
        snprintf(name, sizeof name, "cut-%zu.bin", cuts[i]);
        snprintf(what, sizeof what, "model truncated at %zu of %zu bytes", cuts[i], len);
        write_file(name, data, cuts[i]);
        proc q = RUN("-m", name, "-p", "hi", "--backend", "cpu");
        expect_error(&q, what, name);
        proc_free(&q);
    }
    /* The whole file still loads (the cuts are what fails). */
    proc ok = RUN("-m", "m.bin", "-p", "hi", "-n", "2", "--backend", "cpu");
    expect_ok(&ok, "whole ggml file");
    proc_free(&ok);

    /* Random bytes: wrong magic. */
    srand(42);
    for (size_t i = 0; i < 4096 && i < len; i++) data[i] = (char)(rand() & 0xff);
    write_file("random.bin", data, 4096);
    free(data);
    proc r = RUN("-m", "random.bin", "-p", "hi");
    expect_error(&r, "random bytes", "random.bin");
    proc_free(&r);
}

static void edit_config(const char *dir, const char *key, const char *value)
{
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *c = read_file(path, &len);
    cr_assert(c);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *k = strstr(c, pat);
    cr_assert(k, "%s not in %s", key, path);
    char *v = k + strlen(pat);
    while (*v == ' ') v++;
    char *e = v;
    while ((*e >= '0' && *e <= '9') || *e == '-') e++;
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(c, 1, (size_t)(v - c), f);
    fputs(value, f);
    fputs(e, f);
    fclose(f);
    free(c);
}

Test(cli, bad_model_directories)
{
    synth("heads", "tiny", "hf", "f32", "1");
    edit_config("heads", "n_head", "3");
    proc a = RUN("-m", "heads", "-p", "hi");
    expect_error(&a, "n_embd % n_head", "heads");
    cr_assert(strstr(a.err, "n_head"), "%s", a.err);

    synth("novocab", "tiny", "hf", "f32", "1");
    cr_assert(remove("novocab/vocab.json") == 0);
    proc b = RUN("-m", "novocab", "-p", "hi");
    expect_error(&b, "no vocab.json", "novocab");

    cr_assert(mkdir("empty", 0755) == 0);
    proc c = RUN("-m", "empty", "-p", "hi");
    expect_error(&c, "empty directory", "empty");

    proc_free(&a);
    proc_free(&b);
    proc_free(&c);
}

Test(cli, invalid_utf8_prompt)
{
    synth_tiny();
    write_file("bad.txt", "\xff\xfe", 2);
    proc p = RUN("-m", "tiny", "-f", "bad.txt", "--backend", "cpu");
    expect_error(&p, "invalid UTF-8 prompt file", "bad.txt");
    proc q = RUN("-m", "tiny", "-p", "ok \xc3(", "--backend", "cpu");
    expect_error(&q, "invalid UTF-8 -p", "prompt");
    proc r = RUN("-m", "tiny", "-f", "no-such-prompt.txt", "--backend", "cpu");
    expect_error(&r, "missing prompt file", "no-such-prompt.txt");
    proc_free(&p);
    proc_free(&q);
    proc_free(&r);
}

Test(cli, bad_arguments)
{
    synth_tiny();
    static const struct {
        const char *args[8];
        const char *needle;
    } cases[] = {
        {{"-m", "tiny", "--frobnicate"}, "--frobnicate"},
        {{"-m", "tiny", "-n", "abc"}, "-n"},
        {{"-m", "tiny", "-n", "-5"}, "-n"},
        {{"-m", "tiny", "-n", ""}, "-n"},
        {{"-m", "tiny", "-n", "12x"}, "-n"},
        {{"-m", "tiny", "-n", "99999999999999999999"}, "-n"},
        {{"-m", "tiny", "--temp", "x"}, "--temp"},
        {{"-m", "tiny", "--temp", "-1"}, "--temp"},
        {{"-m", "tiny", "--temp", "nan"}, "--temp"},
        {{"-m", "tiny", "--top_p", "2"}, "--top_p"},
        {{"-m", "tiny", "--top_k", "-1"}, "--top_k"},
        {{"-m", "tiny", "--repeat-penalty", "0"}, "--repeat-penalty"},
        {{"-m", "tiny", "-s", "seed"}, "-s"},
        {{"-m", "tiny", "-t", "0"}, "-t"},
        {{"-m", "tiny", "-b", "0"}, "-b"},
        {{"-m", "tiny", "--backend", "gpu"}, "gpu"},
        {{"-m", "tiny", "--kv", "f8"}, "f8"},
        {{"-m", "tiny", "--device", "-3"}, "--device"},
        {{"-m"}, "-m"},
        {{"-m", "tiny", "-p"}, "-p"},
        {{"frobnicate", "-m", "tiny"}, "frobnicate"},
        {{"eval", "-m", "tiny", "--logits", "x.f32"}, "--ids"},
        {{"eval", "-m", "tiny", "--ids", "1 2"}, "--logits"},
        {{"eval", "-m", "tiny", "--ids", "1 513", "--logits", "x.f32"}, "513"},
        {{"eval", "-m", "tiny", "--ids", "1 -2", "--logits", "x.f32"}, "-2"},
        {{"eval", "-m", "tiny", "--ids", "1 two\n", "--logits", "x.f32"}, "two"},
        {{"eval", "-m", "tiny", "--ids", "", "--logits", "x.f32"}, "--ids"},
        {{"eval", "-m", "tiny", "--ids", "1", "--logits", "no-such-dir/x.f32"}, "no-such-dir/x.f32"},
        {{"tokenize", "--frobnicate"}, "--frobnicate"},
        {{"devices", "--frobnicate"}, "--frobnicate"},
        {{"synth", "--size", "tiny"}, "-o"},
        {{"synth", "-o", "s", "--size", "huge"}, "huge"},
        {{"synth", "-o", "s", "--size", "2x65x4"}, "2x65x4"},
        {{"synth", "-o", "s", "--format", "onnx"}, "onnx"},
        {{"synth", "-o", "s", "--type", "q4"}, "q4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[9] = {0};
        char what[256] = "";
        for (int j = 0; j < 8 && cases[i].args[j]; j++) {
            argv[j] = cases[i].args[j];
            strncat(what, argv[j], sizeof what - strlen(what) - 2);
            strcat(what, " ");
        }
        proc p = run_full(NULL, 0, NULL, argv);
        expect_error(&p, what, cases[i].needle);
        proc_free(&p);
    }
    cr_assert(file_size("x.f32") < 0, "eval wrote logits despite an error");
}

Test(cli, help_mentions_every_flag)
{
    const char *flags[] = {"-m",
                           "-p",
                           "-f",
                           "-n",
                           "-s",
                           "-t",
                           "-b",
                           "--top_k",
                           "--top_p",
                           "--temp",
                           "--repeat-penalty",
                           "--repeat-last-n",
                           "--ignore-eos",
                           "--backend",
                           "--device",
                           "--kv",
                           "--json",
                           "--ids",
                           "--logits",
                           "-o",
                           "--size",
                           "--vocab",
                           "-v"};
    const char *forms[][1] = {{"--help"}, {"-h"}, {"help"}};
    for (size_t f = 0; f < 3; f++) {
        proc p = run_full(NULL, 0, NULL, ARGS(forms[f][0]));
        expect_ok(&p, forms[f][0]);
        for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
            char pat[64];
            snprintf(pat, sizeof pat, "%s ", flags[i]);
            char pat2[64];
            snprintf(pat2, sizeof pat2, "%s,", flags[i]);
            cr_assert(strstr(p.out, pat) || strstr(p.out, pat2), "%s: '%s' not in the help", forms[f][0],
                      flags[i]);
        }
        cr_assert(p.err_len == 0, "help wrote to stderr: %s", p.err);
        proc_free(&p);
    }
}

/* Output that cannot be written (a full disk) is an error, not a silent success. */
Test(cli, stdout_write_errors)
{
    if (access("/dev/full", W_OK)) cr_skip_test("no /dev/full");
    synth_tiny();
    static const struct {
        const char *in;
        const char *args[12];
    } cases[] = {
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "4", "--backend", "cpu"}},
        {NULL, {"-m", "tiny", "-p", "hi", "-n", "4", "--backend", "cpu", "--json"}},
        {NULL, {"eval", "-m", "tiny", "--ids", "1 2", "--logits", "-", "--backend", "cpu"}},
        {"Hello", {"tokenize", "-m", "tiny"}},
        {"72 101", {"detokenize", "-m", "tiny"}},
        {NULL, {"--help"}},
        {NULL, {"devices"}},
    };
    stdout_to = "/dev/full";
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        proc p = run_full(cases[i].in, cases[i].in ? strlen(cases[i].in) : 0, NULL, cases[i].args);
        no_crash(&p, cases[i].args[0]);
        cr_assert(p.code != 0, "%s ... > /dev/full: exit 0", cases[i].args[0]);
        cr_assert(strstr(p.err, "write failed"), "%s ... > /dev/full: no error on stderr:\n%s",
                  cases[i].args[0], p.err);
        proc_free(&p);
    }
    stdout_to = NULL;
}
