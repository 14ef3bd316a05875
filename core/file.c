/* file.c - see file.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "file.h"

int gpt2_map_file(const char *path, void **map, size_t *size, char *err, size_t errlen)
{
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gpt2_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        gpt2_errf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        gpt2_errf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size <= 0) {
        gpt2_errf(err, errlen, "%s: file is empty", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        gpt2_errf(err, errlen, "%s: file is too large to map", path);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        gpt2_errf(err, errlen, "%s: cannot map %lld bytes: %s", path, (long long)st.st_size, strerror(e));
        return -1;
    }
#ifdef MADV_HUGEPAGE
    /* Weights are streamed whole every token: with 4 KiB pages a 3 GB model misses the TLB on every
     * page (1558M f16 decode ~25% slower). Where the kernel and file system allow it, the page
     * cache then holds and maps the file in 2 MiB pages. Only advice: failure changes nothing. */
    (void)madvise(p, (size_t)st.st_size, MADV_HUGEPAGE);
#endif
    *map = p;
    *size = (size_t)st.st_size;
    return 0;
}

/* Reads f to its end into a NUL-terminated malloc'ed buffer, starting with room for hint bytes;
 * more than max bytes is an error (SIZE_MAX: no limit). Errors name the input `name`. */
static int read_stream(FILE *f, const char *name, size_t max, size_t hint, char **buf, size_t *len, char *err,
                       size_t errlen)
{
    if (max > SIZE_MAX / 2) max = SIZE_MAX / 2; /* "no limit": cap + 1 never wraps */
    size_t cap = hint < max ? hint : max, n = 0;
    if (cap < 4096 && max > cap) cap = max < 4096 ? max : 4096;
    char *b = malloc(cap + 1);
    for (;;) {
        if (!b) {
            gpt2_errf(err, errlen, "%s: out of memory reading %zu bytes", name, cap);
            return -1;
        }
        errno = 0;
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        /* Full: one more byte tells the end from more input. */
        int c = fgetc(f);
        if (c == EOF) break;
        if (cap == max) {
            gpt2_errf(err, errlen, "%s: file is too large (more than %zu bytes)", name, max);
            free(b);
            return -1;
        }
        size_t grown = cap > max / 2 ? max : cap * 2;
        char *nb = realloc(b, grown + 1);
        if (!nb) free(b);
        b = nb;
        cap = grown;
        if (b) b[n++] = (char)c;
    }
    if (ferror(f)) {
        gpt2_errf(err, errlen, "%s: read error: %s", name, errno ? strerror(errno) : "unknown");
        free(b);
        return -1;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

int gpt2_read_file(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        gpt2_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        gpt2_errf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((uint64_t)st.st_size > max) {
        gpt2_errf(err, errlen, "%s: file is too large (%lld bytes, at most %zu expected)", path,
                  (long long)st.st_size, max);
        fclose(f);
        return -1;
    }
    int rc = read_stream(f, path, max, (size_t)st.st_size, buf, len, err, errlen);
    fclose(f);
    return rc;
}

int gpt2_read_input(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    bool std_in = !strcmp(path, "-");
    FILE *f = std_in ? stdin : fopen(path, "rb");
    if (!f) {
        gpt2_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = read_stream(f, std_in ? "stdin" : path, max, 0, buf, len, err, errlen);
    if (!std_in) fclose(f);
    return rc;
}
