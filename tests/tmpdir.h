/* tmpdir.h - the temporary directory of a test that runs the built binaries: made fresh per test
 * under $TMPDIR (else /tmp), the working directory of the test and its children, removed with
 * everything in it afterwards (rm_tree); and the paths of the build's binaries. One include per test file. */
#ifndef VKG_TMPDIR_H
#define VKG_TMPDIR_H

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[4096];

static inline int tmpdir_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes path and everything below it (links are not followed). 0, or what nftw returned. */
static inline int rm_tree(const char *path) { return nftw(path, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Makes $TMPDIR/PREFIX-XXXXXX and enters it. */
static inline void tmpdir_enter(const char *prefix)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/%s-XXXXXX", t && *t ? t : "/tmp", prefix);
    cr_assert(mkdtemp(tmp_dir), "mkdtemp %s: %s", tmp_dir, strerror(errno));
    cr_assert(chdir(tmp_dir) == 0);
}

/* Leaves the directory and removes it (nothing when none was made). */
static inline void tmpdir_leave(void)
{
    if (!tmp_dir[0]) return;
    if (chdir("/") == 0) rm_tree(tmp_dir);
    tmp_dir[0] = 0;
}

/* buf = $VKGPT2_BUILD_ROOT/rel (e.g. "tools/vkgpt2"), asserted to be an executable. */
static inline void build_binary(char *buf, size_t n, const char *rel)
{
    const char *root = getenv("VKGPT2_BUILD_ROOT");
    cr_assert(root && *root, "VKGPT2_BUILD_ROOT is not set (run through meson test)");
    snprintf(buf, n, "%s/%s", root, rel);
    cr_assert(access(buf, X_OK) == 0, "%s: not an executable (%s)", buf, strerror(errno));
}

#endif
