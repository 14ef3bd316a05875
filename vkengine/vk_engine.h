/* vk_engine.h - the Vulkan engine: device, memory, pipelines, recorded command sequences.
 *
 * Vulkan is loaded at run time through volk, so a machine without a loader, driver or device still
 * runs (vk_engine_create fails with a message and callers fall back to the CPU).
 *
 * Buffers are reached from shaders by buffer device address (VK_KHR_buffer_device_address, core in
 * 1.2): every kernel takes its tensors as 64-bit addresses in push constants. That sidesteps
 * maxStorageBufferRange (lavapipe binds at most 128 MiB per descriptor, yet 124M's f32 wte is 154 MB)
 * and makes a recorded command buffer free of descriptor sets, so it can be replayed as is.
 * Memory comes from few large blocks (each <= maxMemoryAllocationSize) that we sub-allocate.
 *
 * Typical use:
 *     vk_engine *e; char err[256];
 *     if (vk_engine_create(&e, -1, err, sizeof err)) { fprintf(stderr, "%s\n", err); ... }
 *     vk_mem w; vk_mem_alloc(e, &w, bytes, VKE_MEM_DEVICE, err, sizeof err);
 *     vk_upload(e, &w, 0, host_ptr, bytes);
 *     vk_seq *s = vk_seq_create(e, 64);
 *     vk_seq_begin(s);
 *     vk_seq_dispatch(s, vk_pipeline_get(e, "layernorm", NULL, 0), &pc, sizeof pc, n, 1, 1, "ln");
 *     vk_seq_barrier(s);               // next dispatch reads what this one wrote
 *     vk_seq_end(s);
 *     vk_seq_run(s);                   // submit and wait; replay as often as needed
 */
#ifndef VKG_VK_ENGINE_H
#define VKG_VK_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <volk.h>

/* An engine and everything made from it are used from one thread at a time. */
typedef struct vk_engine vk_engine;

/* What the chosen device can do; probed, never assumed. */
typedef struct vk_caps {
    char name[256];              /* deviceName */
    char driver[256];            /* driverName + driverInfo */
    VkPhysicalDeviceType type;   /* discrete, integrated, virtual, cpu */
    uint32_t api_version;        /* VkPhysicalDeviceProperties.apiVersion */
    uint32_t vendor_id;          /* PCI vendor */
    uint8_t uuid[VK_UUID_SIZE];  /* pipelineCacheUUID (keys the pipeline cache) */
    uint32_t driver_version;     /* raw driverVersion */
    uint32_t subgroup_size;      /* default subgroup size */
    bool subgroup_arith;         /* subgroupAdd etc. in compute shaders */
    bool fp16;                   /* shaderFloat16 */
    bool int8;                   /* shaderInt8 */
    bool storage16;              /* storageBuffer16BitAccess */
    bool coopmat_nv;             /* VK_NV_cooperative_matrix with an f16 x f16 -> f32 shape */
    bool coopmat_khr;            /* VK_KHR_cooperative_matrix with an f16 x f16 -> f32 subgroup
                                       shape, enabled (needs Vulkan 1.3, vulkanMemoryModel and
                                       headers >= 1.3.255 at build time; else false) */
    bool timestamps;             /* timestampComputeAndGraphics */
    bool cond_render;            /* VK_EXT_conditional_rendering enabled: dispatches between
                                       vk_seq_cond_begin and vk_seq_cond_end are skipped when the
                                       predicate word is 0 */
    double timestamp_period_ns;  /* ns per timestamp tick */
    uint64_t max_storage_range;  /* maxStorageBufferRange */
    uint64_t max_alloc;          /* maxMemoryAllocationSize */
    uint32_t max_shared;         /* maxComputeSharedMemorySize */
    uint32_t max_wg_invocations; /* maxComputeWorkGroupInvocations */
    uint32_t max_wg_count[3];    /* maxComputeWorkGroupCount */
    uint64_t device_local_bytes; /* size of the largest device-local heap */
    /* added by the engine implementation: */
    uint32_t subgroup_min, subgroup_max;                  /* subgroup size range (both = subgroup_size without
                                            subgroup size control) */
    bool subgroup_size_control;                           /* subgroupSizeControl enabled */
    uint32_t coopmat_m, coopmat_n, coopmat_k;             /* the NV f16 x f16 -> f32 shape (0 if none) */
    uint32_t coopmat_khr_m, coopmat_khr_n, coopmat_khr_k; /* the KHR one (16x16x16 preferred) */
    bool full_subgroups;                                  /* computeFullSubgroups enabled */
    bool memory_model;                                    /* vulkanMemoryModel with device scope, enabled */
    uint32_t max_wg_subgroups;                            /* maxComputeWorkgroupSubgroups (0: not reported) */
    uint32_t max_wg_size[3];                              /* maxComputeWorkGroupSize */
    uint64_t max_buffer;               /* maxBufferSize (0: not reported, no maintenance4) */
    uint64_t max_block;                /* the largest allocation: vk_block_limit(max_alloc, max_buffer) */
    uint8_t device_uuid[VK_UUID_SIZE]; /* deviceUUID (what --device may name by prefix) */
    char emulated[96];                 /* VKGPT2_EMULATE traits applied to these caps ("": none) */
} vk_caps;

/* Creates instance and device. device_index < 0: the best device (discrete > integrated > virtual
 * > cpu, then more device-local memory, then more features). Validation layers are enabled when
 * VKGPT2_VALIDATION=1 (see vk_validation_messages).
 * Returns 0, or -1 with a one-line reason in err (no loader, no driver, no device, ...). */
int vk_engine_create(vk_engine **out, int device_index, char *err, size_t errlen);
/* The same with the device named by a string (NULL or "": the best device): an index, a deviceUUID
 * prefix in hex or a unique substring of the name (vk_match_device). Candidates are tried best
 * first (vk_rank_devices) and one whose vkCreateDevice fails gives way to the next; a named device
 * is the only candidate. */
int vk_engine_create_named(vk_engine **out, const char *device, char *err, size_t errlen);
/* The device as the pair of fields that vkg_session_params and the developer tools take: by name
 * (vk_engine_create_named) when name is not NULL, else by index (vk_engine_create). */
int vk_engine_create_sel(vk_engine **out, int device_index, const char *name, char *err, size_t errlen);
void vk_engine_destroy(vk_engine *e);
const vk_caps *vk_engine_caps(const vk_engine *e);
VkDevice vk_engine_device(const vk_engine *e);

/* Prints every device with its properties (for `vkgpt2 devices`). Returns 0, or -1 with err. */
int vk_list_devices(FILE *out, char *err, size_t errlen);
/* Number of Vulkan devices (0 with a working loader but no driver), or -1 with err when Vulkan
 * cannot be used at all (no loader). */
int vk_count_devices(char *err, size_t errlen);

/* Number of validation messages (warnings and errors) seen since creation. */
int vk_validation_messages(const vk_engine *e);

/* The limit of every fence wait, in ns (VKGPT2_FENCE_TIMEOUT_MS, see vk_fence_timeout_ns); a wait
 * that reaches it fails with VK_TIMEOUT and the device is treated as lost from then on. */
uint64_t vk_engine_fence_timeout_ns(const vk_engine *e);

/* Words for a VkResult ("VK_ERROR_OUT_OF_DEVICE_MEMORY: out of device memory"). */
const char *vk_result_str(VkResult r);

/* ---- memory ---- */
typedef enum vk_mem_kind {
    VKE_MEM_DEVICE = 0, /* device-local; filled by vk_upload or by shaders */
    VKE_MEM_HOST = 1,   /* host-visible, coherent, mapped; for small per-step parameters and
                            readbacks of results (host reads and writes through .map) */
} vk_mem_kind;

typedef struct vk_mem {
    VkBuffer buffer;      /* the block's buffer */
    VkDeviceSize offset;  /* offset of this allocation in it */
    VkDeviceSize size;    /* bytes */
    VkDeviceAddress addr; /* device address of the first byte */
    void *map;            /* host pointer for VKE_MEM_HOST, else NULL */
    int block;            /* owning block (internal) */
} vk_mem;

/* Sub-allocates size bytes, 256-byte aligned. Returns 0, or -1 with err (e.g. out of device memory,
 * naming the size asked for and the heap size). */
int vk_mem_alloc(vk_engine *e, vk_mem *m, VkDeviceSize size, vk_mem_kind kind, char *err, size_t errlen);
void vk_mem_free(vk_engine *e, vk_mem *m);
/* Bytes currently allocated in device-local blocks. */
uint64_t vk_mem_device_bytes(const vk_engine *e);

/* Blocking copies through a staging buffer. Return 0 or -1 (message on stderr). */
int vk_upload(vk_engine *e, const vk_mem *dst, VkDeviceSize off, const void *src, size_t n);
int vk_download(vk_engine *e, const vk_mem *src, VkDeviceSize off, void *dst, size_t n);
/* Fills n bytes with zero. */
int vk_fill_zero(vk_engine *e, const vk_mem *dst, VkDeviceSize off, size_t n);
/* Size of the staging buffer: transfers larger than this go in several chunks. */
size_t vk_staging_bytes(void);

/* ---- pipelines ---- */
typedef struct vk_pipeline vk_pipeline;
/* Every pipeline has one push-constant range of VKE_PUSH_BYTES bytes and no descriptor sets. */
#define VKE_PUSH_BYTES 128

/* Returns the compute pipeline for the embedded shader `name` (file shaders/<name>.comp, or a
 * variant name the shader build defines) with specialization constants spec[i] at constant_id i.
 * Built once per (name, spec) and kept; NULL with a message on stderr if the shader is unknown or
 * creation fails. */
vk_pipeline *vk_pipeline_get(vk_engine *e, const char *name, const uint32_t *spec, int n_spec);
/* How a pipeline is created beyond its specialization constants (zero: as vk_pipeline_get). */
typedef struct vk_pipeline_opts {
    uint32_t required_subgroup_size; /* > 0: chain VkPipelineShaderStageRequiredSubgroupSizeCreateInfo
                                        (needs caps.subgroup_size_control, within min..max) */
    bool full_subgroups;             /* VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT
                                        (needs caps.full_subgroups) */
} vk_pipeline_opts;
/* vk_pipeline_get with opts (NULL: none); pipelines are kept per (name, spec, opts). NULL with a
 * message on stderr where the device cannot honour opts. */
vk_pipeline *vk_pipeline_get_opts(vk_engine *e, const char *name, const uint32_t *spec, int n_spec,
                                  const vk_pipeline_opts *opts);
/* Path of the on-disk pipeline cache ($XDG_CACHE_HOME/vkgpt2/<pipelineCacheUUID>-<driverVersion>.bin,
 * else under $HOME/.cache); written by vk_engine_destroy. "" when there is nowhere to keep it. */
const char *vk_pipeline_cache_path(const vk_engine *e);
/* A pipeline over the engine's layout from SPIR-V the caller holds (a shader compiled at run time),
 * specialization constant spec_values[i] at constant_id spec_ids[i]; named name (at most 63 bytes
 * kept) in messages. Not kept by the engine: the caller owns *pl and frees it with
 * vk_pipeline_release before vk_engine_destroy. 0, or -1 with err. */
int vk_pipeline_from_spirv(vk_engine *e, const uint32_t *code, size_t n_words, const uint32_t *spec_ids,
                           const uint32_t *spec_values, int n_spec, const char *name, vk_pipeline *pl,
                           char *err, size_t errlen);
void vk_pipeline_release(vk_engine *e, vk_pipeline *pl);
/* Looks up an embedded SPIR-V module: 0 if found. */
int vk_spirv_find(const char *name, const uint32_t **code, size_t *bytes);

/* ---- recorded command sequences ---- */
typedef struct vk_seq vk_seq;
/* A primary command buffer with a fence and a timestamp pool for up to max_dispatches dispatches. */
vk_seq *vk_seq_create(vk_engine *e, int max_dispatches);
void vk_seq_destroy(vk_seq *s);
void vk_seq_begin(vk_seq *s); /* resets and starts recording */
/* Records a dispatch; label names it in profiles. push is copied (at most VKE_PUSH_BYTES). */
void vk_seq_dispatch(vk_seq *s, vk_pipeline *p, const void *push, size_t push_bytes, uint32_t gx, uint32_t gy,
                     uint32_t gz, const char *label);
/* Dispatches recorded between vk_seq_cond_begin and vk_seq_cond_end run only when the uint32 at
 * buf + off is not 0 when the block starts (VK_EXT_conditional_rendering; the word may be written by
 * an earlier dispatch of the same sequence). Copies and barriers inside always run. Without
 * caps.cond_render the dispatches always run. Blocks do not nest. */
void vk_seq_cond_begin(vk_seq *s, const vk_mem *buf, VkDeviceSize off);
void vk_seq_cond_end(vk_seq *s);
/* Records a dispatch whose group counts are read by the GPU from buf at off (VkDispatchIndirectCommand). */
void vk_seq_dispatch_indirect(vk_seq *s, vk_pipeline *p, const void *push, size_t push_bytes,
                              const vk_mem *buf, VkDeviceSize off, const char *label);
/* Compute-to-compute memory barrier: makes every earlier shader write visible to later reads. */
void vk_seq_barrier(vk_seq *s);
/* Copies n bytes between buffers inside the sequence (with the barriers it needs around it). */
void vk_seq_copy(vk_seq *s, const vk_mem *src, VkDeviceSize src_off, const vk_mem *dst, VkDeviceSize dst_off,
                 VkDeviceSize n);
int vk_seq_end(vk_seq *s);    /* 0 or -1 */
int vk_seq_submit(vk_seq *s); /* submits; 0 or -1 (e.g. device lost) */
int vk_seq_wait(vk_seq *s);   /* waits for the last submit; 0 or -1 */
int vk_seq_run(vk_seq *s);    /* submit + wait */
/* Counters of what was recorded: dispatches (direct and indirect) and vk_seq_barrier calls (the
 * barriers the engine adds by itself around copies, indirect dispatches and at the start and end
 * of a sequence are not counted). */
int vk_seq_dispatches(const vk_seq *s);
int vk_seq_barriers(const vk_seq *s);
/* After a run with timestamps enabled (vk_seq_set_timing before begin): GPU time of dispatch i in
 * ms and its label. Returns the number of dispatches timed (0 where the device has no timestamps). */
void vk_seq_set_timing(vk_seq *s, bool on);
int vk_seq_timings(const vk_seq *s, double *ms, const char **labels, int max);
/* Profiling (docs/PROFILING.md). The op wrappers attach to the dispatch they just recorded the
 * bytes it moves and the flops it does: bytes + bytes_per_past * n_past (likewise flops), n_past
 * being the step's cached positions at run time (attention grows with it). A dispatch that was not
 * recorded (empty grid) takes no cost. vk_seq_costs evaluates them for dispatch 0.. in recording
 * order (the order of vk_seq_timings when timing is on). */
void vk_seq_set_cost(vk_seq *s, double bytes, double flops, double bytes_per_past, double flops_per_past);
int vk_seq_costs(const vk_seq *s, int n_past, double *bytes, double *flops, int max);
/* After a timed run: the start of each timed dispatch on the device clock, in ns. */
int vk_seq_timestamps(const vk_seq *s, double *t0_ns, int max);
/* Calibrates the device clock against CLOCK_MONOTONIC once: host_ns = device_ns + *offset_ns
 * (a timestamp written by a tiny submission against the midpoint of the host clock around it).
 * 0, or -1 (no timestamps; offset 0). */
int vk_engine_clock_offset(vk_engine *e, double *offset_ns);

#endif
