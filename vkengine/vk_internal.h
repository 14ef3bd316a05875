/* vk_internal.h - the engine's state, shared by the files of vkengine/ (not a public header). */
#ifndef VKG_VK_INTERNAL_H
#define VKG_VK_INTERNAL_H

#include "vk_engine.h"
#include "vk_select.h"

#define VKE_BLOCK_BYTES_DEVICE ((VkDeviceSize)256 << 20) /* default device-local block */
#define VKE_BLOCK_BYTES_HOST ((VkDeviceSize)64 << 20)    /* default host-visible block */
#define VKE_MEM_ALIGN ((VkDeviceSize)256)                /* every sub-allocation's alignment */
#define VKE_STAGING_BYTES ((VkDeviceSize)8 << 20)        /* staging buffer for uploads/downloads */
#define VKE_MAX_SPEC 32                                  /* specialization constants per pipeline */

/* A free range inside a block (sorted by offset, never adjacent to another: they merge). */
typedef struct vk_free_range {
    VkDeviceSize offset, size;
} vk_free_range;

typedef struct vk_block {
    VkDeviceMemory memory; /* VK_NULL_HANDLE: slot unused */
    VkBuffer buffer;       /* one buffer over the whole block */
    VkDeviceSize size;
    VkDeviceAddress addr;
    void *map; /* host-visible blocks stay mapped */
    vk_mem_kind kind;
    VkDeviceSize used;   /* bytes handed out */
    vk_free_range *free; /* free ranges, sorted by offset */
    int n_free, cap_free;
} vk_block;

struct vk_pipeline {
    VkPipeline pipeline;
    VkPipelineLayout layout; /* the engine's one layout */
    char name[64];
    uint32_t spec[VKE_MAX_SPEC];
    int n_spec;
    vk_pipeline_opts opts; /* subgroup requirements it was created with */
    struct vk_pipeline *next;
};

struct vk_engine {
    vk_caps caps;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    int validation_messages; /* warnings + errors reported by the validation layer */
    VkPhysicalDevice phys;
    VkDevice device;
    uint32_t queue_family;
    VkQueue queue;
    uint32_t timestamp_valid_bits;
    uint32_t device_id; /* PCI device id (checked in the pipeline cache header) */
    VkPhysicalDeviceMemoryProperties mem_props;

    /* memory */
    vk_block *blocks;
    int n_blocks;
    uint64_t device_bytes; /* sub-allocated bytes in device-local blocks */
    vk_mem staging;        /* host-visible, VKE_STAGING_BYTES, allocated on first use */
    bool have_staging;

    /* one-off transfer commands (uploads, downloads, fills) */
    VkCommandPool pool;
    VkCommandBuffer xfer_cmd;
    VkFence xfer_fence;

    /* pipelines */
    VkPipelineLayout layout;
    VkPipelineCache pipeline_cache;
    vk_pipeline *pipelines;
    char cache_path[1024]; /* where the pipeline cache is saved; "" when nowhere */

    /* waits */
    uint64_t fence_timeout_ns; /* limit of every fence wait (vk_fence_timeout_ns) */
    bool hung;                 /* a wait timed out: the device is treated as lost */
    bool xfer_pending;         /* the transfer whose wait timed out may still run */
    /* emulated traits (VKGPT2_EMULATE, vk_select.h) */
    vk_emulate emu; /* what the engine emulates beyond the caps (memory, ticks) */

    int n_stuck; /* submissions that never finished: their objects, and the
                                   device, are left alone at destruction rather than freed
                                   while the GPU may still use them */
};

/* Everything probed about one physical device (device.c; printed by devices.c). */
typedef struct vk_probe {
    vk_caps caps;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    char driver_name[VK_MAX_DRIVER_NAME_SIZE];
    char driver_info[VK_MAX_DRIVER_INFO_SIZE];
    uint32_t subgroup_ops;    /* VkSubgroupFeatureFlags */
    uint32_t subgroup_stages; /* VkShaderStageFlags */
    uint32_t subgroup_min, subgroup_max;
    bool has_compute_queue;
    uint32_t queue_family;         /* a compute queue family */
    uint32_t timestamp_valid_bits; /* of that family */
    /* features the device has (enabled when present) */
    bool bda, int64, int16, storage8, scalar_layout, size_control, full_subgroups, maintenance4;
    bool memory_model;                        /* vulkanMemoryModel */
    bool ext_size_control;                    /* VK_EXT_subgroup_size_control (Vulkan 1.2 devices) */
    bool ext_portability;                     /* VK_KHR_portability_subset must then be enabled */
    uint32_t coopmat_m, coopmat_n, coopmat_k; /* an f16 x f16 -> f32 NV shape, 0 if none */
} vk_probe;

/* Creates an instance (validation as asked by the environment when e is given, else none) after
 * loading the loader. Returns 0 or -1 with err. */
int vk_instance_create(vk_engine *e, VkInstance *out, char *err, size_t errlen);
/* With VKGPT2_KEEP_DRIVERS_LOADED=1: keeps the drivers loaded for the life of the process (see
 * device.c); otherwise nothing. */
void vk_keep_drivers_loaded(void);
/* Fills p for phys (the instance's functions must be loaded). */
void vk_probe_device(VkPhysicalDevice phys, vk_probe *p);
/* Why phys cannot run the engine, or NULL when it can. */
const char *vk_probe_unusable(const vk_probe *p);

/* Formats "what: VK_ERROR_...: words" into err. */
void vk_set_err(char *err, size_t errlen, const char *what, VkResult r);

/* memory.c */
void vk_mem_destroy_all(vk_engine *e);

/* pipeline.c */
int vk_pipelines_init(vk_engine *e, char *err, size_t errlen);
void vk_pipelines_destroy(vk_engine *e);

#endif
