/* cli.c - see cli.h. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_int(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) {
        fprintf(stderr, "vkgpt2: %s: '%s' is not an integer\n", flag, s);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "vkgpt2: %s: %ld is out of range [%ld, %ld]\n", flag, v, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') {
        /* ggml's -s accepts -1 for "random"; we keep runs reproducible: negative means time. */
        long long v = strtoll(s, &end, 10);
        if (*end || errno) goto bad;
        *out = v < 0 ? (uint64_t)time(NULL) : (uint64_t)v;
        return 0;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno) goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "vkgpt2: %s: '%s' is not an integer\n", flag, s);
    return -1;
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
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "vkgpt2: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    errno = 0;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
        cap *= 2;
    }
    int failed = ferror(f), why = errno;
    if (f != stdin) fclose(f);
    if (!buf || failed) {
        fprintf(stderr, "vkgpt2: %s: %s\n", path, !buf ? "out of memory" : why ? strerror(why) : "read error");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) return 1;
    /* Leads: c2..df two bytes, e0..ef three, f0..f4 four; c0, c1 and f5..ff start nothing. */
    size_t need = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
                : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (!need || need > n) return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (need == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
    if (need == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return need;
}

void cli_json_string(FILE *f, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') { fprintf(f, "\\%c", c); i++; continue; }
        if (c < 0x20) {
            if (c == '\n') fputs("\\n", f);
            else if (c == '\t') fputs("\\t", f);
            else if (c == '\r') fputs("\\r", f);
            else fprintf(f, "\\u%04x", c);
            i++;
            continue;
        }
        size_t l = utf8_len(u + i, len - i);
        if (!l) { fputs("\\ufffd", f); i++; continue; }
        fwrite(u + i, 1, l, f);
        i += l;
    }
    fputc('"', f);
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "vkgpt2: %s needs a value (see vkgpt2 --help)\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}
