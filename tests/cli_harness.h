/* cli_harness.h - running the built vkgpt2 as a child process for the CLI tests (one include per
 * test file): a temporary working directory per test, stdin from bytes, stdout and stderr captured
 * (or stdout on /dev/full, a pipe without reader, stderr merged into stdout), a timeout, another
 * binary of the build (run_exe), the error contract (non-zero exit, empty stdout, one "vkgpt2: " line), synthetic models and JSON helpers. */
#ifndef VKG_CLI_HARNESS_H
#define VKG_CLI_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "tmpdir.h"

extern char **environ;

/* Not every test file uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- temporary directory (one per test, the working directory of the test and its children) ---- */

static char bin_path[4096];

static void setup(void)
{
    build_binary(bin_path, sizeof bin_path, "tools/vkgpt2");
    tmpdir_enter("vkg-cli");
}

static void teardown(void) { tmpdir_leave(); }

/* ---- files ---- */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    cr_assert(fwrite(data, 1, len, f) == len);
    cr_assert(fclose(f) == 0);
}

/* Whole file, NUL-terminated; NULL if it cannot be opened. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    cr_assert(buf);
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        buf = realloc(buf, (cap *= 2) + 1);
        cr_assert(buf);
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* ---- running the command ---- */

typedef struct proc {
    bool timed_out;
    bool signaled;
    int sig;  /* when signaled */
    int code; /* exit status otherwise */
    char *out, *err;
    size_t out_len, err_len;
} proc;

#define RUN_TIMEOUT_S 60
/* The binary run_full starts (NULL: the built vkgpt2) and how long it may take: a test file that
 * runs another binary, or slower commands, sets them. */
static const char *run_exe;
static int run_timeout_s = RUN_TIMEOUT_S;

/* Runs vkgpt2 with args (NULL-terminated, argv[0] excluded). in: stdin bytes (NULL: empty);
 * env: "NAME=VALUE" entries (NULL-terminated, or NULL) that replace or add to the environment. */
/* When set, the child's stdout goes there (e.g. /dev/full) instead of a file that is read back. */
static const char *stdout_to;
/* When set, stdout is the write end of a pipe whose reader is already gone (like `| head` that
 * has exited). */
static bool stdout_closed_pipe;
/* When set, stderr goes into the same file as stdout (2>&1); p.err is then empty. */
static bool merge_stderr;

static proc run_full(const char *in, size_t in_len, const char *const *env, const char *const *args)
{
    static int seq;
    char in_path[64], out_path[64], err_path[64];
    int k = seq++;
    snprintf(in_path, sizeof in_path, ".stdin.%d", k);
    snprintf(out_path, sizeof out_path, ".stdout.%d", k);
    snprintf(err_path, sizeof err_path, ".stderr.%d", k);
    write_file(in_path, in ? in : "", in ? in_len : 0);

    /* argv and envp are built before fork: the child only calls async-signal-safe functions. */
    size_t na = 0, ne = 0, nx = 0;
    while (args[na]) na++;
    while (environ[ne]) ne++;
    while (env && env[nx]) nx++;
    char **argv = calloc(na + 2, sizeof *argv);
    char **envp = calloc(ne + nx + 1, sizeof *envp);
    cr_assert(argv && envp);
    argv[0] = run_exe ? (char *)run_exe : bin_path;
    for (size_t i = 0; i < na; i++) argv[i + 1] = (char *)args[i];
    size_t m = 0;
    for (size_t i = 0; i < ne; i++) {
        bool replaced = false;
        for (size_t j = 0; j < nx && !replaced; j++) {
            size_t klen = strcspn(env[j], "=") + 1;
            replaced = !strncmp(environ[i], env[j], klen);
        }
        if (!replaced) envp[m++] = environ[i];
    }
    for (size_t j = 0; j < nx; j++) envp[m++] = (char *)env[j];

    int pipe_fd[2] = {-1, -1};
    if (stdout_closed_pipe) {
        cr_assert(pipe(pipe_fd) == 0);
        close(pipe_fd[0]); /* no reader: every write gets EPIPE */
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fi = open(in_path, O_RDONLY);
        int fo = stdout_closed_pipe ? pipe_fd[1]
            : stdout_to             ? open(stdout_to, O_WRONLY)
                                    : open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = merge_stderr ? dup(fo) : open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fi < 0 || fo < 0 || fe < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
        close(fi);
        close(fo);
        close(fe);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    free(argv);
    free(envp);
    if (pipe_fd[1] >= 0) close(pipe_fd[1]);

    proc p = {0};
    int status = 0;
    struct timespec t0, t, nap = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        cr_assert(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > run_timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            p.timed_out = true;
            break;
        }
        nanosleep(&nap, NULL);
    }
    if (WIFSIGNALED(status)) {
        p.signaled = true;
        p.sig = WTERMSIG(status);
    } else {
        p.code = WEXITSTATUS(status);
    }
    p.out = stdout_to || stdout_closed_pipe ? calloc(1, 1) : read_file(out_path, &p.out_len);
    p.err = merge_stderr ? calloc(1, 1) : read_file(err_path, &p.err_len);
    cr_assert(p.out && p.err);
    remove(in_path);
    remove(out_path);
    remove(err_path);
    return p;
}

static void proc_free(proc *p)
{
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define RUN(...) run_full(NULL, 0, NULL, ARGS(__VA_ARGS__))
#define RUN_ENV(env, ...) run_full(NULL, 0, env, ARGS(__VA_ARGS__))
#define RUN_IN(in, ...) run_full(in, strlen(in), NULL, ARGS(__VA_ARGS__))

/* Never a signal (a crash), never a hang. */
static void no_crash(const proc *p, const char *what)
{
    cr_assert(!p->timed_out, "%s: timed out after %d s\nstderr: %s", what, run_timeout_s, p->err);
    cr_assert(!p->signaled, "%s: killed by signal %d (%s)\nstderr: %s", what, p->sig, strsignal(p->sig),
              p->err);
}

static void expect_ok(const proc *p, const char *what)
{
    no_crash(p, what);
    cr_assert(p->code == 0, "%s: exit %d\nstderr: %s", what, p->code, p->err);
}

static size_t count_lines(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += s[i] == '\n';
    return n;
}

/* Error contract: non-zero exit, empty stdout, one "vkgpt2: ..." line on stderr containing needle. */
static void expect_error(const proc *p, const char *what, const char *needle)
{
    no_crash(p, what);
    cr_assert(p->code != 0, "%s: exit 0, expected an error\nstdout: %s\nstderr: %s", what, p->out, p->err);
    cr_assert(p->out_len == 0, "%s: stdout not empty on error: '%s'", what, p->out);
    cr_assert(p->err_len > 0 && p->err[p->err_len - 1] == '\n' && count_lines(p->err, p->err_len) == 1,
              "%s: expected exactly one line on stderr, got:\n%s", what, p->err);
    cr_assert(!strncmp(p->err, "vkgpt2: ", 8), "%s: stderr does not start with 'vkgpt2: ': %s", what, p->err);
    if (needle)
        cr_assert(strstr(p->err, needle), "%s: stderr does not mention '%s': %s", what, needle, p->err);
}

/* ---- models ---- */

static void synth(const char *out, const char *size, const char *format, const char *type, const char *seed)
{
    /* --force: some tests make a model of the same name again, of another type */
    proc p = RUN("synth", "-o", out, "--size", size, "--format", format, "--type", type, "--seed", seed,
                 "--force");
    expect_ok(&p, "synth");
    proc_free(&p);
}

static void synth_tiny(void) { synth("tiny", "tiny", "hf", "f32", "1"); }

/* The real GPT-2 vocabulary (tools/fetch-vocab.sh), or NULL when it has not been fetched. */
static const char *real_vocab_dir(void)
{
    static char dir[4096];
    const char *src = getenv("VKGPT2_SOURCE_ROOT");
    if (!src) return NULL;
    snprintf(dir, sizeof dir, "%s/data/gpt2-vocab", src);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/encoder.json", dir);
    if (access(probe, R_OK) == 0) return dir;
    snprintf(probe, sizeof probe, "%s/vocab.json", dir);
    return access(probe, R_OK) == 0 ? dir : NULL;
}

/* ---- JSON ---- */

static json_doc *parse_json(const proc *p)
{
    char err[256];
    json_doc *d = json_parse(p->out, p->out_len, err, sizeof err);
    cr_assert(d, "--json output does not parse: %s\n%s", err, p->out);
    cr_assert(json_root(d)->type == JSON_OBJECT);
    return d;
}

static const json_value *jfield(const json_value *v, const char *key, json_type type)
{
    const json_value *f = json_get(v, key);
    cr_assert(f, "JSON: no member '%s'", key);
    cr_assert(f->type == type, "JSON: member '%s' has type %d, expected %d", key, f->type, type);
    return f;
}

static int64_t jint(const json_value *v, const char *key)
{
    int64_t n;
    cr_assert(json_as_int(jfield(v, key, JSON_NUMBER), &n), "JSON: '%s' is not an integer", key);
    return n;
}

static double jnum(const json_value *v, const char *key)
{
    double d;
    cr_assert(json_as_num(jfield(v, key, JSON_NUMBER), &d));
    return d;
}

#endif
