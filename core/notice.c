/* notice.c - the process-wide notice handler (vkg_set_notice_handler) and gpt2_notice. */
#include "notice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vkg_notice_fn notice_fn; /* the application's handler, or NULL */
static void *notice_user;       /* its user pointer */

void vkg_set_notice_handler(vkg_notice_fn fn, void *user)
{
    notice_fn = fn;
    notice_user = user;
}

void gpt2_notice(vkg_notice_kind kind, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (notice_fn) {
        notice_fn(notice_user, kind, msg);
        return;
    }
    /* Without a handler only what the environment explicitly asked for is shown: the messages of
     * the validation layer that VKGPT2_VALIDATION=1 turned on (a debugging aid for programs, such
     * as the tests, that install no handler). */
    if (kind == VKG_NOTICE_VALIDATION) fprintf(stderr, "vkgpt2: %s\n", msg);
}
