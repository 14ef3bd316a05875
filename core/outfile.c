/* outfile.c - safe output files and directories (the rules are in outfile.h): temporaries in the
 * destination directory, O_TMPFILE + linkat where Linux has it, atomic rename into place, checks
 * of outputs against inputs by device and inode, and clean-up of temporaries after a signal or a
 * killed run.
 */
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "model_internal.h"
#include "progress.h"

/* ---------------------------------------------------------------- temporaries in flight */

/* Named temporaries this process has made and not yet renamed or removed, for gpt2_out_cleanup.
 * Written only by the main flow; read (never freed) by a signal handler. */
#define MAX_PENDING 32
static char *volatile pending[MAX_PENDING];
static volatile sig_atomic_t pending_dir[MAX_PENDING];

static void pending_add(char *path, bool dir)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (!pending[i]) {
            pending_dir[i] = dir;
            pending[i] = path;
            return;
        }
}

static void pending_drop(const char *path)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending[i] == path) pending[i] = NULL;
}

/* Removes a directory of plain files with raw system calls only (async-signal-safe). */
static void remove_flat_dir_raw(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[4096];
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
            for (long at = 0; at < n;) {
                /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[] */
                unsigned short reclen;
                memcpy(&reclen, buf + at + 16, sizeof reclen);
                const char *name = buf + at + 19;
                if (strcmp(name, ".") && strcmp(name, "..")) unlinkat(fd, name, 0);
                at += reclen;
            }
        }
        close(fd);
    }
    rmdir(path);
}

void gpt2_out_cleanup(void)
{
    for (int i = MAX_PENDING - 1; i >= 0; i--) {
        char *p = pending[i];
        if (!p) continue;
        if (pending_dir[i])
            remove_flat_dir_raw(p);
        else
            unlink(p);
        pending[i] = NULL;
    }
}

/* ---------------------------------------------------------------- paths */

/* Splits path into its directory ("." when none) and last name (trailing slashes dropped).
 * Both malloc'ed; -1 when path has no name (empty, "/"). */
static int split_path(const char *path, char **dir, char **base)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    if (b == n) return -1;
    *base = strndup(path + b, n - b);
    if (b == 0)
        *dir = strdup(".");
    else if (b == 1)
        *dir = strdup("/");
    else
        *dir = strndup(path, b - 1);
    if (!*dir || !*base || !strcmp(*base, ".") || !strcmp(*base, "..")) {
        free(*dir);
        free(*base);
        return -1;
    }
    return 0;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

/* ".NAME.vkgpt2-PID-" : the prefix of this process's temporaries for NAME in its directory. */
static void tmp_prefix(char *buf, size_t n, const char *base, long pid)
{
    snprintf(buf, n, ".%s.vkgpt2-%ld-", base, pid);
}

/* dir/.NAME.vkgpt2-PID-XXXXXX (a mkstemp/mkdtemp template), malloc'ed. */
static char *tmp_template(const char *dir, const char *base)
{
    char pre[NAME_MAX + 64];
    tmp_prefix(pre, sizeof pre, base, (long)getpid());
    size_t a = strlen(dir), b = strlen(pre);
    char *p = malloc(a + b + 8);
    if (p) sprintf(p, "%s/%sXXXXXX", dir, pre);
    return p;
}

/* Whether (dev, ino) is dir_fd's directory or one above it. Closes dir_fd. */
static bool dir_within(int dir_fd, dev_t dev, ino_t ino)
{
    bool hit = false;
    for (int depth = 0; dir_fd >= 0 && depth < 4096; depth++) {
        struct stat st, up;
        if (fstat(dir_fd, &st) != 0) break;
        if (st.st_dev == dev && st.st_ino == ino) {
            hit = true;
            break;
        }
        int p = openat(dir_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (p < 0 || fstat(p, &up) != 0 || (up.st_dev == st.st_dev && up.st_ino == st.st_ino)) {
            if (p >= 0) close(p);
            break; /* the root */
        }
        close(dir_fd);
        dir_fd = p;
    }
    if (dir_fd >= 0) close(dir_fd);
    return hit;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* The directory a model path stands for when the loader reads its directory (config.json or a
 * .safetensors file named), else NULL. malloc'ed. */
static char *input_dir_of(const char *in)
{
    char *dir, *base;
    if (split_path(in, &dir, &base) != 0) return NULL;
    bool hf = !strcmp(base, "config.json") || ends_with(base, ".safetensors");
    free(base);
    if (!hf) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* A directory that --force may replace: nothing but plain files, and empty or with config.json. */
static bool replaceable_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return false;
    bool ok = true, empty = true, config = false;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        empty = false;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
            ok = false;
        if (!strcmp(e->d_name, "config.json")) config = true;
    }
    closedir(d);
    return ok && (empty || config);
}

/* Removes a file, or a directory of plain files. */
static void remove_flat(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(path);
}

/* Removes temporaries of NAME in dir left by processes that no longer run (killed writers). */
static void remove_stale(const char *dir, const char *base)
{
    char pre[NAME_MAX + 64];
    snprintf(pre, sizeof pre, ".%s.vkgpt2-", base);
    size_t pl = strlen(pre);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, pre, pl)) continue;
        char *end;
        long pid = strtol(e->d_name + pl, &end, 10);
        if (end == e->d_name + pl || *end != '-' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* still running (or not ours to know) */
        char *p = join(dir, e->d_name);
        if (p) remove_flat(p);
        free(p);
    }
    closedir(d);
}

static bool use_tmpfile(void)
{
#ifdef O_TMPFILE
    const char *e = getenv("VKGPT2_NO_TMPFILE");
    return !(e && *e && strcmp(e, "0")) && access("/proc/self/fd", X_OK) == 0;
#else
    return false;
#endif
}

static mode_t default_mode(mode_t m)
{
    mode_t u = umask(022);
    umask(u);
    return m & ~u;
}

/* ---------------------------------------------------------------- checks */

/* The checks of gpt2_out_check; *exists tells whether path names something now. */
static int check(const char *path, unsigned flags, const char *const *inputs, char *err, size_t errlen)
{
    char *dir = NULL, *base = NULL;
    if (!path || split_path(path, &dir, &base) != 0) {
        gpt2_errf(err, errlen, "%s: not a file name to write", path ? path : "(null)");
        return -1;
    }
    int rc = -1;
    struct stat ds, ps, ls;
    if (stat(dir, &ds) != 0) {
        gpt2_errf(err, errlen, "%s: cannot create: %s: %s", path, dir, strerror(errno));
        goto out;
    }
    if (!S_ISDIR(ds.st_mode)) {
        gpt2_errf(err, errlen, "%s: cannot create: %s is not a directory", path, dir);
        goto out;
    }
    bool exists = lstat(path, &ls) == 0;
    bool target = stat(path, &ps) == 0; /* what a symlink points to */
    bool special = target && !S_ISREG(ps.st_mode) && !S_ISDIR(ps.st_mode);
    if (special && (flags & GPT2_OUT_DIR)) {
        gpt2_errf(err, errlen, "%s: exists and is not a directory", path);
        goto out;
    }
    if (!special) {
        if (access(dir, W_OK | X_OK) != 0) {
            gpt2_errf(err, errlen, "%s: cannot create: %s: %s", path, dir, strerror(errno));
            goto out;
        }
        struct statvfs vs;
        if (statvfs(dir, &vs) == 0 && (vs.f_flag & ST_RDONLY)) {
            gpt2_errf(err, errlen, "%s: cannot create: %s", path, strerror(EROFS));
            goto out;
        }
    }
    /* outputs against inputs: the same inode, inside an input directory, or holding an input */
    for (int i = 0; inputs && inputs[i]; i++) {
        const char *in = inputs[i];
        char *hfdir = input_dir_of(in);
        const char *root = hfdir ? hfdir : in;
        struct stat is;
        if (stat(root, &is) != 0) {
            free(hfdir);
            continue; /* the reader reports it */
        }
        const char *why = NULL;
        if (target && ps.st_dev == is.st_dev && ps.st_ino == is.st_ino)
            why = "is the input";
        else if (S_ISDIR(is.st_mode) &&
                 dir_within(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), is.st_dev, is.st_ino))
            why = "lies inside the input directory";
        else if (target && S_ISDIR(ps.st_mode)) {
            char *idir = NULL, *ibase = NULL;
            int fd = -1;
            if (S_ISDIR(is.st_mode))
                fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            else if (split_path(root, &idir, &ibase) == 0)
                fd = open(idir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            free(idir);
            free(ibase);
            if (fd >= 0 && dir_within(fd, ps.st_dev, ps.st_ino)) why = "holds the input";
        }
        if (why) {
            gpt2_errf(err, errlen, "%s: %s %s; write to another path", path, why, root);
            free(hfdir);
            goto out;
        }
        free(hfdir);
    }
    if (exists && !special) {
        if (flags & GPT2_OUT_NO_REPLACE) {
            gpt2_errf(err, errlen, "%s: already exists; not replacing it", path);
            rc = GPT2_OUT_EXISTS;
            goto out;
        }
        if (target && S_ISDIR(ps.st_mode) && !S_ISLNK(ls.st_mode) && !replaceable_dir(path)) {
            gpt2_errf(err, errlen, "%s: is a directory with more than a model in it; not replacing it", path);
            goto out;
        }
        if (S_ISLNK(ls.st_mode) && target && S_ISDIR(ps.st_mode)) {
            gpt2_errf(err, errlen, "%s: is a link to a directory; not replacing it", path);
            goto out;
        }
    }
    rc = 0;
out:
    free(dir);
    free(base);
    return rc;
}

int gpt2_out_check(const char *path, unsigned flags, const char *const *inputs, char *err, size_t errlen)
{
    return check(path, flags, inputs, err, errlen);
}

/* ---------------------------------------------------------------- putting things in place */

/* Renames src over dst, which may be a file or (replaceable) directory; the old one is removed
 * after the new one has its name. */
static int replace_into(const char *src, const char *dst, const char *dir, const char *base)
{
    if (rename(src, dst) == 0) return 0;
    int e = errno;
    if (e != EISDIR && e != ENOTEMPTY && e != EEXIST && e != ENOTDIR) return -1;
#ifdef RENAME_EXCHANGE
    if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_EXCHANGE) == 0) {
        remove_flat(src); /* src now names the old one */
        return 0;
    }
#endif
    /* no exchange: move the old one aside first */
    char *aside = tmp_template(dir, base);
    if (!aside) return -1;
    int fd = mkstemp(aside);
    if (fd < 0) {
        free(aside);
        return -1;
    }
    close(fd);
    unlink(aside);
    int r = -1;
    if (rename(dst, aside) == 0) {
        if (rename(src, dst) == 0) {
            remove_flat(aside);
            r = 0;
        } else {
            rename(aside, dst);
        }
    }
    free(aside);
    return r;
}

/* Renames src to dst only when dst does not exist. 0, or -1 with errno (EEXIST when it does). */
static int rename_noreplace(const char *src, const char *dst)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
#endif
    struct stat st;
    if (lstat(dst, &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(src, dst);
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---------------------------------------------------------------- files */

int gpt2_out_open(gpt2_out *o, const char *path, unsigned flags, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    int rc = check(path, flags & ~GPT2_OUT_DIR, NULL, err, errlen);
    if (rc != 0) return rc;
    char *dir = NULL, *base = NULL;
    if (split_path(path, &dir, &base) != 0 || !(o->path = strdup(path))) {
        free(dir);
        free(base);
        free(o->path);
        o->path = NULL;
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    o->flags = flags;
    snprintf(o->label, sizeof o->label, "%s", path);
    struct stat ps;
    bool target = stat(path, &ps) == 0;
    mode_t mode = target && S_ISREG(ps.st_mode) ? ps.st_mode & 07777 : default_mode(0666);
    if (target && !S_ISREG(ps.st_mode) && !S_ISDIR(ps.st_mode)) {
        o->direct = true; /* a device or FIFO: nothing to replace */
        o->fd = open(path, O_WRONLY | O_CLOEXEC);
    } else {
        remove_stale(dir, base);
#ifdef O_TMPFILE
        if (use_tmpfile()) {
            o->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
            o->anon = o->fd >= 0;
        }
#endif
        if (o->fd < 0) { /* no O_TMPFILE here: a named temporary, removed by cleanup */
            o->tmp = tmp_template(dir, base);
            if (o->tmp) {
                pending_add(o->tmp, false);
                o->fd = mkstemp(o->tmp);
                if (o->fd >= 0) {
                    fchmod(o->fd, mode);
                } else {
                    pending_drop(o->tmp);
                    free(o->tmp);
                    o->tmp = NULL;
                }
            }
        }
    }
    int e = errno;
    free(dir);
    free(base);
    if (o->fd < 0 || !(o->f = fdopen(o->fd, "wb"))) {
        if (o->fd >= 0) e = errno;
        gpt2_errf(err, errlen, "%s: cannot create: %s", path, strerror(e));
        gpt2_out_abort(o);
        return -1;
    }
    setvbuf(o->f, NULL, _IOFBF, 1 << 20);
    return 0;
}

void gpt2_out_expect(gpt2_out *o, uint64_t total)
{
    o->total = total;
    o->reported = o->done;
    if (total) gpt2_progress(o->label, "writing", o->done < total ? o->done : total - 1, total);
}

void gpt2_out_write(gpt2_out *o, const void *p, size_t n)
{
    if (o->failed || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) {
        o->failed = true;
        o->err_no = errno;
    }
    o->done += n;
    if (o->total && o->done - o->reported >= (4u << 20)) {
        o->reported = o->done;
        gpt2_progress(o->label, "writing", o->done < o->total ? o->done : o->total - 1, o->total);
    }
}

void gpt2_out_abort(gpt2_out *o)
{
    if (o->f)
        fclose(o->f);
    else if (o->fd >= 0)
        close(o->fd);
    o->f = NULL;
    o->fd = -1;
    if (o->tmp) {
        unlink(o->tmp);
        pending_drop(o->tmp);
        free(o->tmp); /* a signal handler may still hold the pointer: it only reads the string */
    }
    o->tmp = NULL;
    free(o->path);
    o->path = NULL;
}

/* Links the O_TMPFILE inode of o to name. */
static int link_anon(gpt2_out *o, const char *name)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", o->fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
}

int gpt2_out_close(gpt2_out *o, char *err, size_t errlen)
{
    if (!o->f) return -1;
    if (fflush(o->f) != 0 && !o->failed) {
        o->failed = true;
        o->err_no = errno;
    }
    if (ferror(o->f) && !o->failed) {
        o->failed = true;
        o->err_no = errno ? errno : EIO;
    }
    if (!o->failed && !o->direct && fsync(o->fd) != 0 && errno != EINVAL) {
        o->failed = true;
        o->err_no = errno;
    }
    char *dir = NULL, *base = NULL;
    if (!o->failed && !o->direct && split_path(o->path, &dir, &base) != 0) {
        o->failed = true;
        o->err_no = ENOMEM;
    }
    bool exists_err = false;
    if (!o->failed && !o->direct) {
        int r;
        if (o->anon && (o->flags & GPT2_OUT_NO_REPLACE)) {
            r = link_anon(o, o->path); /* fails with EEXIST if one appeared meanwhile */
        } else if (o->anon) {
            /* a name beside the target, then one rename: the old file stays whole until then */
            char *t = tmp_template(dir, base);
            r = -1;
            if (t) {
                pending_add(t, false);
                for (int k = 0; k < 100 && r != 0; k++) {
                    snprintf(t + strlen(t) - 6, 7, "%06x", (unsigned)(rand() ^ (k * 7919)) & 0xffffff);
                    r = link_anon(o, t);
                    if (r != 0 && errno != EEXIST) break;
                }
                if (r == 0 && (r = replace_into(t, o->path, dir, base)) != 0) {
                    int e = errno;
                    unlink(t);
                    errno = e;
                }
                pending_drop(t);
                free(t);
            }
        } else if (o->flags & GPT2_OUT_NO_REPLACE) {
            r = rename_noreplace(o->tmp, o->path);
        } else {
            r = replace_into(o->tmp, o->path, dir, base);
        }
        if (r != 0) {
            o->failed = true;
            o->err_no = errno;
            exists_err = errno == EEXIST && (o->flags & GPT2_OUT_NO_REPLACE);
        } else if (o->tmp) {
            pending_drop(o->tmp);
            free(o->tmp);
            o->tmp = NULL;
        }
    }
    if (fclose(o->f) != 0 && !o->failed && o->direct) {
        o->failed = true;
        o->err_no = errno;
    }
    o->f = NULL;
    o->fd = -1;
    int rc = 0;
    if (o->failed) {
        if (exists_err)
            gpt2_errf(err, errlen, "%s: already exists; not replacing it", o->label);
        else
            gpt2_errf(err, errlen, "%s: write failed: %s", o->label, strerror(o->err_no ? o->err_no : EIO));
        rc = exists_err ? GPT2_OUT_EXISTS : -1;
    } else if (!o->direct) {
        sync_dir(dir);
        if (o->total) gpt2_progress(o->label, "writing", o->total, o->total);
    }
    free(dir);
    free(base);
    gpt2_out_abort(o); /* frees; removes a named temporary that was not renamed */
    return rc;
}

/* ---------------------------------------------------------------- directories */

int gpt2_outdir_open(gpt2_outdir *d, const char *path, unsigned flags, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    int rc = check(path, flags | GPT2_OUT_DIR, NULL, err, errlen);
    if (rc != 0) return rc;
    char *dir = NULL, *base = NULL;
    if (split_path(path, &dir, &base) != 0 || !(d->path = strdup(path)) ||
        !(d->tmp = tmp_template(dir, base))) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        free(dir);
        free(base);
        free(d->path);
        d->path = NULL;
        return -1;
    }
    d->flags = flags;
    remove_stale(dir, base);
    free(dir);
    free(base);
    pending_add(d->tmp, true);
    if (!mkdtemp(d->tmp)) {
        gpt2_errf(err, errlen, "%s: cannot create directory: %s", path, strerror(errno));
        gpt2_outdir_abort(d);
        return -1;
    }
    chmod(d->tmp, default_mode(0777));
    return 0;
}

int gpt2_outdir_commit(gpt2_outdir *d, char *err, size_t errlen)
{
    char *dir = NULL, *base = NULL;
    int r = -1, rc = -1;
    if (split_path(d->path, &dir, &base) == 0) {
        sync_dir(d->tmp);
        r = (d->flags & GPT2_OUT_NO_REPLACE) ? rename_noreplace(d->tmp, d->path)
                                             : replace_into(d->tmp, d->path, dir, base);
    } else {
        errno = ENOMEM;
    }
    if (r == 0) {
        sync_dir(dir);
        pending_drop(d->tmp);
        free(d->tmp);
        d->tmp = NULL;
        rc = 0;
    } else if (errno == EEXIST || errno == ENOTEMPTY) {
        gpt2_errf(err, errlen, "%s: already exists; not replacing it", d->path);
        rc = GPT2_OUT_EXISTS;
    } else {
        gpt2_errf(err, errlen, "%s: cannot put the directory in place: %s", d->path, strerror(errno));
    }
    free(dir);
    free(base);
    gpt2_outdir_abort(d);
    return rc;
}

void gpt2_outdir_abort(gpt2_outdir *d)
{
    if (d->tmp) {
        remove_flat(d->tmp);
        pending_drop(d->tmp);
        free(d->tmp);
    }
    d->tmp = NULL;
    free(d->path);
    d->path = NULL;
}

/* ---------------------------------------------------------------- the public API */

#include "vkgpt2.h"

/* A vkg_output is a gpt2_out on the heap. */
struct vkg_output {
    gpt2_out o;
};

/* VKG_OUT_* flags as GPT2_OUT_* flags. */
static unsigned out_flags(unsigned flags)
{
    return (flags & VKG_OUT_FORCE ? 0 : GPT2_OUT_NO_REPLACE) | (flags & VKG_OUT_DIR ? GPT2_OUT_DIR : 0);
}

int vkg_output_check(const char *path, unsigned flags, const char *const *inputs, char *err, size_t errlen)
{
    return gpt2_out_check(path, out_flags(flags), inputs, err, errlen);
}

vkg_output *vkg_output_open(const char *path, unsigned flags, char *err, size_t errlen)
{
    vkg_output *o = malloc(sizeof *o);
    if (!o) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (gpt2_out_open(&o->o, path, out_flags(flags) & ~GPT2_OUT_DIR, err, errlen) != 0) {
        free(o);
        return NULL;
    }
    return o;
}

void *vkg_output_file(vkg_output *o) { return o->o.f; }

int vkg_output_commit(vkg_output *o, char *err, size_t errlen)
{
    int r = gpt2_out_close(&o->o, err, errlen);
    free(o);
    return r;
}

void vkg_output_abort(vkg_output *o)
{
    if (!o) return;
    gpt2_out_abort(&o->o);
    free(o);
}

void vkg_output_cleanup(void) { gpt2_out_cleanup(); }
