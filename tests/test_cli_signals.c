/* test_cli_signals.c - the vkgpt2 command under signals: Ctrl-C (SIGINT) during generation stops
 * at the next token with the text so far, the timings and exit status 130; a reader of stdout that
 * goes away (EPIPE; SIGPIPE is ignored) ends the run quietly with status 141 and no error message.
 *
 * The binary ($VKGPT2_BUILD_ROOT/tools/vkgpt2) runs as a child with stdout on a pipe this test
 * reads; the model is a synthetic 8x256x4 GPT-2 (n_ctx 1024) on the CPU with one thread, so a
 * generation of 1000 tokens lasts seconds and the signal always lands in the middle of it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"
#include "vkgpt2.h"

static char dir[256], model[300], bin[4096], err_path[300];

static void setup(void)
{
    build_binary(bin, sizeof bin, "tools/vkgpt2");
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vkg-sig-XXXXXX", t && *t ? t : "/tmp");
    cr_assert(mkdtemp(dir));
    snprintf(model, sizeof model, "%s/m", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    char err[512];
    vkg_synth_params sp = {.size = "8x256x4", .format = "hf", .type = "f32", .seed = 3};
    cr_assert(vkg_synth(model, &sp, 0, err, sizeof err) == 0, "%s", err);
}

static void teardown(void) { rm_tree(dir); }

TestSuite(signals, .init = setup, .fini = teardown, .timeout = 120);

#define PROMPT "Hello"

/* Starts vkgpt2 generating 1000 tokens; *out_fd reads its stdout; stderr goes to err_path. */
static pid_t start(int *out_fd)
{
    int p[2];
    cr_assert(pipe(p) == 0);
    char *const argv[] = {bin,         "-m",  model, "-p", PROMPT, "-n", "1000", "--ignore-eos",
                          "--backend", "cpu", "-t",  "1",  NULL};
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (e < 0 || dup2(p[1], 1) < 0 || dup2(e, 2) < 0) _exit(127);
        close(p[0]);
        close(p[1]);
        signal(SIGPIPE, SIG_DFL); /* as a shell would start it */
        execv(bin, argv);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

/* Reads from fd until more than want bytes arrived (or EOF / 60 s); returns the count. */
static size_t read_until(int fd, char *buf, size_t cap, size_t want)
{
    size_t n = 0;
    time_t t0 = time(NULL);
    while (n <= want && n < cap && time(NULL) - t0 < 60) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 1000) <= 0) continue;
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    return n;
}

static int wait_exit(pid_t pid, bool *signaled)
{
    int st;
    time_t t0 = time(NULL);
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (time(NULL) - t0 > 60) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            cr_assert_fail("vkgpt2 did not stop within 60 s");
        }
        usleep(10000);
    }
    *signaled = WIFSIGNALED(st);
    return WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

Test(signals, sigint_stops_with_text_timings_and_130)
{
    int fd;
    pid_t pid = start(&fd);
    static char out[1 << 16];
    size_t n = read_until(fd, out, sizeof out, strlen(PROMPT) + 2); /* the prompt and some text */
    cr_assert(n > strlen(PROMPT), "no generated text before the signal (%zu bytes)", n);
    cr_assert(kill(pid, SIGINT) == 0);
    for (ssize_t r; (r = read(fd, out + n, sizeof out - 1 - n)) > 0;) n += (size_t)r;
    close(fd);
    out[n] = 0;
    bool sig;
    int code = wait_exit(pid, &sig);
    const char *err = slurp(err_path);
    cr_assert(!sig, "killed by signal %d; stderr:\n%s", code, err);
    cr_assert(code == 130, "exit status %d, expected 130; stderr:\n%s", code, err);
    cr_assert(!strncmp(out, PROMPT, strlen(PROMPT)), "stdout does not start with the prompt: %s", out);
    cr_assert(n > strlen(PROMPT) + 1 && out[n - 1] == '\n', "the text so far, ended by a newline");
    cr_assert(strstr(err, "total time") && strstr(err, "decode"), "no timings on stderr:\n%s", err);
    cr_assert(strstr(err, "interrupted after"), "no interruption notice:\n%s", err);
    /* It stopped early: far fewer than 1000 tokens' worth of decode. */
    const char *d = strstr(err, "interrupted after ");
    int toks = atoi(d + strlen("interrupted after "));
    cr_assert(toks >= 1 && toks < 1000, "%d tokens", toks);
}

Test(signals, closed_reader_ends_quietly)
{
    int fd;
    pid_t pid = start(&fd);
    char out[256];
    size_t n = read_until(fd, out, sizeof out, strlen(PROMPT) + 2);
    cr_assert(n > strlen(PROMPT));
    close(fd); /* the reader goes away, like `vkgpt2 ... | head -c 10` */
    bool sig;
    int code = wait_exit(pid, &sig);
    const char *err = slurp(err_path);
    cr_assert(!sig, "killed by signal %d (SIGPIPE not ignored?); stderr:\n%s", code, err);
    cr_assert(code == 141, "exit status %d, expected 141; stderr:\n%s", code, err);
    cr_assert(!strstr(err, "failed") && !strstr(err, "error") && !strstr(err, "Broken pipe") &&
                  !strstr(err, "stdout") && !strstr(err, "total time"),
              "messages on stderr:\n%s", err);
}

Test(signals, second_sigint_exits_at_once)
{
    int fd;
    pid_t pid = start(&fd);
    char out[256];
    size_t n = read_until(fd, out, sizeof out, strlen(PROMPT) + 2);
    cr_assert(n > strlen(PROMPT));
    kill(pid, SIGINT);
    kill(pid, SIGINT);
    bool sig;
    int code = wait_exit(pid, &sig);
    close(fd);
    cr_assert(!sig && code == 130, "status %d (signaled %d)", code, sig);
}
