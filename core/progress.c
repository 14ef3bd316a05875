/* progress.c - vkg_set_progress and the library's progress reports (see progress.h). */
#include "progress.h"

#include <stddef.h>

#include "vkgpt2.h"

static vkg_progress_cb progress_cb; /* set by vkg_set_progress, NULL: none */
static void *progress_user;         /* its user pointer */

void vkg_set_progress(vkg_progress_cb cb, void *user)
{
    progress_cb = cb;
    progress_user = user;
}

void gpt2_progress(const char *name, const char *step, uint64_t done, uint64_t total)
{
    if (progress_cb) progress_cb(progress_user, step, name, done, total);
}
