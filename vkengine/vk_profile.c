/* vk_profile.c - see vk_profile.h. */
#include "vk_profile.h"
#include "core/outfile.h"
#include "vk_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROF_MAX 4096 /* dispatches read back per sequence */

void vk_prof_segment(gpt2_prof *p, vk_engine *e, vk_seq *seq, const gpt2_node *cpu_node, double host_t0_us,
                     int n, int n_past, const gpt2_hparams *hp, gpt2_dtype kv_type)
{
    double now = gpt2_prof_now_us();
    if (!seq) {
        double bytes, flops;
        char fam[32];
        gpt2_node_cost(hp, cpu_node, n, n_past, kv_type, &bytes, &flops);
        gpt2_node_family(cpu_node, fam, sizeof fam);
        gpt2_prof_add(p, PROF_CPU, fam, host_t0_us, now - host_t0_us, bytes, flops);
        return;
    }
    if (!p->gpu_calibrated) {
        vk_engine_clock_offset(e, &p->gpu_offset_ns);
        p->gpu_calibrated = true;
    }
    gpt2_prof_add(p, PROF_SUBMIT, "submit", host_t0_us, now - host_t0_us, 0, 0);
    static double ms[PROF_MAX], t0[PROF_MAX], bytes[PROF_MAX], flops[PROF_MAX];
    static const char *labels[PROF_MAX];
    int nt = vk_seq_timings(seq, ms, labels, PROF_MAX);
    vk_seq_timestamps(seq, t0, PROF_MAX);
    int nc = vk_seq_costs(seq, n_past, bytes, flops, PROF_MAX);
    /* A dispatch's time runs from its start to the start of the next one: the barrier and the launch
     * after it belong to it, and the times of a sequence add up to its first-to-last span. */
    for (int i = 0; i < nt; i++) {
        double busy = ms[i] * 1e3, slot = i + 1 < nt ? (t0[i + 1] - t0[i]) / 1e3 : busy;
        if (slot < busy) slot = busy;
        gpt2_prof_add(p, PROF_GPU, labels[i], (t0[i] + p->gpu_offset_ns) / 1e3, slot, i < nc ? bytes[i] : 0,
                      i < nc ? flops[i] : 0);
        p->ev[p->n_ev - 1].busy_us = busy;
    }
}

/* ---- peaks ---- */

static void cache_file(vk_engine *e, char *out, size_t len)
{
    out[0] = 0;
    const char *pc = vk_pipeline_cache_path(e);
    const char *slash = pc ? strrchr(pc, '/') : NULL;
    if (!slash) return;
    const uint8_t *u = vk_engine_caps(e)->uuid;
    char hex[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", u[i]);
    snprintf(out, len, "%.*s/peaks-%s.txt", (int)(slash - pc), pc, hex);
}

/* Best time in ms of `reps` runs of one dispatch, or -1. */
static double time_dispatch(vk_engine *e, vk_pipeline *pl, const void *push, size_t push_bytes,
                            uint32_t groups, int reps)
{
    vk_seq *s = vk_seq_create(e, 1);
    if (!s) return -1;
    vk_seq_set_timing(s, true);
    vk_seq_begin(s);
    vk_seq_dispatch(s, pl, push, push_bytes, groups, 1, 1, "peak");
    double best = -1;
    if (vk_seq_end(s) == 0) {
        for (int r = 0; r < reps; r++) {
            double ms;
            if (vk_seq_run(s) || vk_seq_timings(s, &ms, NULL, 1) != 1) break;
            if (best < 0 || ms < best) best = ms;
        }
    }
    vk_seq_destroy(s);
    return best;
}

int vk_measure_peaks(vk_engine *e, double *gbs, double *gflops, char *note, size_t notelen)
{
    *gbs = *gflops = 0;
    char path[1200];
    cache_file(e, path, sizeof path);
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (f) {
        double a = 0, b = 0;
        int ok = fscanf(f, "bw_gbs %lf fma_gflops %lf", &a, &b) == 2 && a > 0 && b > 0;
        fclose(f);
        if (ok) {
            *gbs = a;
            *gflops = b;
            snprintf(note, notelen, "peak_copy/peak_fma shaders, cached in %s", path);
            return 0;
        }
    }
    if (!vk_engine_caps(e)->timestamps) {
        snprintf(note, notelen, "unknown: the device has no timestamps");
        return -1;
    }
    /* Copy: 1 GiB to 1 GiB (less on a small heap: vk_peak_copy_bytes), best of 5. Far more than
     * any L2 (an H200 has 50 MB), so the figure is memory bandwidth, not cache bandwidth. */
    const uint32_t wg = 256;
    const vk_caps *caps = vk_engine_caps(e);
    size_t bytes = (size_t)vk_peak_copy_bytes(caps->device_local_bytes, caps->max_block);
    vk_mem a = {0}, b = {0}, o = {0};
    char err[256];
    int rc = -1;
    if (vk_mem_alloc(e, &a, bytes, VKE_MEM_DEVICE, err, sizeof err) ||
        vk_mem_alloc(e, &b, bytes, VKE_MEM_DEVICE, err, sizeof err) ||
        vk_mem_alloc(e, &o, (size_t)1 << 20, VKE_MEM_DEVICE, err, sizeof err)) {
        snprintf(note, notelen, "unknown: %s", err);
        goto out;
    }
    vk_fill_zero(e, &a, 0, bytes);
    struct {
        VkDeviceAddress dst, src;
        uint32_t count, mode;
    } pcopy = {b.addr, a.addr, (uint32_t)(bytes / 16), 0};
    uint32_t spec[1] = {wg};
    vk_pipeline *pl = vk_pipeline_get(e, "peak_copy", spec, 1);
    uint32_t groups = (uint32_t)(bytes / 16 / wg / 16); /* 16 vec4s per invocation */
    if (groups > 65535) groups = 65535;
    double ms = pl ? time_dispatch(e, pl, &pcopy, sizeof pcopy, groups, 5) : -1;
    if (ms > 0) *gbs = 2.0 * (double)bytes / (ms * 1e6);
    pcopy.mode = 1; /* read only: the better of the two is the peak */
    ms = pl ? time_dispatch(e, pl, &pcopy, sizeof pcopy, groups, 5) : -1;
    if (ms > 0 && (double)bytes / (ms * 1e6) > *gbs) *gbs = (double)bytes / (ms * 1e6);
    /* FMA: (1 << 20) / 4 invocations... as many as fit 1 MiB of output; iterations grow until a
     * dispatch takes 20 ms. */
    struct {
        VkDeviceAddress out;
        uint32_t iters;
        float m;
    } pf = {o.addr, 16, 0.999999f};
    vk_pipeline *pq = vk_pipeline_get(e, "peak_fma", spec, 1);
    uint32_t fgroups = (uint32_t)(((size_t)1 << 20) / 4 / wg);
    for (int k = 0; pq && k < 12; k++) {
        double t = time_dispatch(e, pq, &pf, sizeof pf, fgroups, 3);
        if (t <= 0) break;
        double flops = (double)fgroups * wg * 8 * 4 * 2 * pf.iters;
        if (flops / (t * 1e6) > *gflops) *gflops = flops / (t * 1e6);
        if (t >= 20) break;
        pf.iters *= 4;
    }
    if (*gbs > 0 && *gflops > 0) {
        rc = 0;
        snprintf(note, notelen, "peak_copy (best of copy and read) / peak_fma shaders, measured now%s%s",
                 path[0] ? ", cached in " : "", path);
        if (path[0]) { /* the cache directory may not exist before the first pipeline cache save */
            char dir[1200];
            snprintf(dir, sizeof dir, "%s", path);
            char *sl = strrchr(dir, '/');
            if (sl) {
                *sl = 0;
                char *up = strrchr(dir, '/');
                if (up) {
                    *up = 0;
                    mkdir(dir, 0755);
                    *up = '/';
                }
                mkdir(dir, 0755);
            }
        }
        gpt2_out co; /* the cache: replaced whole or not at all (core/outfile.h) */
        if (path[0] && gpt2_out_open(&co, path, 0, NULL, 0) == 0) {
            fprintf(co.f, "bw_gbs %.3f fma_gflops %.3f\n", *gbs, *gflops);
            gpt2_out_close(&co, NULL, 0);
        }
    } else {
        snprintf(note, notelen, "unknown: the peak shaders did not run");
    }
out:
    if (a.size) vk_mem_free(e, &a);
    if (b.size) vk_mem_free(e, &b);
    if (o.size) vk_mem_free(e, &o);
    return rc;
}
