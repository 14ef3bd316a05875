/* backend.h - what a backend is: something that executes the graph (graph.h) over its own KV cache.
 *
 * The generation loop (generate.c) sees only this interface. The CPU backend lives in
 * cpu/backend_cpu.c, the Vulkan one in vulkan/backend_vk.c.
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
    int n_threads;         /* CPU threads (<= 0: all cores) */
    int n_batch;           /* most tokens one step takes */
    vkg_dtype kv_type;     /* KV cache element type: VKG_F32 or VKG_F16 */
    int device;            /* Vulkan device index, -1 = best */
    const char *device_name; /* Vulkan device by index, UUID prefix or name substring (overrides
                                device when not NULL; vk_match_device) */
    const char *cpu_ops;   /* Vulkan: comma-separated op names forced onto the CPU, or NULL */
    bool verbose;          /* notices on stderr */
    bool rerecord;         /* Vulkan, for benchmarks: record every step anew instead of replaying */
    bool skip_cpu_device;  /* Vulkan: fail (before uploading anything) when the chosen device is a
                              CPU implementation such as lavapipe; the CPU backend is faster */
    int n_slots;           /* KV cache slots: sequences held at once (<= 0: 1); a batched decode
                              step takes up to max(n_batch, n_slots) rows */
} gpt2_backend_params;

/* Counters a backend keeps (reported by --verbose and --json). */
typedef struct gpt2_counters {
    uint64_t decode_cmdbuf_records;   /* times a one-token step was recorded */
    uint64_t prefill_cmdbuf_records;  /* times a many-token step was recorded */
    uint64_t batch_cmdbuf_records;    /* times a batched decode step (eval_rows) was recorded: once
                                         per width and output kind, then replayed */
    uint64_t batch_steps;             /* batched decode steps run */
    uint64_t submits;                 /* queue submissions */
    uint64_t dispatches_per_token;    /* dispatches in the one-token step */
    uint64_t barriers_per_token;      /* barriers in the one-token step */
    uint64_t readback_bytes;          /* bytes read back from the device in total */
    uint64_t readback_bytes_last;     /* bytes read back by the last step */
    uint64_t cpu_fallback_nodes;      /* nodes of the last step that ran on the CPU */
    uint64_t validation_messages;     /* Vulkan validation messages so far (0 unless enabled) */
} gpt2_counters;

typedef struct gpt2_backend gpt2_backend;
struct gpt2_backend {
    const char *name;                 /* "cpu" or "vulkan" */
    const gpt2_model *model;          /* the model it serves */
    gpt2_backend_params params;       /* as created */
    size_t weights_bytes;             /* weights it holds (device copies or host mappings) */
    size_t kv_bytes;                  /* KV cache */
    size_t scratch_bytes;             /* activations and other working memory */
    gpt2_counters counters;           /* see above */
    char device_name[256];            /* what it runs on, for reports */
    bool failed;                      /* the device failed in a step (lost, out of memory): later
                                         steps fail too; a session may move to the CPU (api.c) */
    struct gpt2_prof *prof;           /* when set (core/profile.h), eval adds an event per kernel;
                                         set it before the first eval */
    int slot;                         /* the KV cache slot eval() works on (0 .. n_slots - 1) */

    /* Can this backend run node nd? (The Vulkan backend runs the others on the CPU.) */
    bool (*supports)(const gpt2_backend *b, const gpt2_node *nd);
    /* One step: n tokens (1 <= n <= n_batch) at positions n_past.. (n_past + n <= n_ctx).
     * Writes logits to host memory: n rows when all_logits, else only the last row. If logits is
     * NULL and argmax is not, stores only the argmax of the last row (a backend may compute it on
     * the device and read back 4 bytes). With neither, the step only fills the KV cache (the
     * last GPT2_HEAD_NODES nodes are skipped). Returns 0, or -1 with a one-line message in err. */
    int (*eval)(gpt2_backend *b, const int32_t *ids, int n, int n_past, bool all_logits,
                float *logits, int32_t *argmax, char *err, size_t errlen);
    /* How eval chooses the id it stores in `argmax` when logits is NULL: sp NULL (or greedy
     * settings): the argmax; otherwise a draw with sp at draw index step (core/sampler.h). Returns
     * false, leaving the argmax in force, when this backend cannot draw with sp itself; the caller
     * then asks for logits and samples on the host. */
    bool (*set_pick)(gpt2_backend *b, const gpt2_sampler_params *sp, uint64_t step);
    /* A batched decode step: n rows (1 <= n <= max(n_batch, n_slots)), each one token of its own
     * sequence: row r feeds ids[r] at position pos[r] of KV slot slot[r] (the slots distinct, each
     * holding pos[r] cached positions; pos[r] < n_ctx). The weights are read once for all rows;
     * attention runs per row over its own slot and length. Writes every row's logits ([n][V]) when
     * logits is not NULL, else each row's pick to picks[r]: the argmax, or a draw as set_pick_rows
     * last asked. Returns 0, or -1 with a one-line message in err. */
    int (*eval_rows)(gpt2_backend *b, const int32_t *ids, const int *slot, const int *pos, int n,
                     float *logits, int32_t *picks, char *err, size_t errlen);
    /* How eval_rows picks when logits is NULL: row r with sp[r] (NULL or greedy: argmax) at draw
     * index step[r]. Returns false (argmax for all rows stays in force) when this backend cannot
     * draw every row itself; the caller then asks for logits. sp NULL: argmax everywhere. */
    bool (*set_pick_rows)(gpt2_backend *b, const gpt2_sampler_params *const *sp,
                          const uint64_t *step, int n);
    /* Copies positions [0, n) of KV slot src into slot dst, every layer (a shared prompt). */
    int (*kv_copy)(gpt2_backend *b, int dst, int src, int n, char *err, size_t errlen);
    void (*destroy)(gpt2_backend *b);
    /* Measures (or reads from a cache) the device's memory bandwidth in GB/s and FMA rate in
     * GFLOP/s, for profiles; note says how. NULL where unknown. Returns 0 or -1. */
    int (*peaks)(gpt2_backend *b, double *gbs, double *gflops, char *note, size_t notelen);
};

/* For backend constructors: sets name, model and params, clamping n_batch to [1, n_ctx] and an
 * unknown KV type to default_kv. */
void gpt2_backend_init(gpt2_backend *b, const char *name, const gpt2_model *m,
                       const gpt2_backend_params *p, vkg_dtype default_kv);
/* For eval: 0 if n tokens at n_past fit the batch and context and every id is in the vocabulary,
 * else -1 with a message. */
int gpt2_backend_check_step(const gpt2_backend *b, const int32_t *ids, int n, int n_past, char *err,
                            size_t errlen);

/* For eval_rows: n rows within 1..max_rows, ids in the vocabulary, every (slot, position) inside
 * the cache and no slot used twice; else -1 with a message. */
int gpt2_backend_check_rows(const gpt2_backend *base, const int32_t *ids, const int *slot,
                            const int *pos, int n, int max_rows, char *err, size_t errlen);

gpt2_backend *gpt2_backend_cpu_create(const gpt2_model *m, const gpt2_backend_params *p, char *err,
                                      size_t errlen);
/* NULL with a reason in err when Vulkan, a driver or a device is missing. */
gpt2_backend *gpt2_backend_vk_create(const gpt2_model *m, const gpt2_backend_params *p, char *err,
                                     size_t errlen);

/* What the public API asks of the backends beyond a model: the host's memory bandwidth in GB/s
 * over a buffer of bytes with n_threads threads (<= 0: all), measured by the CPU backend's pool;
 * the Vulkan devices as a table on file (a FILE *), 0 or -1 with err; and their number (0 with a
 * loader but no driver), or -1 with err when Vulkan cannot be used at all. */
double gpt2_backend_cpu_bandwidth(int n_threads, size_t bytes);
int gpt2_backend_vk_list_devices(void *file, char *err, size_t errlen);
int gpt2_backend_vk_count_devices(char *err, size_t errlen);

#endif
