/* vk_profile.h - profiling glue of the Vulkan backend (docs/PROFILING.md): turns a timed run of a
 * recorded sequence into profile events, and measures the device's peaks. */
#ifndef VKG_VK_PROFILE_H
#define VKG_VK_PROFILE_H

#include "core/profile.h"
#include "vk_engine.h"

/* After one segment of a step ran (host_t0_us: just before its submit): a GPU sequence adds one
 * event per timed dispatch (on the host clock through the calibrated offset) and one for the
 * submission; a CPU node (seq NULL) adds one event for the node. */
void vk_prof_segment(gpt2_prof *p, vk_engine *e, vk_seq *seq, const gpt2_node *cpu_node, double host_t0_us,
                     int n, int n_past, const gpt2_hparams *hp, gpt2_dtype kv_type);

/* Memory bandwidth (GB/s: the better of a copy, read + write, and a read-only pass) and FMA rate (GFLOP/s) of the device, measured by the
 * peak_copy and peak_fma shaders with timestamps, cached in peaks-<pipelineCacheUUID>.txt beside
 * the pipeline cache. Returns 0, or -1 (no timestamps, no memory). */
int vk_measure_peaks(vk_engine *e, double *gbs, double *gflops, char *note, size_t notelen);

#endif
