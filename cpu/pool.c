/* pool.c - persistent worker threads for the CPU kernels.
 *
 * One job at a time. The job's tasks are claimed through a single 64-bit counter whose high half is
 * the job's generation and low half the next task index; a compare-and-swap that still sees the
 * right generation is the only way to claim a task, so a late worker can never run a task of a
 * finished job. The caller works too, then spins until every task it published is done.
 * Idle workers spin for a short while (the kernels come in bursts of ~100 calls per token) and then
 * sleep on a condition variable; the caller only touches the mutex when somebody sleeps.
 */
#include "cpu_ops.h"
#include "core/clock.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS 300000L /* how long an idle worker spins before sleeping */

struct cpu_pool {
    int n_threads; /* including the caller */
    pthread_t *workers;
    /* the current job; written by the caller before the counter publishes it */
    void (*fn)(void *, int);
    void *ctx;
    int n_tasks;
    uint64_t counter; /* gen << 32 | next task */
    int done;         /* tasks finished in the current job */
    int stop;
    int sleeping; /* workers inside the sleep section */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t run_mu; /* one cpu_pool_run at a time */
};

static _Thread_local int tl_in_pool; /* nonzero inside a pool task: nested runs go serial */

/* The physical cores among the CPUs this process may run on: distinct (package, core) pairs of
 * the affinity mask in /sys; the count of allowed CPUs where /sys does not say. */
int cpu_default_threads(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int fallback = online > 0 ? (int)online : 1;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return fallback;
    int allowed = CPU_COUNT(&set);
    if (allowed <= 0) return fallback;
    enum { MAXC = 1024 };
    long *ids = calloc(MAXC, sizeof *ids);
    if (!ids) return allowed;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && c < MAXC; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        long core = -1, pkg = -1;
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &core) != 1) core = -1;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
        f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &pkg) != 1) pkg = -1;
            fclose(f);
        }
        if (core < 0 || pkg < 0) {
            free(ids);
            return allowed; /* no topology: every allowed CPU */
        }
        long id = pkg << 32 | core;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = ids[i] == id;
        if (!dup) ids[n++] = id;
    }
    free(ids);
    return n > 0 ? n : allowed;
#else
    return fallback;
#endif
}

/* Claims and runs tasks of generation gen until none are left. */
static void work(cpu_pool *p, uint32_t gen)
{
    for (;;) {
        uint64_t c = __atomic_load_n(&p->counter, __ATOMIC_ACQUIRE);
        if ((uint32_t)(c >> 32) != gen) return;
        uint32_t idx = (uint32_t)c;
        int n = __atomic_load_n(&p->n_tasks, __ATOMIC_RELAXED);
        if (idx >= (uint32_t)n) return;
        if (!__atomic_compare_exchange_n(&p->counter, &c, c + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        /* The job cannot change until this task is counted done. */
        void (*fn)(void *, int) = __atomic_load_n(&p->fn, __ATOMIC_RELAXED);
        void *ctx = __atomic_load_n(&p->ctx, __ATOMIC_RELAXED);
        fn(ctx, (int)idx);
        __atomic_fetch_add(&p->done, 1, __ATOMIC_RELEASE);
    }
}

static void *worker_main(void *arg)
{
    cpu_pool *p = arg;
    tl_in_pool = 1;
    uint32_t seen = 0;
    for (;;) {
        /* wait for a new generation: spin, then sleep */
        int64_t t0 = gpt2_clock_ns();
        unsigned spins = 0;
        for (;;) {
            if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return NULL;
            if ((uint32_t)(__atomic_load_n(&p->counter, __ATOMIC_ACQUIRE) >> 32) != seen) break;
            CPU_RELAX();
            if ((++spins & 255) == 0 && gpt2_clock_ns() - t0 > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                __atomic_fetch_add(&p->sleeping, 1, __ATOMIC_SEQ_CST);
                while (!__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST) &&
                       (uint32_t)(__atomic_load_n(&p->counter, __ATOMIC_SEQ_CST) >> 32) == seen)
                    pthread_cond_wait(&p->cv, &p->mu);
                __atomic_fetch_sub(&p->sleeping, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&p->mu);
                t0 = gpt2_clock_ns();
            }
        }
        seen = (uint32_t)(__atomic_load_n(&p->counter, __ATOMIC_ACQUIRE) >> 32);
        work(p, seen);
    }
}

cpu_pool *cpu_pool_create(int n_threads)
{
    if (n_threads <= 0) {
        n_threads = cpu_default_threads();
    }
    if (n_threads > 1024) n_threads = 1024;
    cpu_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            cpu_pool_destroy(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
                p->n_threads = i + 1; /* run with the workers that did start */
                break;
            }
        }
    }
    return p;
}

void cpu_pool_destroy(cpu_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->workers)
        for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->run_mu);
    free(p);
}

int cpu_pool_threads(const cpu_pool *p) { return p ? p->n_threads : 1; }

void cpu_pool_run(cpu_pool *p, void (*fn)(void *ctx, int i), void *ctx, int n_tasks)
{
    if (n_tasks <= 0) return;
    if (!p || p->n_threads <= 1 || n_tasks == 1 || tl_in_pool) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    __atomic_store_n(&p->fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&p->ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&p->n_tasks, n_tasks, __ATOMIC_RELAXED);
    __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
    uint32_t gen = (uint32_t)(__atomic_load_n(&p->counter, __ATOMIC_RELAXED) >> 32) + 1;
    __atomic_store_n(&p->counter, (uint64_t)gen << 32, __ATOMIC_SEQ_CST); /* publish */
    if (__atomic_load_n(&p->sleeping, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    tl_in_pool = 1;
    work(p, gen);
    tl_in_pool = 0;
    unsigned spins = 0;
    while (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) != n_tasks) {
        CPU_RELAX();
        if (++spins > 4096) sched_yield(); /* a worker was descheduled mid-task */
    }
    pthread_mutex_unlock(&p->run_mu);
}
