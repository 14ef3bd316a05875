/* vk_select.h - the engine's device-dependent choices as pure functions of plain structs: the
 * cooperative-matrix shape and the gate in front of the coopmat kernels, the matmul variant and the
 * accuracy each variant promises, device ranking and --device style matching, the allocation limit,
 * the fence timeout, the argmax workgroup and the size of the bandwidth probe.
 *
 * Nothing here calls Vulkan: every function takes numbers and flags (filled by device.c from the
 * driver, or by a test from a synthetic device) and returns a decision, so the choices a GPU will
 * make are unit-tested without one (tests/test_vk_select.c).
 */
#ifndef VKG_VK_SELECT_H
#define VKG_VK_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "vk_engine.h"

/* ---- cooperative matrix ---- */

/* One entry of a cooperative-matrix property list (NV or KHR), reduced to what the choice needs. */
typedef struct vk_coopmat_prop {
    uint32_t m, n, k;    /* MSize, NSize, KSize */
    bool f16_f16_f32;    /* A and B f16, C and the result f32 */
    bool subgroup_scope; /* scope is a subgroup */
    bool saturating;     /* saturatingAccumulation (KHR; always false for NV) */
} vk_coopmat_prop;

/* The entry to report and use among n: the first f16 x f16 -> f32 subgroup-scope, non-saturating
 * entry of shape 16x16x16 (the shape the coopmat kernels are written for), else the first such
 * entry of any shape (reported, but the kernels do not run with it), else -1. The order of the
 * list does not matter for a 16x16x16 entry. */
int vk_pick_coopmat_shape(const vk_coopmat_prop *p, int n);

/* How a kernel written for subgroups of `want` invocations, in workgroups of `wg`, can be built. */
typedef struct vk_subgroup_plan {
    bool ok;                /* the kernel can run */
    uint32_t required_size; /* > 0: create the pipeline with this required subgroup size */
    bool full_subgroups;    /* create it with REQUIRE_FULL_SUBGROUPS */
    const char *why;        /* when !ok: the reason, in words */
} vk_subgroup_plan;

/* The subgroup facts of a device that the plan depends on (from vk_caps). */
typedef struct vk_subgroup_info {
    uint32_t size;             /* default subgroup size */
    uint32_t min, max;         /* the range a pipeline may require (min = max = size without
                                   subgroup size control for compute) */
    bool size_control;         /* subgroupSizeControl, with compute in requiredSubgroupSizeStages */
    bool full_subgroups;       /* computeFullSubgroups */
    uint32_t max_wg_subgroups; /* maxComputeWorkgroupSubgroups (0: not reported) */
} vk_subgroup_info;

/* Preferred: a required subgroup size of `want` with full subgroups, where want lies in [min, max]
 * and the device has both features (then gl_SubgroupID / gl_SubgroupSize are what the kernel
 * assumes on every vendor, e.g. AMD whose default is 64). Otherwise only a device whose subgroup
 * size is fixed at `want` (no size control, default == want) and a SPIR-V 1.5 module (spirv16
 * false: in SPIR-V 1.6 the size may vary unless required). */
vk_subgroup_plan vk_subgroup_plan_for(const vk_subgroup_info *s, uint32_t want, uint32_t wg, bool spirv16);

/* The subgroup facts of caps. */
vk_subgroup_info vk_caps_subgroup_info(const vk_caps *c);

/* Whether the NV (khr false) or KHR (khr true) coopmat kernel can run on a device with caps c:
 * a 16x16x16 f16 x f16 -> f32 shape, shaderFloat16, 28 KiB of shared memory, a subgroup plan for
 * 32-wide subgroups in 128-invocation workgroups, and for KHR a Vulkan 1.3 device and a build that
 * has the kernel (khr_built). The plan (how to create the pipeline) goes to *plan when not NULL. */
bool vk_coopmat_gate(const vk_caps *c, bool khr, bool khr_built, vk_subgroup_plan *plan);

/* One line on what f16 prefill matmuls run on a device with caps c, for `vkgpt2 devices` and -v:
 * "coopmat_nv (NV 16x16x16, required subgroup size 32, full subgroups)" or "tiled (NV: no
 * 16x16x16 f16 shape; KHR: none)" and the like. */
void vk_coopmat_describe(const vk_caps *c, bool khr_built, char *buf, size_t len);

/* ---- matmul variant ---- */

/* Decode-sized matmuls (n <= this) use matvec. */
#define VKE_MATVEC_MAX_N 8
/* Cooperative-matrix kernels serve f16 matmuls of at least this many tokens. */
#define VKE_COOPMAT_MIN_N 32

/* The variant for n tokens of weights wtype: "matvec", "tiled", "coopmat_khr" or "coopmat_nv"
 * (KHR preferred where both run). exact_x: the caller needs x read as f32 (the LM head, steps that
 * return every row's logits): the coopmat kernels, which round x to f16, are not used then.
 * force (NULL: automatic) is honoured when it names a plain variant, or a coopmat one that the
 * device can run for f16 weights; otherwise the automatic choice stands. */
const char *vk_pick_matmul(int n, gpt2_dtype wtype, bool exact_x, bool nv_ok, bool khr_ok, const char *force);

/* What a variant's result promises: |y - y64| <= rtol * sum|x_i w_i| + atol, y64 being the float64
 * result from x as the variant reads it (rounded to f16 first where x_f16), and within
 * rtol_f32x * sum|x_i w_i| + atol of the float64 result from the f32 x. */
typedef struct vk_mm_accuracy {
    double rtol, atol; /* against the reference from x as the variant reads it */
    double rtol_f32x;  /* against the reference from the f32 x (the CPU twin's input) */
    bool x_f16;        /* the variant rounds x to f16 (|x| > 65504 becomes inf) */
} vk_mm_accuracy;
vk_mm_accuracy vk_matmul_accuracy(const char *variant);

/* ---- devices ---- */

/* What the ranking looks at for one physical device. */
typedef struct vk_rank_info {
    bool usable; /* vk_probe_unusable said nothing */
    VkPhysicalDeviceType type;
    uint64_t device_local_bytes; /* the largest device-local heap */
    bool coopmat;                /* a coopmat kernel can run (vk_coopmat_gate) */
    bool fp16, subgroup_arith;   /* other features the kernels use */
} vk_rank_info;

/* Writes the usable devices of d[0..n) to order, best first: discrete > integrated > virtual >
 * cpu, then more device-local memory, then more features (coopmat, then fp16 and subgroup
 * arithmetic), then loader order. Returns how many. */
int vk_rank_devices(const vk_rank_info *d, int n, int *order);

/* The device that sel names among n devices (names[i], uuids[i] = deviceUUID): a decimal index; or
 * a prefix of the UUID in hex (at least 4 hex digits, dashes ignored, any case); or a substring of
 * the name (any case), which must match exactly one device. Returns the index, or -1 with a
 * one-line reason in err. */
int vk_match_device(const char *sel, const char *const *names, const uint8_t (*uuids)[VK_UUID_SIZE], int n,
                    char *err, size_t errlen);

/* Tries candidates order[0..n) with try_one until one succeeds (0): returns its index in order, or
 * -1 with err naming how many failed and the last failure. try_one writes its reason to its err. */
int vk_try_candidates(const int *order, int n, int (*try_one)(void *ctx, int dev, char *err, size_t errlen),
                      void *ctx, char *err, size_t errlen);

/* ---- limits ---- */

/* The largest block (and so allocation) the engine makes: maxMemoryAllocationSize, clamped to
 * maxBufferSize where the device reports one (0: not reported, a Vulkan 1.2 device without
 * maintenance4), since every block is one buffer. */
uint64_t vk_block_limit(uint64_t max_alloc, uint64_t max_buffer);

/* The fence wait limit in ns: env (the value of VKGPT2_FENCE_TIMEOUT_MS, or NULL) when it is a
 * positive whole number of milliseconds, else 30 s, or 300 s on a device that runs on the CPU
 * (lavapipe: big steps there are slow, not hung). */
#define VKE_FENCE_TIMEOUT_MS_DEFAULT 30000u
#define VKE_FENCE_TIMEOUT_MS_CPU 300000u
uint64_t vk_fence_timeout_ns(const char *env, bool cpu_device);

/* Workgroup size of argmax: 1024, halved while it exceeds maxComputeWorkGroupInvocations or
 * maxComputeWorkGroupSize[0], never below 64 (every device allows 128). */
uint32_t vk_argmax_wg(uint32_t max_invocations, uint32_t max_size_x);

/* Bytes of each of the two buffers of the bandwidth probe: 1 GiB (more than any GPU's L2, so the
 * probe measures memory, not cache), at most an eighth of the device-local heap and the block
 * limit, at least 16 MiB, a multiple of 1 MiB. */
uint64_t vk_peak_copy_bytes(uint64_t device_local_bytes, uint64_t block_limit);

/* ---- emulated device traits (VKGPT2_EMULATE) ----
 *
 * Tests run the engine on lavapipe in the shapes a discrete GPU has: VKGPT2_EMULATE is a comma
 * list of traits applied to the probed device before the logical device is made:
 *   nohostvis    device-local memory is not host-visible: device blocks take a memory type without
 *                HOST_VISIBLE (where the device has one) and are never mapped, host blocks one
 *                without DEVICE_LOCAL (likewise); every upload and readback goes through staging
 *   nofp16       no shaderFloat16 (not enabled on the device)
 *   nosubgroup   no subgroup arithmetic in compute shaders
 *   wg=N         maxComputeWorkGroupInvocations and each maxComputeWorkGroupSize clamped to N
 *   range=MIB    maxStorageBufferRange clamped to MIB MiB
 *   tsperiod=P   a timestamp tick lasts P times what the device says (raw ticks are divided by P
 *                where they are read), as a device whose period is not 1 ns
 */
typedef struct vk_emulate {
    bool on;              /* at least one trait */
    bool no_host_visible; /* nohostvis */
    bool no_fp16;         /* nofp16 */
    bool no_subgroup;     /* nosubgroup */
    uint32_t max_wg;      /* wg=N (0: as the device) */
    uint64_t max_range;   /* range=MIB in bytes (0: as the device) */
    double ts_scale;      /* tsperiod=P (1: as the device) */
    char desc[96];        /* the traits in canonical form, for `vkgpt2 devices` and selftest */
} vk_emulate;

/* Parses s (NULL or "": no trait). Returns 0, or -1 with a one-line reason naming the bad trait. */
int vk_emulate_parse(const char *s, vk_emulate *out, char *err, size_t errlen);
/* Applies em's traits to caps (fp16, subgroup_arith, workgroup limits, storage range, timestamp
 * period) and records them in caps->emulated. */
void vk_emulate_caps(const vk_emulate *em, vk_caps *caps);

#endif
