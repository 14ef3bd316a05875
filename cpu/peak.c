/* peak.c - CPU peaks (cpu_peak.h). The FMA loop keeps 8 independent vector accumulators per thread
 * (enough to cover the FMA latency on current cores) and runs about 40 ms per pass. */
#include "cpu_peak.h"
#include "core/clock.h"

#include <stdio.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define FMA_ITERS 5000000

typedef struct fma_job {
    float sink[256];
    double flops_per_task;
    int avx2;
} fma_job;

#ifdef HAVE_X86
__attribute__((target("avx2,fma"))) static float fma_avx2(void)
{
    __m256 a[8], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 8; k++) a[k] = _mm256_set1_ps((float)k);
    for (int i = 0; i < FMA_ITERS; i++)
        for (int k = 0; k < 8; k++) a[k] = _mm256_fmadd_ps(a[k], m, c);
    __m256 s = a[0];
    for (int k = 1; k < 8; k++) s = _mm256_add_ps(s, a[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#endif

static float fma_scalar(void)
{
    float a[8];
    for (int k = 0; k < 8; k++) a[k] = (float)k;
    for (int i = 0; i < FMA_ITERS; i++)
        for (int k = 0; k < 8; k++) a[k] = a[k] * 0.999999f + 1e-7f;
    return a[0] + a[7];
}

static void fma_task(void *ctx, int i)
{
    fma_job *j = ctx;
#ifdef HAVE_X86
    if (j->avx2) {
        j->sink[i & 255] = fma_avx2();
        return;
    }
#endif
    j->sink[i & 255] = fma_scalar();
}

double cpu_measure_fma_gflops(cpu_pool *p)
{
    fma_job j = {0};
#ifdef HAVE_X86
    j.avx2 = cpu_isa_active() != CPU_ISA_SCALAR && cpu_isa_supported(CPU_ISA_AVX2);
#endif
    double lanes = j.avx2 ? 8 : 1;
    int tasks = cpu_pool_threads(p);
    if (tasks < 1) tasks = 1;
    double best = 0;
    for (int pass = 0; pass < 3; pass++) {
        double t = (double)gpt2_clock_ns() / 1e9;
        cpu_pool_run(p, fma_task, &j, tasks);
        t = (double)gpt2_clock_ns() / 1e9 - t;
        double flops = 2.0 * lanes * 8 * FMA_ITERS * tasks;
        if (t > 0 && flops / t / 1e9 > best) best = flops / t / 1e9;
    }
    return best;
}

void cpu_measure_peaks(cpu_pool *p, double *gbs, double *gflops, char *note, size_t notelen)
{
    *gbs = cpu_measure_bandwidth_gbs(p, (size_t)128 << 20);
    *gflops = cpu_measure_fma_gflops(p);
    snprintf(note, notelen, "measured now: read bandwidth over 128 MiB and an FMA loop, %d threads",
             cpu_pool_threads(p));
}
