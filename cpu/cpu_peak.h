/* cpu_peak.h - the CPU's peaks for profiles and benchmarks: memory read bandwidth
 * (cpu_measure_bandwidth_gbs) and the FMA rate of every pool thread running independent chains. */
#ifndef VKG_CPU_PEAK_H
#define VKG_CPU_PEAK_H

#include "cpu_ops.h"

/* Single-precision FMA throughput of the pool's threads in GFLOP/s (an FMA counts 2). */
double cpu_measure_fma_gflops(cpu_pool *p);
/* Both peaks; note says how they were measured. */
void cpu_measure_peaks(cpu_pool *p, double *gbs, double *gflops, char *note, size_t notelen);

#endif
