/* notice.h - how libvkgpt2 reports what it noticed (a clamp, a fallback, an internal failure):
 * through the handler the application set with vkg_set_notice_handler, never on its own. */
#ifndef VKG_NOTICE_H
#define VKG_NOTICE_H

#include "vkgpt2.h"

/* Formats one line (no trailing newline, no "vkgpt2: " prefix) and hands it to the handler;
 * without a handler it is dropped (validation messages excepted, see notice.c). */
void gpt2_notice(vkg_notice_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
