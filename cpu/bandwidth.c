/* bandwidth.c - a quick read-bandwidth probe for the bench tool: every pool thread sums its slice
 * of a large buffer; the best of a few passes is reported. */
#include "cpu_ops.h"
#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

typedef struct bw_job {
    const uint64_t *buf;
    size_t words, per_task;
    uint64_t sums[256];
} bw_job;

static void bw_task(void *ctx, int i)
{
    bw_job *j = ctx;
    size_t a = (size_t)i * j->per_task, b = a + j->per_task < j->words ? a + j->per_task : j->words;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t k = a;
    for (; k + 4 <= b; k += 4) {
        s0 += j->buf[k];
        s1 ^= j->buf[k + 1];
        s2 += j->buf[k + 2];
        s3 ^= j->buf[k + 3];
    }
    for (; k < b; k++) s0 += j->buf[k];
    j->sums[i] = s0 + s1 + s2 + s3; /* keeps the loads alive */
}

double cpu_measure_bandwidth_gbs(cpu_pool *p, size_t bytes)
{
    if (bytes < 4096) bytes = 4096;
    bw_job j;
    memset(&j, 0, sizeof j);
    j.words = bytes / 8;
    uint64_t *buf = aligned_alloc(64, (j.words * 8 + 63) & ~(size_t)63);
    if (!buf) return 0;
    for (size_t k = 0; k < j.words; k++) buf[k] = k * 0x9e3779b97f4a7c15ull;
    j.buf = buf;
    int tasks = cpu_pool_threads(p) * 4;
    if (tasks > 256) tasks = 256;
    j.per_task = (j.words + (size_t)tasks - 1) / (size_t)tasks;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int pass = 0; pass < 5; pass++) {
        int64_t t0 = gpt2_clock_ns();
        cpu_pool_run(p, bw_task, &j, tasks);
        double s = 1e-9 * (double)(gpt2_clock_ns() - t0);
        double gbs = s > 0 ? (double)(j.words * 8) / s / 1e9 : 0;
        if (gbs > best) best = gbs;
        for (int i = 0; i < tasks; i++) sink += j.sums[i];
    }
    (void)sink;
    free(buf);
    return best;
}
