/* profile.h - per-kernel profiles and traces of the forward pass (docs/PROFILING.md).
 *
 * A session that profiles owns one gpt2_prof; its backend adds an event for every kernel it runs
 * (GPU dispatches from device timestamps moved onto the host clock, CPU nodes from the host clock),
 * the session adds one per step and per sampling, the caller may add its own (tokenize). Times are
 * CLOCK_MONOTONIC microseconds. From the events come the per-kernel table (calls, time, share of
 * the step, GB/s and GFLOP/s from each event's bytes and flops, share of the device's peaks), its
 * JSON form, and a Chrome trace-event file (Perfetto, chrome://tracing).
 */
#ifndef VKG_PROFILE_H
#define VKG_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "graph.h"

/* Where an event happened: the trace shows each on its own track. */
typedef enum gpt2_prof_track {
    PROF_GPU,    /* a dispatch on the device (its timestamps) */
    PROF_SUBMIT, /* a queue submission, submit to fence */
    PROF_CPU,    /* a graph node run on the CPU */
    PROF_HOST,   /* the host thread: steps, sampling, tokenize */
} gpt2_prof_track;

typedef struct gpt2_prof_event {
    char name[32]; /* kernel family (dispatch label, CPU op) or what the host did */
    gpt2_prof_track track;
    int step;       /* step index (0, 1, ...), -1 outside steps */
    double t0_us;   /* start, CLOCK_MONOTONIC us */
    double dur_us;  /* duration */
    double bytes;   /* memory traffic (kernels), 0 if none */
    double flops;   /* arithmetic (kernels) */
    double busy_us; /* GPU: end minus start timestamp of the dispatch itself (dur_us runs on to the
                          next dispatch's start, so the barrier and launch gap after it count) */
} gpt2_prof_event;

typedef struct gpt2_prof_step {
    int n_tokens, n_past; /* the step's shape */
    double t0_us, dur_us; /* host wall time of the whole eval */
} gpt2_prof_step;

typedef struct gpt2_prof {
    gpt2_prof_event *ev; /* every event, in order */
    size_t n_ev, cap_ev;
    gpt2_prof_step *steps; /* one per eval */
    int n_steps, cap_steps;
    int step;            /* the step in progress, or -1 */
    double peak_gbs;     /* device memory bandwidth (copy), 0 unknown */
    double peak_gflops;  /* device FMA rate, 0 unknown */
    char peak_note[512]; /* how the peaks were found (measured, cache file) */
    char backend[16], device[256];
    double gpu_offset_ns; /* host_ns = device_ns + offset (Vulkan) */
    bool gpu_calibrated;
    double origin_us; /* creation time (trace time zero) */
} gpt2_prof;

double gpt2_prof_now_us(void);
gpt2_prof *gpt2_prof_create(void);
void gpt2_prof_free(gpt2_prof *p);
void gpt2_prof_add(gpt2_prof *p, gpt2_prof_track track, const char *name, double t0_us, double dur_us,
                   double bytes, double flops);
void gpt2_prof_step_begin(gpt2_prof *p, int n_tokens, int n_past);
void gpt2_prof_step_end(gpt2_prof *p);

/* Bytes moved (each operand once) and flops of node nd in a step of n tokens after n_past. */
void gpt2_node_cost(const gpt2_hparams *hp, const gpt2_node *nd, int n, int n_past, gpt2_dtype kv_type,
                    double *bytes, double *flops);
/* Kernel family of a CPU node: the op, and for matmuls the matrix ("matmul.qkv"). */
void gpt2_node_family(const gpt2_node *nd, char *out, size_t len);

/* Per-phase sums ("decode": 1-token steps, "prompt": the others). */
typedef struct gpt2_prof_phase {
    const char *name;
    int steps, tokens;
    double kernel_us; /* sum of kernel event times */
    double span_us;   /* sum over steps of first kernel start to last kernel end */
    double wall_us;   /* sum over steps of the host time of the eval */
} gpt2_prof_phase;
/* phase 0 decode, 1 prompt. */
void gpt2_prof_phase_sums(const gpt2_prof *p, int phase, gpt2_prof_phase *out);

/* The markdown table (one per phase with steps) on f. */
void gpt2_prof_print(const gpt2_prof *p, FILE *f);
/* A JSON object {"backend":..,"peaks":..,"phases":[..]}. */
void gpt2_prof_json(const gpt2_prof *p, FILE *f);
/* Chrome trace-event JSON. 0, or -1 with err. */
/* oflags: GPT2_OUT_* (outfile.h). */
int gpt2_prof_trace(const gpt2_prof *p, const char *path, unsigned oflags, char *err, size_t errlen);

#endif
