/* test_pool.c - cpu_pool: every task runs exactly once, for many runs and thread counts; NULL
 * pool; nested runs; dispatch latency (logged); the bandwidth probe. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu_ops.h"

typedef struct job {
    int hits[256];
    long sum;
    cpu_pool *pool;
    int inner[64];
} job;

static void count_task(void *ctx, int i)
{
    job *j = ctx;
    __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&j->sum, (long)i, __ATOMIC_RELAXED);
}

static void check_runs(cpu_pool *p, int runs)
{
    job *j = calloc(1, sizeof *j);
    for (int r = 0; r < runs; r++) {
        const int n = 1 + (r * 37) % 200;
        memset(j->hits, 0, sizeof j->hits);
        j->sum = 0;
        cpu_pool_run(p, count_task, j, n);
        for (int i = 0; i < n; i++)
            cr_assert_eq(j->hits[i], 1, "run %d task %d ran %d times", r, i, j->hits[i]);
        for (int i = n; i < 256; i++) cr_assert_eq(j->hits[i], 0);
        cr_assert_eq(j->sum, (long)n * (n - 1) / 2);
    }
    cpu_pool_run(p, count_task, j, 0); /* no tasks: no-op */
    free(j);
}

Test(pool, exactly_once)
{
    static const int counts[] = {1, 2, 3, 8, 0};
    for (int k = 0; k < 5; k++) {
        cpu_pool *p = cpu_pool_create(counts[k]);
        cr_assert(p);
        if (counts[k] > 0)
            cr_assert_eq(cpu_pool_threads(p), counts[k]);
        else
            cr_assert(cpu_pool_threads(p) >= 1);
        check_runs(p, 300);
        cpu_pool_destroy(p);
    }
    check_runs(NULL, 20);
    cr_assert_eq(cpu_pool_threads(NULL), 1);
}

static void nested_task(void *ctx, int i)
{
    job *j = ctx;
    job inner;
    memset(&inner, 0, sizeof inner);
    cpu_pool_run(j->pool, count_task, &inner, 10); /* runs serially inside a task */
    j->inner[i] = (int)inner.sum;
}

Test(pool, nested_runs_serially)
{
    cpu_pool *p = cpu_pool_create(3);
    job *j = calloc(1, sizeof *j);
    j->pool = p;
    cpu_pool_run(p, nested_task, j, 64);
    for (int i = 0; i < 64; i++) cr_assert_eq(j->inner[i], 45);
    free(j);
    cpu_pool_destroy(p);
}

static void noop_task(void *ctx, int i)
{
    (void)ctx;
    (void)i;
}

Test(pool, sleep_then_wake)
{
    cpu_pool *p = cpu_pool_create(3);
    check_runs(p, 5);
    struct timespec d = {0, 2000000}; /* 2 ms: workers go to sleep */
    nanosleep(&d, NULL);
    check_runs(p, 5);
    /* dispatch latency with warm workers */
    struct timespec t0, t1;
    const int runs = 2000;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < runs; r++) cpu_pool_run(p, noop_task, NULL, 8);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / runs;
    cr_log_info("pool of 3: %.2f us per cpu_pool_run of 8 empty tasks", us);
    cpu_pool_destroy(p);
}

Test(pool, create_destroy_repeatedly)
{
    for (int k = 0; k < 20; k++) {
        cpu_pool *p = cpu_pool_create(1 + k % 4);
        if (k & 1) check_runs(p, 3);
        cpu_pool_destroy(p);
    }
    cpu_pool_destroy(NULL);
}

Test(bandwidth, probe)
{
    cpu_pool *p = cpu_pool_create(2);
    double gbs = cpu_measure_bandwidth_gbs(p, (size_t)16 << 20);
    cr_log_info("read bandwidth: %.1f GB/s", gbs);
    cr_assert(gbs > 0.1 && gbs < 10000);
    cr_assert(cpu_measure_bandwidth_gbs(NULL, 1000) > 0);
    cpu_pool_destroy(p);
}

/* The default thread count is the physical cores: at least one, at most the online CPUs, and what
 * a pool created with 0 threads runs. */
Test(pool, default_is_physical_cores)
{
    int n = cpu_default_threads();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert(n >= 1 && n <= online, "default threads %d, online CPUs %ld", n, online);
    cpu_pool *p = cpu_pool_create(0);
    cr_assert_eq(cpu_pool_threads(p), n);
    cpu_pool_destroy(p);
}
