/* backend.h - what a backend is: something that executes the graph (graph.h) over its own KV cache.
 *
 * The public API (api/api.c, api/batch.c) sees only this interface: one explicit step description
 * (gpt2_step: ids, rows with slot and position, what to return) and one eval entry, with nothing
 * set beforehand. The CPU backend lives in cpu/backend_cpu.c, the Vulkan one in
 * vulkan/backend_vk.c.
 */
#ifndef VKG_BACKEND_H
#define VKG_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "model.h"
#include "sampler.h"

typedef struct gpt2_backend_params {
    int n_threads;           /* CPU threads (<= 0: the physical cores) */
    int n_batch;             /* most tokens one step takes */
    gpt2_dtype kv_type;      /* KV cache element type: GPT2_F32 or GPT2_F16 */
    int device;              /* Vulkan device index, -1 = best */
    const char *device_name; /* Vulkan device by index, UUID prefix or name substring (overrides
                                device when not NULL; vk_match_device) */
    const char *cpu_ops;     /* Vulkan: comma-separated op names forced onto the CPU (embed,
                              layernorm, matmul, gelu, attention, softmax; as VKGPT2_CPU_OPS), or
                              NULL; an unknown name fails creation with GPT2_WHY_BAD_PARAMS */
    bool verbose;            /* notices on stderr */
    bool rerecord;           /* Vulkan, for benchmarks: record every step anew instead of replaying */
    bool gpu_timing;         /* Vulkan, for benchmarks: timestamps around every dispatch, each
                              submit's span added to counters.gpu_ns */
    bool skip_cpu_device;    /* Vulkan: fail (before uploading anything) when the chosen device is a
                              CPU implementation such as lavapipe; the CPU backend is faster */
    int n_slots;             /* KV cache slots: sequences held at once (<= 0: 1); a batched decode
                              step takes up to max(n_batch, n_slots) rows */
} gpt2_backend_params;

/* Counters a backend keeps (reported by --verbose and --json). */
typedef struct gpt2_counters {
    uint64_t decode_cmdbuf_records;  /* times a one-token step was recorded */
    uint64_t prefill_cmdbuf_records; /* times a many-token step was recorded */
    uint64_t batch_cmdbuf_records;   /* times a batched decode step was recorded: once
                                         per width and output kind, then replayed */
    uint64_t batch_steps;            /* batched decode steps run */
    uint64_t chained_steps;          /* decode steps run inside chains (gpt2_step.n_chain > 1) */
    uint64_t gpu_ns;                 /* params.gpu_timing: device time of the submits so far (from
                                         the first dispatch's start to the last one's end each) */
    uint64_t submits;                /* queue submissions */
    uint64_t dispatches_per_token;   /* dispatches in the one-token step */
    uint64_t barriers_per_token;     /* barriers in the one-token step */
    uint64_t readback_bytes;         /* bytes read back from the device in total */
    uint64_t readback_bytes_last;    /* bytes read back by the last step (a chain: per chained step) */
    uint64_t cpu_fallback_nodes;     /* nodes of the last step that ran on the CPU */
    uint64_t validation_messages;    /* Vulkan validation messages so far (0 unless enabled) */
} gpt2_counters;

/* What a step brings back (gpt2_step.out). A "sequence" is a one-sequence step (one pick, or the
 * last row) or each row of a batch (one pick or row of logits per row). */
typedef enum gpt2_step_out {
    GPT2_STEP_NONE,   /* nothing: the step only fills the KV cache (the last GPT2_HEAD_NODES nodes
                         are skipped) */
    GPT2_STEP_LAST,   /* each sequence's last row of logits, into logits */
    GPT2_STEP_ALL,    /* every row's logits ([n][V]), into logits */
    GPT2_STEP_ARGMAX, /* each sequence's argmax (lowest id on ties), into picks */
    GPT2_STEP_SAMPLE, /* each sequence's draw with sample[i] at draw index draw[i] (core/sampler.h;
                         NULL or greedy settings: the argmax), into picks; only where the
                         backend's can_draw accepts every sample[i] */
} gpt2_step_out;

/* Where one row of a step goes: its token is at position pos of KV slot slot, which holds pos
 * cached positions of that sequence. */
typedef struct gpt2_row {
    int slot; /* KV cache slot, 0 .. n_slots - 1 */
    int pos;  /* position, 0 .. n_ctx - 1 */
} gpt2_row;

/* One step, everything a backend needs to run it (no state set beforehand). Its rows take one of
 * two shapes (gpt2_backend_check_step):
 *   one sequence: every row in one slot at consecutive positions (a prompt chunk, or one decode
 *                 token); n <= n_batch;
 *   a batch:      n > 1 rows in distinct slots, each one token of its own sequence (batched
 *                 decode); n <= max(n_batch, n_slots). */
typedef struct gpt2_step {
    int n;                                    /* rows (tokens) */
    const int32_t *ids;                       /* [n] token ids */
    const gpt2_row *rows;                     /* [n] */
    gpt2_step_out out;                        /* what comes back */
    const gpt2_sampler_params *const *sample; /* OUT_SAMPLE: one per sequence (an entry may be NULL:
                                                 argmax), else unused */
    const uint64_t *draw;                     /* OUT_SAMPLE: each sequence's draw index */
    int n_chain;                              /* <= 1: one step. Else a chain of n_chain decode
                                                 steps in one call (one sequence, n == 1, ARGMAX or
                                                 SAMPLE, n_chain <= the backend's max_chain, room
                                                 in the context for every step): step k feeds step
                                                 k - 1's pick at position rows[0].pos + k and draws
                                                 at draw[0] + k; picks[k] gets each pick, -1 for
                                                 the steps after one that picked stop_id, which do
                                                 no work */
    int32_t stop_id;                          /* n_chain > 1: the pick that ends the chain (-1:
                                                 none) */
    const int32_t *const *history;            /* OUT_SAMPLE with a repetition penalty: each
                                                 sequence's tokens before this step's rows (NULL:
                                                 none) */
    const int *n_history;                     /* their lengths */
    float *logits;                            /* OUT_LAST / OUT_ALL: where the rows go */
    int32_t *picks;                           /* OUT_ARGMAX / OUT_SAMPLE: one id per sequence (per
                                                 chained step);
                                                 with OUT_LAST / OUT_ALL, when not NULL, the
                                                 argmax of the last row (one sequence) */
} gpt2_step;

/* Why a backend could not be created (the constructors' *why). */
typedef enum gpt2_backend_why {
    GPT2_WHY_NONE,          /* created */
    GPT2_WHY_BAD_PARAMS,    /* the caller's parameters are wrong (an unknown op in cpu_ops) */
    GPT2_WHY_NO_LOADER,     /* no Vulkan loader (libvulkan) */
    GPT2_WHY_NO_DEVICE,     /* a loader but no Vulkan device, or not the one named */
    GPT2_WHY_DEVICE_FAILED, /* devices, but none usable or none that could be opened */
    GPT2_WHY_CPU_DEVICE,    /* skip_cpu_device and the chosen device runs on the CPU */
    GPT2_WHY_NO_MEMORY,     /* the device (or host) cannot hold the model and its buffers */
    GPT2_WHY_UNSUPPORTED,   /* the model's shape is outside what this backend runs */
} gpt2_backend_why;

/* Which backend it is. */
typedef enum gpt2_backend_kind {
    GPT2_BACKEND_CPU,    /* cpu/backend_cpu.c */
    GPT2_BACKEND_VULKAN, /* vulkan/backend_vk.c */
} gpt2_backend_kind;

typedef struct gpt2_backend gpt2_backend;
struct gpt2_backend {
    gpt2_backend_kind kind;     /* which backend */
    const char *name;           /* "cpu" or "vulkan", for reports */
    const gpt2_model *model;    /* the model it serves */
    gpt2_backend_params params; /* as created */
    size_t weights_bytes;       /* weights it holds (device copies or host mappings) */
    size_t kv_bytes;            /* KV cache */
    size_t scratch_bytes;       /* activations and other working memory */
    gpt2_counters counters;     /* see above */
    char device_name[256];      /* what it runs on, for reports */
    bool failed;                /* the device failed in a step (lost, out of memory): later
                                         steps fail too; a session may move to the CPU (api.c) */
    struct gpt2_prof *prof;     /* when set (core/profile.h), eval adds an event per kernel
                                         of one-sequence steps; set it before the first eval */
    int max_chain;              /* most decode steps one eval may chain (gpt2_step.n_chain;
                                         1: none) */

    /* Runs one step (see gpt2_step). Returns 0, or -1 with a one-line message in err. */
    int (*eval)(gpt2_backend *b, const gpt2_step *st, char *err, size_t errlen);
    /* Whether a GPT2_STEP_SAMPLE step may draw with sp (NULL or greedy settings: always); when not,
     * the caller asks for logits and samples on the host. A pure query. */
    bool (*can_draw)(const gpt2_backend *b, const gpt2_sampler_params *sp);
    /* Copies positions [0, n) of KV slot src into slot dst, every layer (a shared prompt). */
    int (*kv_copy)(gpt2_backend *b, int dst, int src, int n, char *err, size_t errlen);
    void (*destroy)(gpt2_backend *b);
    /* Measures (or reads from a cache) the device's memory bandwidth in GB/s and FMA rate in
     * GFLOP/s, for profiles; note says how. NULL where unknown. Returns 0 or -1. */
    int (*peaks)(gpt2_backend *b, double *gbs, double *gflops, char *note, size_t notelen);
};

/* Whether sp asks for a repetition penalty (which needs the sequence's recent ids). */
static inline bool gpt2_sampler_penalises(const gpt2_sampler_params *sp)
{
    return sp && sp->repeat_penalty != 1.0f && sp->repeat_last_n != 0;
}

/* For backend constructors: sets kind, name, model and params, clamping n_batch to [1, n_ctx],
 * n_slots to >= 1 and an unknown KV type to default_kv. */
void gpt2_backend_init(gpt2_backend *b, gpt2_backend_kind kind, const char *name, const gpt2_model *m,
                       const gpt2_backend_params *p, gpt2_dtype default_kv);
/* Rows of the widest step b takes: max(n_batch, n_slots). */
int gpt2_backend_max_rows(const gpt2_backend *b);

/* The shape of a step that passed gpt2_backend_check_step. */
typedef struct gpt2_step_shape {
    bool batch;   /* a batch (rows in distinct slots) rather than one sequence */
    int n_seq;    /* sequences: 1, or n for a batch */
    int slot;     /* one sequence: its slot */
    int n_past;   /* one sequence: positions cached before the step (rows[0].pos) */
    int out_rows; /* logits rows an OUT_LAST / OUT_ALL step writes */
} gpt2_step_shape;

/* For eval: 0 (and the shape in *shape) when st is a step b can run: one sequence or a batch
 * within the batch and context, ids in the vocabulary, the out buffers it needs given and, for
 * OUT_SAMPLE, every sample[i] accepted by b->can_draw; else -1 with a message. */
int gpt2_backend_check_step(const gpt2_backend *b, const gpt2_step *st, gpt2_step_shape *shape, char *err,
                            size_t errlen);

/* Builds and runs a one-sequence step: ids[0..n) at positions pos.. of KV slot slot. out, logits
 * and picks as in gpt2_step (sp and draw for OUT_SAMPLE, else ignored). */
int gpt2_backend_eval_seq(gpt2_backend *b, int slot, const int32_t *ids, int n, int pos, gpt2_step_out out,
                          float *logits, int32_t *picks, const gpt2_sampler_params *sp, uint64_t draw,
                          char *err, size_t errlen);

/* The constructors: the backend, or NULL with the reason in *why (may be NULL) and a one-line
 * message in err. */
gpt2_backend *gpt2_backend_cpu_create(const gpt2_model *m, const gpt2_backend_params *p,
                                      gpt2_backend_why *why, char *err, size_t errlen);
gpt2_backend *gpt2_backend_vk_create(const gpt2_model *m, const gpt2_backend_params *p, gpt2_backend_why *why,
                                     char *err, size_t errlen);

/* What the public API asks of the backends beyond a model: the host's memory bandwidth in GB/s
 * over a buffer of bytes with n_threads threads (<= 0: the default count), measured by the CPU backend's pool;
 * the Vulkan devices as a table on file (a FILE *), 0 or -1 with err; and their number (0 with a
 * loader but no driver), or -1 with err when Vulkan cannot be used at all. */
double gpt2_backend_cpu_bandwidth(int n_threads, size_t bytes);
/* The CPU thread count that n_threads <= 0 means: the physical cores the process may run on. */
int gpt2_backend_cpu_default_threads(void);
int gpt2_backend_vk_list_devices(void *file, char *err, size_t errlen);
int gpt2_backend_vk_count_devices(char *err, size_t errlen);

#endif
