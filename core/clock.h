/* clock.h - the one host clock of vkgpt2: CLOCK_MONOTONIC, for step times, the profile's host track,
 * the thread pool's waits and the benchmarks (vkg_now_ms in the public API reads it too). */
#ifndef VKG_CLOCK_H
#define VKG_CLOCK_H

#include <stdint.h>

/* Nanoseconds since an arbitrary start (boot); never goes back. */
int64_t gpt2_clock_ns(void);
/* The same in milliseconds and microseconds. */
static inline double gpt2_clock_ms(void) { return (double)gpt2_clock_ns() / 1e6; }
static inline double gpt2_clock_us(void) { return (double)gpt2_clock_ns() / 1e3; }

#endif
