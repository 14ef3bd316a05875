/* err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

void gpt2_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++) /* one line */
        if (*p == '\n' || *p == '\r') *p = ' ';
}
