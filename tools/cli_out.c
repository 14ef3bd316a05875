/* cli_out.c - progress lines, signal clean-up and output errors of the vkgpt2 command (cli_out.h). */
#include "cli_out.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vkgpt2.h"

/* ---- progress ---- */

static struct {
    char step[32], name[256]; /* the step under way */
    double t0;                /* when it started (ms) */
    double drawn;             /* when its line was last drawn (ms) */
    bool active;              /* a step is under way */
} cur;
static volatile sig_atomic_t line_shown; /* a progress line is on the terminal */
static double delay_ms = 1000;           /* a step shows a line after this long */

void cli_progress_clear(void)
{
    if (!line_shown) return;
    fflush(stderr);
    if (write(2, "\r\033[K", 4) < 0) { /* nothing to do: the terminal is gone */
    }
    line_shown = 0;
}

static void on_progress(void *user, const char *step, const char *name, uint64_t done, uint64_t total)
{
    (void)user;
    double now = vkg_now_ms();
    if (!cur.active || strcmp(cur.step, step) || strcmp(cur.name, name)) {
        cli_progress_clear();
        snprintf(cur.step, sizeof cur.step, "%s", step);
        snprintf(cur.name, sizeof cur.name, "%s", name);
        cur.t0 = now;
        cur.drawn = 0;
        cur.active = true;
    }
    if (done >= total) { /* the step is over */
        cli_progress_clear();
        cur.active = false;
        return;
    }
    if (now - cur.t0 < delay_ms || now - cur.drawn < 100) return;
    cur.drawn = now;
    size_t nl = strlen(name);
    const char *shown = nl > 48 ? name + nl - 45 : name;
    fprintf(stderr, "\r\033[Kvkgpt2: %s %s%s %3d%%", step, nl > 48 ? "..." : "", shown,
            (int)(100.0 * (double)done / (double)total));
    fflush(stderr);
    line_shown = 1;
}

void cli_progress_start(void)
{
    if (!isatty(2)) return;
    const char *d = getenv("VKGPT2_PROGRESS_DELAY_MS");
    if (d && *d) delay_ms = atof(d);
    vkg_set_progress(on_progress, NULL);
    atexit(cli_progress_clear);
}

/* ---- signals ---- */

static void on_fatal_signal(int sig)
{
    vkg_output_cleanup();
    if (line_shown && write(2, "\r\033[K", 4) < 0) { /* the terminal is gone */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_cleanup_on_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* ---- errors ---- */

void cli_output_error(int rc, const char *flag, const char *path, const char *err)
{
    cli_progress_clear();
    if (rc == VKG_OUT_EXISTS)
        fprintf(stderr, "vkgpt2: %s%s%s: already exists (--force replaces it)\n", flag ? flag : "",
                flag ? " " : "", path);
    else
        fprintf(stderr, "vkgpt2: %s%s%s\n", flag ? flag : "", flag ? " " : "", err);
}

int cli_check_output(const char *flag, const char *path, unsigned flags, const char *const *inputs)
{
    char err[1024];
    int rc = vkg_output_check(path, flags, inputs, err, sizeof err);
    if (rc == 0) return 0;
    cli_output_error(rc, flag, path, err);
    return -1;
}
