/* progress.h - progress of the library's long steps (loading, synthesizing, quantizing, writing),
 * handed to the callback the application set with vkg_set_progress; the library never prints it.
 */
#ifndef VKG_PROGRESS_H
#define VKG_PROGRESS_H

#include <stdint.h>

/* Reports that step (e.g. "writing") on name (a path) has done of total units; the first report
 * of a step has done 0 and the last done == total. No-op without a callback. */
void gpt2_progress(const char *name, const char *step, uint64_t done, uint64_t total);

#endif
