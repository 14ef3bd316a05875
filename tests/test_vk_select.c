/* test_vk_select.c - the engine's device-dependent choices (vkengine/vk_select.h) on synthetic
 * devices: what an NVIDIA H200, an AMD RDNA card, an Intel GPU and lavapipe would get, without any
 * of them. Cooperative-matrix property lists in either order, subgroup size ranges, the matmul
 * variant and its tolerance, device ranking and naming, buffer limits, the fence timeout, the
 * argmax workgroup and the bandwidth probe size. */
#include <criterion/criterion.h>
#include <string.h>

#include "vkengine/vk_select.h"

#define GiB ((uint64_t)1 << 30)
#define MiB ((uint64_t)1 << 20)

static const vk_coopmat_prop F16_16x8x16 = {16, 8, 16, true, true, false};
static const vk_coopmat_prop F16_16x16x16 = {16, 16, 16, true, true, false};
static const vk_coopmat_prop INT8_16x16x32 = {16, 16, 32, false, true, false};

Test(vk_select, coopmat_shape_found_in_either_order)
{
    vk_coopmat_prop a[] = {F16_16x8x16, INT8_16x16x32, F16_16x16x16};
    vk_coopmat_prop b[] = {F16_16x16x16, F16_16x8x16, INT8_16x16x32};
    cr_assert_eq(vk_pick_coopmat_shape(a, 3), 2, "16x16x16 listed last");
    cr_assert_eq(vk_pick_coopmat_shape(b, 3), 0, "16x16x16 listed first");
    /* only another f16 shape: reported (the gate then refuses it), integer shapes never */
    vk_coopmat_prop c[] = {INT8_16x16x32, F16_16x8x16};
    cr_assert_eq(vk_pick_coopmat_shape(c, 2), 1);
    cr_assert_eq(vk_pick_coopmat_shape(c, 1), -1);
    /* saturating or workgroup-scope entries do not count */
    vk_coopmat_prop d[] = {{16, 16, 16, true, true, true}, {16, 16, 16, true, false, false}};
    cr_assert_eq(vk_pick_coopmat_shape(d, 2), -1);
    cr_assert_eq(vk_pick_coopmat_shape(NULL, 0), -1);
}

/* Subgroup facts of real devices (as their drivers report them). */
static const vk_subgroup_info NV_SG = {32, 32, 32, true, true, 32};       /* NVIDIA */
static const vk_subgroup_info AMD_SG = {64, 32, 64, true, true, 16};      /* RDNA: wave64 default */
static const vk_subgroup_info INTEL_SG = {32, 8, 32, true, true, 64};     /* Xe */
static const vk_subgroup_info INTEL16_SG = {16, 8, 16, true, true, 64};   /* no 32-wide */
static const vk_subgroup_info LVP_SG = {8, 8, 8, true, true, 128};        /* lavapipe, 256-bit */
static const vk_subgroup_info FIXED32_SG = {32, 32, 32, false, false, 0}; /* no size control */

Test(vk_select, subgroup_plan_requires_32_where_the_range_allows)
{
    const vk_subgroup_info *ok[] = {&NV_SG, &AMD_SG, &INTEL_SG};
    for (int i = 0; i < 3; i++)
        for (int spirv16 = 0; spirv16 < 2; spirv16++) {
            vk_subgroup_plan p = vk_subgroup_plan_for(ok[i], 32, 128, spirv16);
            cr_assert(p.ok, "device %d", i);
            cr_assert_eq(p.required_size, 32, "device %d: a required size of 32", i);
            cr_assert(p.full_subgroups, "device %d", i);
        }
    /* AMD's default of 64 alone used to rule coopmat out; now 32 is required. Without size
     * control the default must be 32 and the module SPIR-V 1.5 (1.6 may vary the size). */
    vk_subgroup_plan f = vk_subgroup_plan_for(&FIXED32_SG, 32, 128, false);
    cr_assert(f.ok && f.required_size == 0 && !f.full_subgroups);
    cr_assert(!vk_subgroup_plan_for(&FIXED32_SG, 32, 128, true).ok);
    vk_subgroup_plan no = vk_subgroup_plan_for(&INTEL16_SG, 32, 128, false);
    cr_assert(!no.ok && no.why && strstr(no.why, "range"), "%s", no.why ? no.why : "(null)");
    cr_assert(!vk_subgroup_plan_for(&LVP_SG, 32, 128, false).ok);
    /* AMD without computeFullSubgroups: default 64, so no plan */
    vk_subgroup_info amd_nofull = AMD_SG;
    amd_nofull.full_subgroups = false;
    vk_subgroup_plan nf = vk_subgroup_plan_for(&amd_nofull, 32, 128, false);
    cr_assert(!nf.ok && strstr(nf.why, "computeFullSubgroups"), "%s", nf.why);
    /* 4 subgroups per workgroup must be allowed */
    vk_subgroup_info few = NV_SG;
    few.max_wg_subgroups = 2;
    cr_assert(!vk_subgroup_plan_for(&few, 32, 128, true).ok);
    cr_assert(vk_subgroup_plan_for(&few, 32, 128, false).required_size == 0, "only the default size");
    cr_assert(!vk_subgroup_plan_for(&NV_SG, 32, 100, false).ok, "a partial subgroup");
}

/* vk_caps of a device with the given subgroup facts and coopmat shapes. */
static vk_caps caps_of(const vk_subgroup_info *sg, bool nv, bool khr, uint32_t nv_n)
{
    vk_caps c = {0};
    snprintf(c.name, sizeof c.name, "synthetic");
    c.type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    c.api_version = VK_API_VERSION_1_3;
    c.subgroup_size = sg->size;
    c.subgroup_min = sg->min;
    c.subgroup_max = sg->max;
    c.subgroup_size_control = sg->size_control;
    c.full_subgroups = sg->full_subgroups;
    c.max_wg_subgroups = sg->max_wg_subgroups;
    c.subgroup_arith = true;
    c.fp16 = true;
    c.max_shared = 48 * 1024;
    c.coopmat_nv = nv;
    if (nv) c.coopmat_m = 16, c.coopmat_n = nv_n, c.coopmat_k = 16;
    c.coopmat_khr = khr;
    if (khr) c.coopmat_khr_m = c.coopmat_khr_n = c.coopmat_khr_k = 16;
    return c;
}

Test(vk_select, coopmat_gate)
{
    vk_subgroup_plan p;
    /* H200: NV and KHR, 16x16x16, subgroup 32 */
    vk_caps h = caps_of(&NV_SG, true, true, 16);
    cr_assert(vk_coopmat_gate(&h, false, true, &p) && p.required_size == 32 && p.full_subgroups);
    cr_assert(vk_coopmat_gate(&h, true, true, &p));
    cr_assert(!vk_coopmat_gate(&h, true, false, &p), "KHR needs the kernel in the build");
    /* the driver listed 16x8x16 only: reported, not used (and said why) */
    vk_caps h8 = caps_of(&NV_SG, true, false, 8);
    cr_assert(!vk_coopmat_gate(&h8, false, true, &p) && strstr(p.why, "16x16x16"));
    /* AMD RDNA3 with KHR: default subgroup 64, 32 required */
    vk_caps amd = caps_of(&AMD_SG, false, true, 0);
    cr_assert(vk_coopmat_gate(&amd, true, true, &p) && p.required_size == 32);
    cr_assert(!vk_coopmat_gate(&amd, false, true, NULL), "no NV extension");
    /* other requirements */
    vk_caps x = h;
    x.fp16 = false;
    cr_assert(!vk_coopmat_gate(&x, false, true, NULL));
    x = h;
    x.max_shared = 16 * 1024;
    cr_assert(!vk_coopmat_gate(&x, false, true, NULL));
    x = h;
    x.api_version = VK_API_VERSION_1_2;
    cr_assert(!vk_coopmat_gate(&x, true, true, NULL) && vk_coopmat_gate(&x, false, true, NULL));
    vk_caps lvp = caps_of(&LVP_SG, false, false, 0);
    cr_assert(!vk_coopmat_gate(&lvp, false, true, NULL) && !vk_coopmat_gate(&lvp, true, true, NULL));
}

Test(vk_select, coopmat_description)
{
    char buf[256];
    vk_caps h = caps_of(&NV_SG, true, false, 16);
    vk_coopmat_describe(&h, false, buf, sizeof buf);
    cr_assert(strstr(buf, "coopmat_nv (NV 16x16x16, required subgroup size 32, full subgroups)"), "%s", buf);
    vk_caps both = caps_of(&NV_SG, true, true, 16);
    vk_coopmat_describe(&both, true, buf, sizeof buf);
    cr_assert(strstr(buf, "coopmat_khr (KHR 16x16x16"), "%s", buf);
    vk_caps h8 = caps_of(&NV_SG, true, false, 8);
    vk_coopmat_describe(&h8, false, buf, sizeof buf);
    cr_assert(strstr(buf, "tiled (cooperative matrix NV: no 16x16x16 f16 shape; KHR: none)"), "%s", buf);
    vk_caps lvp = caps_of(&LVP_SG, false, false, 0);
    vk_coopmat_describe(&lvp, false, buf, sizeof buf);
    cr_assert_str_eq(buf, "tiled (cooperative matrix NV: none; KHR: none)");
}

Test(vk_select, matmul_variant)
{
    /* decode sizes, plain batches */
    cr_assert_str_eq(vk_pick_matmul(1, GPT2_F16, false, true, true, NULL), "matvec");
    cr_assert_str_eq(vk_pick_matmul(8, GPT2_F16, false, true, true, NULL), "matvec");
    cr_assert_str_eq(vk_pick_matmul(9, GPT2_F16, false, true, true, NULL), "tiled");
    cr_assert_str_eq(vk_pick_matmul(31, GPT2_F16, false, true, true, NULL), "tiled");
    cr_assert_str_eq(vk_pick_matmul(64, GPT2_F32, false, true, true, NULL), "tiled");
    cr_assert_str_eq(vk_pick_matmul(64, GPT2_Q8_0, false, true, true, NULL), "tiled");
    /* f16 prompt chunks: KHR preferred where both run (a build with the KHR kernel) */
    cr_assert_str_eq(vk_pick_matmul(32, GPT2_F16, false, true, true, NULL), "coopmat_khr");
    cr_assert_str_eq(vk_pick_matmul(64, GPT2_F16, false, true, false, NULL), "coopmat_nv");
    cr_assert_str_eq(vk_pick_matmul(64, GPT2_F16, false, false, true, NULL), "coopmat_khr");
    cr_assert_str_eq(vk_pick_matmul(64, GPT2_F16, false, false, false, NULL), "tiled");
    /* the LM head and all-logits steps keep x in f32 */
    cr_assert_str_eq(vk_pick_matmul(64, GPT2_F16, true, true, true, NULL), "tiled");
    cr_assert_str_eq(vk_pick_matmul(4, GPT2_F16, true, true, true, NULL), "matvec");
    /* forcing */
    cr_assert_str_eq(vk_pick_matmul(1, GPT2_F32, false, false, false, "tiled"), "tiled");
    cr_assert_str_eq(vk_pick_matmul(512, GPT2_F16, false, false, false, "coopmat_nv"), "tiled");
    cr_assert_str_eq(vk_pick_matmul(512, GPT2_F16, false, true, false, "coopmat_nv"), "coopmat_nv");
    cr_assert_str_eq(vk_pick_matmul(4, GPT2_F16, false, true, false, "coopmat_nv"), "coopmat_nv");
    cr_assert_str_eq(vk_pick_matmul(512, GPT2_F32, false, true, true, "coopmat_khr"), "tiled");
    cr_assert_str_eq(vk_pick_matmul(512, GPT2_F16, false, true, false, "coopmat_khr"), "coopmat_nv");
}

Test(vk_select, matmul_accuracy)
{
    vk_mm_accuracy t = vk_matmul_accuracy("tiled"), m = vk_matmul_accuracy("matvec");
    vk_mm_accuracy n = vk_matmul_accuracy("coopmat_nv"), k = vk_matmul_accuracy("coopmat_khr");
    cr_assert(!t.x_f16 && !m.x_f16 && n.x_f16 && k.x_f16);
    cr_assert(t.rtol == 1e-5 && t.rtol_f32x == t.rtol);
    /* coopmat: close to the f16-x reference, within f16 rounding (2^-11) of the f32-x one */
    cr_assert(n.rtol <= 1e-4 && n.rtol_f32x >= 4.9e-4 && n.rtol_f32x <= 1e-3);
    cr_assert(k.rtol == n.rtol && k.rtol_f32x == n.rtol_f32x);
}

Test(vk_select, device_ranking)
{
    vk_rank_info d[] = {
        {true, VK_PHYSICAL_DEVICE_TYPE_CPU, 64 * GiB, false, true, true},          /* lavapipe */
        {true, VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 16 * GiB, false, true, true}, /* small GPU */
        {true, VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, 32 * GiB, true, true, true},
        {true, VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 141 * GiB, false, true, true}, /* H200, no coopmat */
        {true, VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 141 * GiB, true, true, true},  /* H200 */
        {false, VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 192 * GiB, true, true, true}, /* unusable */
    };
    int order[6];
    int n = vk_rank_devices(d, 6, order);
    cr_assert_eq(n, 5);
    const int want[] = {4, 3, 1, 2, 0};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(order[i], want[i], "rank %d: device %d, expected %d", i, order[i], want[i]);
    /* identical devices keep loader order */
    vk_rank_info same[] = {d[4], d[4], d[4]};
    cr_assert_eq(vk_rank_devices(same, 3, order), 3);
    cr_assert(order[0] == 0 && order[1] == 1 && order[2] == 2);
    cr_assert_eq(vk_rank_devices(&d[5], 1, order), 0);
}

Test(vk_select, device_matching)
{
    const char *names[] = {"NVIDIA H200", "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)"};
    uint8_t uuids[3][VK_UUID_SIZE] = {{0x10, 0xde, 0xaa, 0x01}, {0x10, 0xde, 0xbb, 0x02}, {0x6d, 0x65}};
    char err[256];
    cr_assert_eq(vk_match_device("0", names, uuids, 3, err, sizeof err), 0);
    cr_assert_eq(vk_match_device("2", names, uuids, 3, err, sizeof err), 2);
    cr_assert_eq(vk_match_device("3", names, uuids, 3, err, sizeof err), -1);
    cr_assert(strstr(err, "no device 3") && strstr(err, "there are 3"), "%s", err);
    cr_assert_eq(vk_match_device("LLVMpipe", names, uuids, 3, err, sizeof err), 2, "name, any case");
    /* two H200s: the name is ambiguous, the UUID prefix is not */
    cr_assert_eq(vk_match_device("h200", names, uuids, 3, err, sizeof err), -1);
    cr_assert(strstr(err, "matches 2 devices"), "%s", err);
    cr_assert_eq(vk_match_device("10deBB", names, uuids, 3, err, sizeof err), 1);
    cr_assert_eq(vk_match_device("10de-aa01", names, uuids, 3, err, sizeof err), 0, "dashes ignored");
    cr_assert_eq(vk_match_device("10de", names, uuids, 3, err, sizeof err), -1);
    cr_assert(strstr(err, "give more digits"), "%s", err);
    /* hex-looking text that is no UUID prefix is still tried as a name */
    cr_assert_eq(vk_match_device("bits", names, uuids, 3, err, sizeof err), 2);
    cr_assert_eq(vk_match_device("a100", names, uuids, 3, err, sizeof err), -1);
    cr_assert(strstr(err, "matches 'a100'"), "%s", err);
    cr_assert_eq(vk_match_device("", names, uuids, 3, err, sizeof err), -1);
    cr_assert_eq(vk_match_device("99999999999", names, uuids, 3, err, sizeof err), -1);
}

/* try_one that fails for the devices in ctx's bitmask. */
static int fail_some(void *ctx, int dev, char *err, size_t errlen)
{
    unsigned mask = *(unsigned *)ctx;
    if (mask & (1u << dev)) {
        snprintf(err, errlen, "Vulkan: vkCreateDevice failed on device %d", dev);
        return -1;
    }
    return 0;
}

Test(vk_select, failed_device_creation_falls_through)
{
    int order[] = {3, 1, 0};
    char err[256] = "";
    unsigned mask = 1u << 3;
    cr_assert_eq(vk_try_candidates(order, 3, fail_some, &mask, err, sizeof err), 1, "the second candidate");
    mask = (1u << 3) | (1u << 1);
    cr_assert_eq(vk_try_candidates(order, 3, fail_some, &mask, err, sizeof err), 2);
    mask = 0xf;
    cr_assert_eq(vk_try_candidates(order, 3, fail_some, &mask, err, sizeof err), -1);
    cr_assert(strstr(err, "device 0") && strstr(err, "2 other devices failed"), "%s", err);
    cr_assert_eq(vk_try_candidates(order, 1, fail_some, &mask, err, sizeof err), -1);
    cr_assert_str_eq(err, "Vulkan: vkCreateDevice failed on device 3");
    cr_assert_eq(vk_try_candidates(order, 0, fail_some, &mask, err, sizeof err), -1);
}

Test(vk_select, block_limit_respects_max_buffer_size)
{
    cr_assert_eq(vk_block_limit(4 * GiB, 0), 4 * GiB, "no maxBufferSize reported");
    cr_assert_eq(vk_block_limit(4 * GiB, 2 * GiB), 2 * GiB);
    cr_assert_eq(vk_block_limit(2 * GiB, 4 * GiB), 2 * GiB, "lavapipe");
    cr_assert_eq(vk_block_limit(UINT64_MAX, (uint64_t)1 << 40), (uint64_t)1 << 40);
}

Test(vk_select, fence_timeout)
{
    cr_assert_eq(vk_fence_timeout_ns(NULL, false), 30000000000ull);
    cr_assert_eq(vk_fence_timeout_ns("", false), 30000000000ull);
    cr_assert_eq(vk_fence_timeout_ns(NULL, true), 300000000000ull, "a CPU device gets more");
    cr_assert_eq(vk_fence_timeout_ns("1500", false), 1500000000ull);
    cr_assert_eq(vk_fence_timeout_ns("1", true), 1000000ull);
    static const char *bad[] = {"0", "-5", "abc", "12x", "99999999999999999999", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(vk_fence_timeout_ns(bad[i], false), 30000000000ull, "'%s' keeps the default", bad[i]);
}

Test(vk_select, argmax_workgroup)
{
    cr_assert_eq(vk_argmax_wg(1024, 1024), 1024);
    cr_assert_eq(vk_argmax_wg(1024, 512), 512, "maxComputeWorkGroupSize[0] below the invocations");
    cr_assert_eq(vk_argmax_wg(256, 1024), 256);
    cr_assert_eq(vk_argmax_wg(1536, 1024), 1024);
    cr_assert_eq(vk_argmax_wg(2048, 768), 512);
    cr_assert_eq(vk_argmax_wg(128, 128), 128);
    cr_assert_eq(vk_argmax_wg(32, 32), 64, "never below 64");
}

Test(vk_select, peak_copy_size)
{
    cr_assert_eq(vk_peak_copy_bytes(141 * GiB, 4 * GiB), GiB, "H200: 1 GiB, 20x its L2");
    cr_assert_eq(vk_peak_copy_bytes(2 * GiB, 2 * GiB), 256 * MiB, "lavapipe's 2 GiB heap");
    cr_assert_eq(vk_peak_copy_bytes(24 * GiB, 512 * MiB), 512 * MiB, "the block limit");
    cr_assert_eq(vk_peak_copy_bytes(64 * MiB, 64 * MiB), 16 * MiB, "at least 16 MiB");
    cr_assert_eq(vk_peak_copy_bytes(0, 0), GiB);
    cr_assert_eq(vk_peak_copy_bytes(3 * GiB + 5, 4 * GiB) % MiB, 0);
}

Test(vk_select, emulated_traits)
{
    vk_emulate em;
    char err[256];
    cr_assert(vk_emulate_parse(NULL, &em, err, sizeof err) == 0);
    cr_assert(!em.on && em.ts_scale == 1.0);
    cr_assert(vk_emulate_parse("nohostvis,wg=1024,tsperiod=41.5", &em, err, sizeof err) == 0, "%s", err);
    cr_assert(em.on && em.no_host_visible && !em.no_fp16 && em.max_wg == 1024 && em.ts_scale == 41.5);
    cr_assert_str_eq(em.desc, "nohostvis,wg=1024,tsperiod=41.5");
    cr_assert(vk_emulate_parse("nofp16,nosubgroup,wg=256,range=64", &em, err, sizeof err) == 0, "%s", err);
    /* an H200-like device in that shape */
    vk_caps c = {.fp16 = true,
                 .subgroup_arith = true,
                 .max_wg_invocations = 1024,
                 .max_wg_size = {1024, 1024, 64},
                 .max_storage_range = 4 * GiB - 1,
                 .timestamp_period_ns = 1.0};
    vk_emulate_caps(&em, &c);
    cr_assert(!c.fp16 && !c.subgroup_arith);
    cr_assert_eq(c.max_wg_invocations, 256);
    cr_assert(c.max_wg_size[0] == 256 && c.max_wg_size[1] == 256 && c.max_wg_size[2] == 64,
              "clamped, never raised");
    cr_assert_eq(c.max_storage_range, 64 * MiB);
    cr_assert_eq(c.timestamp_period_ns, 1.0);
    cr_assert_str_eq(c.emulated, "nofp16,nosubgroup,wg=256,range=64");
    cr_assert(!vk_coopmat_gate(&c, false, true, NULL), "no coopmat without shaderFloat16");
    vk_emulate_parse("tsperiod=40", &em, err, sizeof err);
    vk_caps d = {.timestamp_period_ns = 2.0};
    vk_emulate_caps(&em, &d);
    cr_assert_eq(d.timestamp_period_ns, 80.0);
    const char *bad[] = {"nofp32", "wg=32", "wg=", "range=0", "tsperiod=x", "nohostvis,,nofp16", "wg=1024x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert(vk_emulate_parse(bad[i], &em, err, sizeof err) == -1, "%s accepted", bad[i]);
        cr_assert(strstr(err, "VKGPT2_EMULATE") && !strchr(err, '\n'), "%s", err);
    }
}
