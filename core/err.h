/* err.h - the one way core code fills a caller's error buffer: one line (newlines become spaces),
 * printf-style, nothing written when err is NULL or errlen 0. */
#ifndef VKG_ERR_H
#define VKG_ERR_H

#include <stddef.h>

void gpt2_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
