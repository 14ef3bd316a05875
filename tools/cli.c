/* cli.c - see cli.h. */
#include "cli.h"
#include "core/file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_int(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || (errno && errno != ERANGE)) {
        fprintf(stderr, "vkgpt2: %s: '%s' is not an integer\n", flag, s);
        return -1;
    }
    if (errno == ERANGE) { /* digits, but more of them than a long holds */
        fprintf(stderr, "vkgpt2: %s: %s is out of range [%ld, %ld]\n", flag, s, lo, hi);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "vkgpt2: %s: %ld is out of range [%ld, %ld]\n", flag, v, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Parses s as an integer of any size: 1 and the value in *out when it fits in uint64_t, -1 when
 * it is negative, 2 when it is too large, 0 when it is not an integer at all. */
static int parse_u64(const char *s, uint64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    if (!*p) return 0;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return 0;
    if (neg) return -1;
    errno = 0;
    unsigned long long v = strtoull(p, NULL, 10);
    if (errno == ERANGE) return 2;
    *out = v;
    return 1;
}

int cli_u64(const char *flag, const char *s, uint64_t *out)
{
    int r = parse_u64(s, out);
    if (r == 1) return 0;
    if (r == 0)
        fprintf(stderr, "vkgpt2: %s: '%s' is not an integer\n", flag, s);
    else
        fprintf(stderr, "vkgpt2: %s: %s is out of range [0, %llu]\n", flag, s,
                (unsigned long long)UINT64_MAX);
    return -1;
}

int cli_seed(const char *flag, const char *s, uint64_t *out, bool *random)
{
    int r = parse_u64(s, out);
    *random = r == -1;
    if (r == 1 || r == -1) return 0;
    if (r == 0)
        fprintf(stderr, "vkgpt2: %s: '%s' is not an integer\n", flag, s);
    else
        fprintf(stderr, "vkgpt2: %s: %s is out of range [0, %llu] (negative: a random seed)\n", flag, s,
                (unsigned long long)UINT64_MAX);
    return -1;
}

uint64_t cli_random_seed(void)
{
    uint64_t v = 0;
    /* getrandom never fails for 8 bytes once the pool is initialised, but a seccomp filter or an
     * old kernel may refuse the call: /dev/urandom, then the clocks, are the fallbacks. */
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v) return v;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        size_t got = fread(&v, sizeof v, 1, f);
        fclose(f);
        if (got == 1) return v;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

int cli_float(const char *flag, const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "vkgpt2: %s: '%s' is not a number\n", flag, s);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "vkgpt2: %s: %g is out of range [%g, %g]\n", flag, v, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

char *cli_read_file(const char *path, size_t *len)
{
    char *buf, err[512];
    if (gpt2_read_input(path, SIZE_MAX, &buf, len, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return NULL;
    }
    return buf;
}

int cli_device(const char *flag, const char *v, int *index, const char **name)
{
    if (!*v || *v == '-') {
        fprintf(stderr, "vkgpt2: %s: '%s' is not a device index, UUID prefix or name\n", flag, v);
        return -1;
    }
    /* A longer number goes to the engine as a name: it reads any number as an index and says
     * that there is no such device. */
    if (v[strspn(v, "0123456789")] == 0 && strlen(v) < 4) return cli_int(flag, v, 0, 1000, index);
    *name = v;
    return 0;
}

const cli_choice cli_backends[] = {
    {"auto", VKG_BACKEND_AUTO}, {"cpu", VKG_BACKEND_CPU}, {"vulkan", VKG_BACKEND_VULKAN}, {NULL, 0}};
const cli_choice cli_kv_types[] = {{"f16", VKG_KV_F16}, {"f32", VKG_KV_F32}, {NULL, 0}};

int cli_choose(const char *flag, const char *v, const cli_choice *choices, int *out)
{
    int n = 0;
    for (; choices[n].name; n++)
        if (!strcmp(v, choices[n].name)) {
            *out = choices[n].value;
            return 0;
        }
    fprintf(stderr, "vkgpt2: %s: '%s' is not ", flag, v);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", choices[i].name);
    fputc('\n', stderr);
    return -1;
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "vkgpt2: %s needs a value (see vkgpt2 --help)\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_cap_threads(int *n_threads)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    long cap = 4 * cpus;
    if (*n_threads <= cap) return 0;
    fprintf(stderr, "vkgpt2: -t %d capped to %ld (4 x %ld online CPU%s)\n", *n_threads, cap, cpus,
            cpus == 1 ? "" : "s");
    *n_threads = (int)cap;
    return 1;
}

const char *cli_plural(long n, const char *one, const char *many) { return n == 1 ? one : many; }

void cli_unexpected(const char *cmd, const char *arg)
{
    if (arg[0] == '-' && arg[1])
        fprintf(stderr, "vkgpt2: %s: unknown option '%s' (see vkgpt2 %s --help)\n", cmd, arg, cmd);
    else
        fprintf(stderr, "vkgpt2: %s: unexpected argument '%s' (see vkgpt2 %s --help)\n", cmd, arg, cmd);
}

/* ---- --name=value ---- */

/* Long options that take no value, in every command (the others take one). */
static const char *const flag_options[] = {
    "--help",       "--version", "--json",     "--csv",   "--profile",
    "--ignore-eos", "--verbose", "--rerecord", "--force", NULL,
};
/* Short options that take no value. */
static const char *const flag_short[] = {"-h", "-v", NULL};

static bool in_list(const char *const *list, const char *s, size_t len)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && !strncmp(list[i], s, len)) return true;
    return false;
}

int cli_split_equals(int *argc, char ***argv)
{
    int n = *argc;
    char **in = *argv, **out = malloc(((size_t)n * 2 + 1) * sizeof *out);
    if (!out) {
        fprintf(stderr, "vkgpt2: out of memory\n");
        return -1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        char *a = in[i];
        out[k++] = a;
        if (i == 0 || a[0] != '-' || !a[1]) continue; /* the program, words, "-" */
        if (!strcmp(a, "--")) {                       /* everything after is words */
            while (++i < n) out[k++] = in[i];
            break;
        }
        char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        if (eq && eq > a + 2) {
            size_t len = (size_t)(eq - a);
            if (in_list(flag_options, a, len)) {
                fprintf(stderr, "vkgpt2: %.*s takes no value ('%s')\n", (int)len, a, a);
                free(out);
                return -1;
            }
            char *name = strndup(a, len); /* lives until exit, like argv */
            if (!name) {
                fprintf(stderr, "vkgpt2: out of memory\n");
                free(out);
                return -1;
            }
            out[k - 1] = name;
            out[k++] = eq + 1;
            continue;
        }
        /* An option that takes a value: the next word is that value, whatever it looks like. */
        size_t len = strlen(a);
        if (!in_list(flag_options, a, len) && !in_list(flag_short, a, len) && i + 1 < n) out[k++] = in[++i];
    }
    out[k] = NULL;
    *argc = k;
    *argv = out;
    return 0;
}

/* ---- stdout ----
 * stdout is replaced by a stream over file descriptor 1 whose writes remember the first error
 * (errno) and the last byte that went out: glibc forgets a failed write's errno once it has
 * dropped the buffer, and the notices need to know whether the text stopped mid-line. */

static int out_errno;       /* errno of the first failed write to fd 1, 0 if none */
static int out_last = '\n'; /* the last byte written to fd 1 */

static ssize_t out_write(void *cookie, const char *buf, size_t len)
{
    (void)cookie;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(1, buf + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!out_errno) out_errno = w < 0 ? errno : EIO;
            errno = out_errno;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    if (len) out_last = (unsigned char)buf[len - 1];
    return (ssize_t)len;
}

void cli_stdout_init(void)
{
    cookie_io_functions_t io = {.write = out_write};
    FILE *f = fopencookie(NULL, "w", io);
    if (!f) return; /* keep the ordinary stdout */
    setvbuf(f, NULL, isatty(1) ? _IOLBF : _IOFBF, BUFSIZ);
    stdout = f; /* glibc documents stdout as an ordinary, assignable variable */
}

int cli_stdout_errno(void)
{
    if (out_errno) return out_errno;
    /* A pipe whose reader is gone reports POLLERR even before anything was written. */
    struct pollfd p = {.fd = 1, .events = POLLOUT};
    struct stat sb;
    if (ferror(stdout) && fstat(1, &sb) == 0 && S_ISFIFO(sb.st_mode) && poll(&p, 1, 0) == 1 &&
        (p.revents & POLLERR))
        return EPIPE;
    return ferror(stdout) ? EIO : 0;
}

/* stdout and stderr lead to the same file (a terminal, or 2>&1). */
static bool same_target(void)
{
    struct stat a, b;
    return fstat(1, &a) == 0 && fstat(2, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void cli_notice(void *user, vkg_notice_kind kind, const char *msg)
{
    (void)user;
    (void)kind;
    /* A notice starts on a line of its own, not in the middle of the generated text. */
    fflush(stdout);
    if (out_last != '\n' && same_target()) {
        fputc('\n', stderr);
        out_last = '\n';
    }
    fprintf(stderr, "vkgpt2: %s\n", msg);
}
