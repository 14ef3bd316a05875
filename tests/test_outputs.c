/* test_outputs.c - nothing a user gave is ever destroyed by a command that writes files
 * (core/outfile.c, docs/RELIABILITY.md "Writing files").
 *
 * Every case runs the built $VKGPT2_BUILD_ROOT/tools/vkgpt2 (or vkgpt2-perfdoc) as a child with
 * fork + execve in a fresh temporary directory, and checks, for every writer (convert, quantize,
 * synth, eval --logits, --trace, kbench --dump, perfdoc):
 *   - an output that is the input (same path, ./path, a symlink, a hard link, a file inside an input
 *     Hugging Face directory) is refused with one line, and the input's bytes are unchanged;
 *   - an existing output is refused and unchanged without --force, and replaced with it;
 *   - an unwritable destination is reported before any work (the model is not even loaded);
 *   - a write that fails (RLIMIT_FSIZE, /dev/full) leaves the old file whole and no temporaries;
 *   - a writer killed in the middle (SIGKILL, SIGINT) leaves the old file whole and no leftovers;
 *   - progress shows on a terminal only, and is cleared before anything else is printed.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"
#include "vkgpt2.h"

extern char **environ;

static char bin[4096], perfdoc[4096];

static void setup(void)
{
    build_binary(bin, sizeof bin, "tools/vkgpt2");
    build_binary(perfdoc, sizeof perfdoc, "tools/vkgpt2-perfdoc");
    tmpdir_enter("vkg-out");
}

static void teardown(void) { tmpdir_leave(); }

TestSuite(outputs, .init = setup, .fini = teardown, .timeout = 240);

/* ---- files ---- */

/* FNV-1a of a file's bytes, or of a directory's entries (names and bytes, in name order);
 * 0 when path does not exist. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    if (S_ISDIR(st.st_mode)) {
        struct dirent **list;
        int n = scandir(path, &list, NULL, alphasort);
        cr_assert(n >= 0);
        for (int i = 0; i < n; i++) {
            if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..")) {
                char sub[8192];
                snprintf(sub, sizeof sub, "%s/%s", path, list[i]->d_name);
                h = fnv(h, list[i]->d_name, strlen(list[i]->d_name));
                uint64_t s = hash_path(sub);
                h = fnv(h, &s, sizeof s);
            }
            free(list[i]);
        }
        free(list);
        return h;
    }
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    char buf[1 << 16];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) h = fnv(h, buf, k);
    fclose(f);
    return h;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert(fclose(f) == 0);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap + 1);
    while ((k = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += k) == cap) b = realloc(b, (cap *= 2) + 1);
    fclose(f);
    b[n] = 0;
    if (len) *len = n;
    return b;
}

/* Entries of dir whose name holds ".vkgpt2-" (a temporary); the first goes to *name. */
static int leftovers(const char *dir, char *name, size_t n)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".vkgpt2-")) {
            if (!k && name) snprintf(name, n, "%s", e->d_name);
            k++;
        }
    closedir(d);
    return k;
}

static void no_leftovers(const char *dir)
{
    char name[512] = "";
    int k = leftovers(dir, name, sizeof name);
    cr_assert(k == 0, "%d temporaries left in %s, e.g. %s", k, dir, name);
}

/* ---- running the commands ---- */

typedef struct proc {
    int code;        /* exit status, or 128 + signal */
    bool signaled;   /* killed by a signal */
    char *out, *err; /* stdout, stderr */
    double ms;       /* wall time */
} proc;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* How a child is run: extra environment, a file size limit, stdout to a path. */
typedef struct how {
    const char *env[4];    /* "NAME=VALUE" added to the environment */
    long fsize_limit;      /* RLIMIT_FSIZE bytes (0: none), with SIGXFSZ ignored */
    const char *stdout_to; /* e.g. /dev/full */
} how;

static pid_t spawn(const char *exe, const char *const *args, const how *h, const char *out, const char *err)
{
    size_t na = 0, ne = 0;
    while (args[na]) na++;
    while (environ[ne]) ne++;
    char **argv = calloc(na + 2, sizeof *argv), **envp = calloc(ne + 5, sizeof *envp);
    argv[0] = (char *)exe;
    for (size_t i = 0; i < na; i++) argv[i + 1] = (char *)args[i];
    size_t m = 0;
    for (size_t i = 0; i < ne; i++) envp[m++] = environ[i];
    for (int i = 0; h && i < 4 && h->env[i]; i++) envp[m++] = (char *)h->env[i];
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fo = open(h && h->stdout_to ? h->stdout_to : out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open("/dev/null", O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
        if (h && h->fsize_limit) {
            signal(SIGXFSZ, SIG_IGN); /* kept across exec: a write past the limit fails with EFBIG */
            struct rlimit rl = {(rlim_t)h->fsize_limit, (rlim_t)h->fsize_limit};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execve(exe, argv, envp);
        _exit(127);
    }
    free(argv);
    free(envp);
    return pid;
}

static proc finish(pid_t pid, const char *out, const char *err, double t0)
{
    int st;
    double deadline = now_ms() + 120e3;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            cr_assert_fail("the command hung");
        }
        usleep(2000);
    }
    proc p = {0};
    p.ms = now_ms() - t0;
    p.signaled = WIFSIGNALED(st);
    p.code = p.signaled ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    p.out = read_all(out, NULL);
    p.err = read_all(err, NULL);
    if (!p.out) p.out = calloc(1, 1);
    cr_assert(p.err);
    remove(out);
    remove(err);
    return p;
}

static proc run_how(const char *exe, const how *h, const char *const *args)
{
    double t0 = now_ms();
    pid_t pid = spawn(exe, args, h, "../.out", "../.err");
    return finish(pid, "../.out", "../.err", t0);
}

static void proc_free(proc *p)
{
    free(p->out);
    free(p->err);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define RUN(...) run_how(bin, NULL, ARGS(__VA_ARGS__))
#define RUN_HOW(h, ...) run_how(bin, h, ARGS(__VA_ARGS__))

static void expect_ok(proc *p, const char *what)
{
    cr_assert(!p->signaled && p->code == 0, "%s: exit %d\nstderr: %s", what, p->code, p->err);
    proc_free(p);
}

/* A refusal: exit 1 (no signal), nothing on stdout, one "vkgpt2..." line naming needle. */
static void expect_refused(proc *p, const char *what, const char *needle)
{
    cr_assert(!p->signaled, "%s: killed by signal %d\nstderr: %s", what, p->code - 128, p->err);
    cr_assert(p->code == 1, "%s: exit %d, expected 1\nstderr: %s", what, p->code, p->err);
    cr_assert(!p->out[0], "%s: stdout not empty: %s", what, p->out);
    size_t n = strlen(p->err), lines = 0;
    for (size_t i = 0; i < n; i++) lines += p->err[i] == '\n';
    cr_assert(lines == 1 && p->err[n - 1] == '\n' && !strncmp(p->err, "vkgpt2", 6),
              "%s: expected one line on stderr, got:\n%s", what, p->err);
    cr_assert(strstr(p->err, needle), "%s: stderr does not say '%s': %s", what, needle, p->err);
    proc_free(p);
}

static void synth(const char *out, const char *size)
{
    proc p = RUN("synth", "-o", out, "--size", size);
    expect_ok(&p, "synth");
}

/* ---- the output is the input ---- */

/* Runs cmd with its output replaced by each name for input (same path, ./path, a symlink, a hard
 * link), with and without --force: each is refused and the input is unchanged. */
static void refuse_aliases(const char *input, const char *const *pre, int npre, const char *const *post,
                           int npost)
{
    char dot[600], link_name[600], hard[600];
    snprintf(dot, sizeof dot, "./%s", input);
    snprintf(link_name, sizeof link_name, "link-%s", input);
    snprintf(hard, sizeof hard, "hard-%s", input);
    if (access(link_name, F_OK) != 0) cr_assert(symlink(input, link_name) == 0);
    if (access(hard, F_OK) != 0) cr_assert(link(input, hard) == 0);
    const char *outs[] = {input, dot, link_name, hard};
    uint64_t before = hash_path(input);
    for (int o = 0; o < 4; o++)
        for (int force = 0; force < 2; force++) {
            const char *args[32];
            int n = 0;
            for (int i = 0; i < npre; i++) args[n++] = pre[i];
            args[n++] = outs[o];
            for (int i = 0; i < npost; i++) args[n++] = post[i];
            if (force) args[n++] = "--force";
            args[n] = NULL;
            proc p = run_how(bin, NULL, args);
            char what[256];
            snprintf(what, sizeof what, "%s %s -> %s%s", pre[0], input, outs[o], force ? " --force" : "");
            expect_refused(&p, what, "is the input");
            cr_assert(hash_path(input) == before, "%s: the input changed", what);
        }
    no_leftovers(".");
}

Test(outputs, convert_refuses_its_input)
{
    synth("m.gguf", "2x64x4");
    refuse_aliases("m.gguf", ARGS("convert", "m.gguf"), 2, NULL, 0);
    /* a file inside an input Hugging Face directory, named by the directory or by config.json */
    synth("hf", "2x64x4");
    uint64_t before = hash_path("hf");
    proc p = RUN("convert", "hf", "hf/x.gguf", "--force");
    expect_refused(&p, "convert into the input dir", "inside the input directory");
    p = RUN("convert", "hf/config.json", "./hf/model.gguf");
    expect_refused(&p, "convert config.json into its dir", "inside the input directory");
    cr_assert(hash_path("hf") == before, "the input directory changed");
    no_leftovers("hf");
}

Test(outputs, quantize_refuses_its_input)
{
    synth("m.bin", "2x64x4");
    refuse_aliases("m.bin", ARGS("quantize", "m.bin"), 2, ARGS("q8_0"), 1);
    synth("hf", "2x64x4");
    uint64_t before = hash_path("hf");
    /* the case: the weights file of the input directory */
    proc p = RUN("quantize", "hf", "hf/model.safetensors", "q8_0", "--force");
    expect_refused(&p, "quantize over the input's weights", "inside the input directory");
    p = RUN("quantize", "hf/model.safetensors", "hf/q.bin", "q8_0");
    expect_refused(&p, "quantize into the input dir", "inside the input directory");
    cr_assert(mkdir("hf/sub", 0755) == 0);
    p = RUN("quantize", "hf", "hf/sub/q.bin", "q8_0");
    expect_refused(&p, "quantize into a subdirectory of the input", "inside the input directory");
    cr_assert(rmdir("hf/sub") == 0);
    cr_assert(hash_path("hf") == before, "the input directory changed");
}

Test(outputs, eval_and_trace_refuse_the_model)
{
    synth("m.gguf", "2x64x4");
    refuse_aliases("m.gguf", ARGS("eval", "-m", "m.gguf", "--ids", "1 2", "--backend", "cpu", "--logits"), 8,
                   NULL, 0);
    refuse_aliases("m.gguf", ARGS("-m", "m.gguf", "-n", "2", "--backend", "cpu", "--trace"), 7, NULL, 0);
    synth("hf", "2x64x4");
    uint64_t before = hash_path("hf");
    proc p = RUN("-m", "hf", "-n", "2", "--backend", "cpu", "--trace", "hf/t.json");
    expect_refused(&p, "--trace into the model dir", "inside the input directory");
    p = RUN("eval", "-m", "hf", "--ids", "1", "--backend", "cpu", "--logits", "hf/vocab.json", "--force");
    expect_refused(&p, "--logits over the model's vocab", "inside the input directory");
    cr_assert(hash_path("hf") == before);
}

Test(outputs, synth_refuses_its_vocabulary)
{
    /* a vocabulary directory (made from a synthetic model's files) */
    synth("src", "tiny");
    cr_assert(mkdir("voc", 0755) == 0 && mkdir("top", 0755) == 0);
    cr_assert(rename("src/vocab.json", "voc/vocab.json") == 0 &&
              rename("src/merges.txt", "voc/merges.txt") == 0);
    cr_assert(rename("voc", "top/voc") == 0);
    uint64_t before = hash_path("top");
    proc p = RUN("synth", "-o", "top/voc", "--vocab", "top/voc", "--force");
    expect_refused(&p, "synth over its vocabulary", "is the input");
    p = RUN("synth", "-o", "top", "--vocab", "top/voc", "--force");
    expect_refused(&p, "synth over the directory holding its vocabulary", "holds the input");
    p = RUN("synth", "-o", "top/voc/m.gguf", "--vocab", "top/voc");
    expect_refused(&p, "synth into its vocabulary", "inside the input directory");
    cr_assert(hash_path("top") == before);
    p = RUN("synth", "-o", "ok", "--vocab", "top/voc");
    expect_ok(&p, "synth beside its vocabulary");
}

/* ---- existing outputs and --force ---- */

/* cmd (NULL-terminated) against its existing output out: refused without --force and unchanged,
 * replaced with it. */
static void force_needed(const char *const *cmd, const char *out, const char *exe)
{
    uint64_t before = hash_path(out);
    cr_assert(before != 0, "%s does not exist", out);
    const char *args[40];
    int n = 0;
    while (cmd[n]) {
        args[n] = cmd[n];
        n++;
    }
    args[n] = NULL;
    proc p = run_how(exe, NULL, args);
    expect_refused(&p, cmd[0], "already exists (--force replaces it)");
    cr_assert(hash_path(out) == before, "%s: %s changed without --force", cmd[0], out);
    args[n] = "--force";
    args[n + 1] = NULL;
    p = run_how(exe, NULL, args);
    expect_ok(&p, "with --force");
    cr_assert(hash_path(out) != before, "%s: %s not replaced with --force", cmd[0], out);
    no_leftovers(".");
}

Test(outputs, existing_outputs_need_force)
{
    synth("m.gguf", "2x64x4");
    synth("hf", "tiny");
    write_file("old.gguf", "old bytes\n");
    write_file("old.bin", "old bytes\n");
    write_file("old.f32", "old bytes\n");
    write_file("old.json", "old bytes\n");
    force_needed(ARGS("synth", "-o", "old.gguf", "--size", "tiny"), "old.gguf", bin);
    force_needed(ARGS("synth", "-o", "hf", "--size", "2x64x4"), "hf", bin); /* a directory */
    write_file("old.gguf", "old bytes\n");
    force_needed(ARGS("convert", "m.gguf", "old.gguf"), "old.gguf", bin);
    force_needed(ARGS("quantize", "m.gguf", "old.bin", "q8_0"), "old.bin", bin);
    force_needed(ARGS("eval", "-m", "m.gguf", "--ids", "1 2", "--backend", "cpu", "--logits", "old.f32"),
                 "old.f32", bin);
    force_needed(ARGS("-m", "m.gguf", "-n", "2", "--backend", "cpu", "--trace", "old.json"), "old.json", bin);
    /* a file output over an HF model directory is allowed with --force; over a directory that is
     * more than a model never */
    cr_assert(mkdir("mine", 0755) == 0 && mkdir("mine/sub", 0755) == 0);
    write_file("mine/config.json", "{}\n");
    uint64_t before = hash_path("mine");
    proc p = RUN("synth", "-o", "mine", "--force");
    expect_refused(&p, "synth over a user's tree", "more than a model");
    cr_assert(rename("mine", "mine.gguf") == 0);
    p = RUN("convert", "m.gguf", "mine.gguf", "--force");
    expect_refused(&p, "convert over a user's tree", "more than a model");
    cr_assert(hash_path("mine.gguf") == before);
}

Test(outputs, kbench_dump_and_perfdoc_need_force)
{
    const char *root = getenv("VKGPT2_SOURCE_ROOT");
    cr_assert(root);
    char shader[4096];
    snprintf(shader, sizeof shader, "%s/tools/kbench/saxpy.comp", root);
    write_file("y.bin", "old bytes\n");
    force_needed(ARGS("kbench", shader, "--grid", "4", "--buffer", "4K:2.0", "--buffer", "4K:1.0", "--push",
                      "1024", "--push", "3f", "--repeat", "1", "--warmup", "0", "--dump", "1:y.bin"),
                 "y.bin", bin);
    uint64_t before = hash_path(shader);
    proc p = RUN("kbench", shader, "--grid", "4", "--buffer", "4K", "--dump", "0:y.bin");
    expect_refused(&p, "kbench --dump over a file", "y.bin: already exists");
    cr_assert(hash_path(shader) == before);
    /* perfdoc: charts need --force; an input is never an output */
    write_file("in.json",
               "{\"kind\": \"decode\", \"mode\": \"replay\", \"backend\": \"cpu\", \"threads\": 1, "
               "\"weight_type\": \"f32\", \"weights_bytes\": 1048576, "
               "\"decode_ms_per_token\": {\"median\": 2.0}}\n");
    cr_assert(mkdir("img", 0755) == 0);
    p = run_how(perfdoc, NULL, ARGS("--doc", "doc.md", "--img", "img", "in.json"));
    expect_ok(&p, "perfdoc");
    uint64_t chart = hash_path("img/toks_vs_size.svg");
    cr_assert(chart != 0);
    p = run_how(perfdoc, NULL, ARGS("--doc", "doc.md", "--img", "img", "in.json"));
    cr_assert(p.code == 1 && strstr(p.err, "toks_vs_size.svg: already exists"), "perfdoc again: %s", p.err);
    proc_free(&p);
    p = run_how(perfdoc, NULL, ARGS("--force", "--doc", "doc.md", "--img", "img", "in.json"));
    expect_ok(&p, "perfdoc --force");
    uint64_t in = hash_path("in.json");
    p = run_how(perfdoc, NULL, ARGS("--force", "--doc", "in.json", "--img", "img", "in.json"));
    cr_assert(p.code == 1 && strstr(p.err, "is the input"), "perfdoc over its input: %s", p.err);
    proc_free(&p);
    cr_assert(hash_path("in.json") == in);
    no_leftovers(".");
    no_leftovers("img");
}

/* ---- synth picks the format from the name ---- */

static void magic_of(const char *path, char m[5])
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s not written", path);
    cr_assert(fread(m, 1, 4, f) == 4);
    m[4] = 0;
    fclose(f);
}

Test(outputs, synth_format_follows_the_name)
{
    char m[5];
    synth("x.gguf", "tiny");
    magic_of("x.gguf", m);
    cr_assert_str_eq(m, "GGUF");
    synth("x.bin", "tiny");
    magic_of("x.bin", m);
    cr_assert(!memcmp(m, "lmgg", 4), "x.bin is no ggml file");
    synth("x", "tiny");
    struct stat st;
    cr_assert(stat("x/config.json", &st) == 0, "x is no Hugging Face directory");
    proc p = RUN("synth", "-o", "y.gguf", "--format", "hf");
    expect_refused(&p, "--format hf for y.gguf", "y.gguf");
    p = RUN("synth", "-o", "y.bin", "--format", "gguf");
    expect_refused(&p, "--format gguf for y.bin", "y.bin");
    cr_assert(access("y.gguf", F_OK) != 0 && access("y.bin", F_OK) != 0, "a refused synth wrote something");
    p = RUN("synth", "-o", "y.model", "--format", "ggml");
    expect_ok(&p, "--format ggml for another name");
    magic_of("y.model", m);
    cr_assert(!memcmp(m, "lmgg", 4));
}

/* ---- unwritable outputs fail before any work ---- */

Test(outputs, unwritable_outputs_fail_first)
{
    /* the model does not exist: an error naming the output proves the output was checked first */
    proc p = RUN("-m", "no-model", "-n", "2", "--trace", "/nonexistent/t.json");
    expect_refused(&p, "--trace into a missing directory", "--trace /nonexistent/t.json");
    p = RUN("eval", "-m", "no-model", "--ids", "1", "--logits", "/nonexistent/x.f32");
    expect_refused(&p, "--logits into a missing directory", "--logits /nonexistent/x.f32");
    p = RUN("eval", "-m", "no-model", "--ids", "1", "--logits", "x.f32", "--trace", "nodir/t.json");
    expect_refused(&p, "eval --trace into a missing directory", "nodir/t.json");
    p = RUN("convert", "no-model", "/nonexistent/x.gguf");
    expect_refused(&p, "convert into a missing directory", "/nonexistent/x.gguf");
    p = RUN("quantize", "no-model", "/nonexistent/x.bin", "q8_0");
    expect_refused(&p, "quantize into a missing directory", "/nonexistent/x.bin");
    /* synth of a 124M model takes seconds: refused at once */
    p = RUN("synth", "-o", "/nonexistent/big", "--size", "124M");
    cr_assert(p.ms < 1500, "synth took %.0f ms to report the missing directory", p.ms);
    expect_refused(&p, "synth into a missing directory", "/nonexistent");
    write_file("plain", "x");
    p = RUN("synth", "-o", "plain/m.gguf", "--size", "124M");
    expect_refused(&p, "synth below a file", "not a directory");
    if (geteuid() != 0) { /* root writes anywhere */
        cr_assert(mkdir("ro", 0555) == 0);
        p = RUN("synth", "-o", "ro/m.gguf", "--size", "124M");
        expect_refused(&p, "synth into a read-only directory", "Permission denied");
    }
    no_leftovers(".");
}

/* ---- failed writes ---- */

Test(outputs, failed_writes_keep_the_old_file)
{
    synth("old.bin", "tiny");
    synth("oldhf", "tiny");
    uint64_t f0 = hash_path("old.bin"), d0 = hash_path("oldhf");
    static const char *const modes[] = {"VKGPT2_NO_TMPFILE=0", "VKGPT2_NO_TMPFILE=1"};
    for (int m = 0; m < 2; m++) {
        how h = {.env = {modes[m]}, .fsize_limit = 1 << 20}; /* the new models are ~4 MB */
        proc p = RUN_HOW(&h, "synth", "-o", "old.bin", "--size", "4x128x4", "--force");
        expect_refused(&p, modes[m], "File too large");
        cr_assert(hash_path("old.bin") == f0, "%s: the old file changed", modes[m]);
        p = RUN_HOW(&h, "synth", "-o", "oldhf", "--size", "4x128x4", "--force");
        expect_refused(&p, modes[m], "File too large");
        cr_assert(hash_path("oldhf") == d0, "%s: the old directory changed", modes[m]);
        p = RUN_HOW(&h, "convert", "oldhf", "new.gguf", "--force");
        cr_assert(p.code == 0, "%s: a small convert failed: %s", modes[m], p.err);
        proc_free(&p);
        p = RUN_HOW(&h, "quantize", "old.bin", "new.gguf", "q8_0", "--force");
        cr_assert(p.code == 0, "%s: %s", modes[m], p.err);
        proc_free(&p);
        no_leftovers(".");
        no_leftovers("oldhf");
    }
    /* a device is written as it is, and its error named */
    proc p = RUN("eval", "-m", "old.bin", "--ids", "1 2", "--backend", "cpu", "--logits", "/dev/full");
    expect_refused(&p, "--logits /dev/full", "No space left on device");
    p = RUN("eval", "-m", "old.bin", "--ids", "1 2", "--backend", "cpu", "--logits", "/dev/null");
    expect_ok(&p, "--logits /dev/null");
}

/* ---- killed writers ---- */

/* Whether pid has a file open in tmp_dir of at least min bytes: its output being written. With
 * O_TMPFILE the link reads "<dir>/#<inode> (deleted)"; a named temporary has ".vkgpt2-". */
static bool writing(pid_t pid, long min)
{
    char fdd[64];
    snprintf(fdd, sizeof fdd, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(fdd);
    if (!d) return false;
    bool hit = false;
    struct dirent *e;
    while (!hit && (e = readdir(d))) {
        char p[512], t[4096];
        snprintf(p, sizeof p, "%s/%s", fdd, e->d_name);
        ssize_t n = readlink(p, t, sizeof t - 1);
        if (n <= 0) continue;
        t[n] = 0;
        struct stat st;
        if (!strncmp(t, tmp_dir, strlen(tmp_dir)) && (strstr(t, "(deleted)") || strstr(t, ".vkgpt2-")) &&
            stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= min)
            hit = true;
    }
    closedir(d);
    return hit;
}

/* Starts a big synth over an old output, sends sig once the output is being written (4 MB in),
 * and returns the result. */
static proc kill_mid_write(const char *out, const char *env, int sig)
{
    how h = {.env = {env}};
    double t0 = now_ms();
    pid_t pid =
        spawn(bin, ARGS("synth", "-o", out, "--size", "8x512x8", "--force"), &h, "../.out", "../.err");
    bool seen = false;
    for (int i = 0; i < 60000 && !seen; i++) {
        seen = writing(pid, 4 << 20);
        if (!seen) {
            if (waitpid(pid, NULL, WNOHANG) == pid)
                cr_assert_fail("synth ended before it was caught writing");
            usleep(500);
        }
    }
    cr_assert(seen, "synth was never caught writing");
    kill(pid, sig);
    return finish(pid, "../.out", "../.err", t0);
}

Test(outputs, killed_writers_leave_the_old_file)
{
    synth("big.bin", "tiny");
    synth("bighf", "tiny");
    uint64_t f0 = hash_path("big.bin"), d0 = hash_path("bighf");
    /* SIGKILL of a file writer: the O_TMPFILE temporary has no name, nothing is left */
    proc p = kill_mid_write("big.bin", "VKGPT2_NO_TMPFILE=0", SIGKILL);
    cr_assert(p.signaled && p.code == 128 + SIGKILL, "exit %d", p.code);
    proc_free(&p);
    cr_assert(hash_path("big.bin") == f0, "the old file changed");
    no_leftovers(".");
    /* SIGINT with named temporaries (no O_TMPFILE): the handler removes them */
    p = kill_mid_write("big.bin", "VKGPT2_NO_TMPFILE=1", SIGINT);
    cr_assert(p.signaled && p.code == 128 + SIGINT, "exit %d: %s", p.code, p.err);
    proc_free(&p);
    cr_assert(hash_path("big.bin") == f0);
    no_leftovers(".");
    /* SIGINT of a directory writer: the temporary directory goes */
    p = kill_mid_write("bighf", "VKGPT2_NO_TMPFILE=0", SIGINT);
    cr_assert(p.signaled && p.code == 128 + SIGINT, "exit %d: %s", p.code, p.err);
    proc_free(&p);
    cr_assert(hash_path("bighf") == d0, "the old directory changed");
    no_leftovers(".");
    /* SIGKILL of a directory writer leaves its temporary directory (nothing can remove it then);
     * the next write of that name removes it */
    p = kill_mid_write("bighf", "VKGPT2_NO_TMPFILE=0", SIGKILL);
    proc_free(&p);
    cr_assert(hash_path("bighf") == d0);
    cr_assert(leftovers(".", NULL, 0) == 1, "a killed directory writer left no temporary (was it caught?)");
    p = RUN("synth", "-o", "bighf", "--size", "tiny", "--seed", "5", "--force");
    expect_ok(&p, "synth after a killed one");
    no_leftovers(".");
}

/* ---- progress ---- */

/* Runs args with stdout and stderr on one pseudo-terminal; returns everything it printed. */
static char *run_on_pty(const char *const *args)
{
    int mfd = posix_openpt(O_RDWR | O_NOCTTY);
    cr_assert(mfd >= 0 && grantpt(mfd) == 0 && unlockpt(mfd) == 0);
    char *sname = ptsname(mfd);
    cr_assert(sname);
    size_t na = 0, ne = 0;
    while (args[na]) na++;
    while (environ[ne]) ne++;
    char **argv = calloc(na + 2, sizeof *argv), **envp = calloc(ne + 2, sizeof *envp);
    argv[0] = bin;
    for (size_t i = 0; i < na; i++) argv[i + 1] = (char *)args[i];
    for (size_t i = 0; i < ne; i++) envp[i] = environ[i];
    envp[ne] = "VKGPT2_PROGRESS_DELAY_MS=0"; /* every step shows a line, however short */
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        setsid();
        int s = open(sname, O_RDWR);
        if (s < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0) _exit(126);
        execve(bin, argv, envp);
        _exit(127);
    }
    free(argv);
    free(envp);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        struct pollfd pf = {mfd, POLLIN, 0};
        int r = poll(&pf, 1, 60000);
        cr_assert(r > 0, "the command hung on the terminal");
        ssize_t k = read(mfd, buf + n, cap - n);
        if (k <= 0) break; /* EIO: the child closed the terminal */
        if ((n += (size_t)k) == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    buf[n] = 0;
    int st;
    waitpid(pid, &st, 0);
    close(mfd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d: %s", st, buf);
    return buf;
}

/* Every progress line ("\r\033[Kvkgpt2: STEP ...") is cleared ("\r\033[K") before the next newline:
 * nothing else is ever printed on it. Returns the number of progress lines drawn. */
static int check_progress_lines(const char *s, const char *what)
{
    static const char clr[] = "\r\033[K";
    int drawn = 0;
    bool shown = false;
    for (const char *p = s; *p; p++) {
        if (!strncmp(p, clr, 4)) {
            shown = !strncmp(p + 4, "vkgpt2: loading ", 16) || !strncmp(p + 4, "vkgpt2: writing ", 16) ||
                !strncmp(p + 4, "vkgpt2: quantizing ", 19) || !strncmp(p + 4, "vkgpt2: synthesizing ", 21);
            drawn += shown;
            p += 3;
        } else if (*p == '\n') {
            cr_assert(!shown, "%s: text printed on a progress line:\n%.*s", what,
                      (int)(p - s + 1 > 400 ? 400 : p - s + 1), p - s > 400 ? p - 400 : s);
        }
    }
    cr_assert(!shown, "%s: a progress line left at the end", what);
    return drawn;
}

Test(outputs, progress_on_a_terminal_only)
{
    synth("m.bin", "4x256x4");
    char *t = run_on_pty(ARGS("quantize", "m.bin", "q.bin", "q8_0"));
    int n = check_progress_lines(t, "quantize");
    cr_assert(n > 0, "no progress line on a terminal:\n%s", t);
    cr_assert(strstr(t, "vkgpt2: quantizing ") && strstr(t, "vkgpt2: writing q.bin"), "steps missing:\n%s",
              t);
    cr_assert(strstr(t, "model/h0/mlp/c_fc/w"), "no report table:\n%s", t);
    free(t);
    t = run_on_pty(ARGS("synth", "-o", "s.gguf", "--size", "4x256x4"));
    cr_assert(check_progress_lines(t, "synth") > 0 && strstr(t, "vkgpt2: synthesizing ") &&
                  strstr(t, "wrote"),
              "synth: %s", t);
    free(t);
    t = run_on_pty(ARGS("convert", "m.bin", "c.gguf"));
    cr_assert(check_progress_lines(t, "convert") > 0 && strstr(t, "vkgpt2: loading m.bin"), "convert: %s", t);
    free(t);
    /* stderr a file: no progress at all */
    how h = {.env = {"VKGPT2_PROGRESS_DELAY_MS=0"}};
    proc p = RUN_HOW(&h, "quantize", "m.bin", "q2.bin", "q8_0");
    cr_assert(p.code == 0 && !strchr(p.err, '\r') && !strstr(p.err, "\033["), "progress in a file: %s",
              p.err);
    cr_assert(!strchr(p.out, '\r'), "progress in stdout: %s", p.out);
    proc_free(&p);
}

/* ---- the library: vkg_output ---- */

Test(outputs, library_output_commit_and_abort)
{
    char err[512];
    write_file("a.txt", "old\n");
    uint64_t old = hash_path("a.txt");
    cr_assert(vkg_output_open("a.txt", 0, err, sizeof err) == NULL);
    cr_assert(strstr(err, "a.txt") && strstr(err, "exists"), "%s", err);
    cr_assert_eq(vkg_output_check("a.txt", 0, NULL, err, sizeof err), VKG_OUT_EXISTS);
    vkg_output *o = vkg_output_open("a.txt", VKG_OUT_FORCE, err, sizeof err);
    cr_assert(o, "%s", err);
    fputs("new, but dropped\n", vkg_output_file(o));
    vkg_output_abort(o);
    cr_assert(hash_path("a.txt") == old, "abort changed the file");
    no_leftovers(".");
    o = vkg_output_open("a.txt", VKG_OUT_FORCE, err, sizeof err);
    cr_assert(o, "%s", err);
    fputs("new\n", vkg_output_file(o));
    cr_assert(hash_path("a.txt") == old, "the file changed before the commit");
    cr_assert_eq(vkg_output_commit(o, err, sizeof err), 0, "%s", err);
    char *s = read_all("a.txt", NULL);
    cr_assert_str_eq(s, "new\n");
    free(s);
    /* a file that appears while one is written without force is not replaced at the commit */
    o = vkg_output_open("b.txt", 0, err, sizeof err);
    cr_assert(o, "%s", err);
    fputs("mine\n", vkg_output_file(o));
    write_file("b.txt", "theirs\n");
    cr_assert_eq(vkg_output_commit(o, err, sizeof err), VKG_OUT_EXISTS, "%s", err);
    s = read_all("b.txt", NULL);
    cr_assert_str_eq(s, "theirs\n");
    free(s);
    no_leftovers(".");
    /* inputs by inode */
    const char *in[] = {"a.txt", NULL};
    cr_assert(symlink("a.txt", "l.txt") == 0);
    cr_assert_eq(vkg_output_check("./l.txt", VKG_OUT_FORCE, in, err, sizeof err), -1);
    cr_assert(strstr(err, "is the input"), "%s", err);
}
