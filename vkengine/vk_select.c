/* vk_select.c - the engine's device-dependent choices as pure functions (see vk_select.h). */
#include "vk_select.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cooperative matrix ---- */

int vk_pick_coopmat_shape(const vk_coopmat_prop *p, int n)
{
    int any = -1;
    for (int i = 0; i < n; i++) {
        if (!p[i].f16_f16_f32 || !p[i].subgroup_scope || p[i].saturating) continue;
        if (p[i].m == 16 && p[i].n == 16 && p[i].k == 16) return i;
        if (any < 0) any = i;
    }
    return any;
}

vk_subgroup_plan vk_subgroup_plan_for(const vk_subgroup_info *s, uint32_t want, uint32_t wg, bool spirv16)
{
    vk_subgroup_plan p = {0};
    if (want == 0 || wg % want != 0) {
        p.why = "the workgroup is not a whole number of subgroups";
        return p;
    }
    if (s->size_control && s->full_subgroups && s->min <= want && want <= s->max &&
        (s->max_wg_subgroups == 0 || wg / want <= s->max_wg_subgroups)) {
        p.ok = true;
        p.required_size = want;
        p.full_subgroups = true;
        return p;
    }
    if (s->size == want && !spirv16) {
        /* a SPIR-V 1.5 module runs with the default size when none is required */
        p.ok = true;
        return p;
    }
    if (want < s->min || want > s->max)
        p.why = "the kernel's subgroup width is outside the device's range";
    else if (!s->size_control)
        p.why = "no subgroup size control to require the kernel's subgroup width";
    else if (!s->full_subgroups)
        p.why = "no computeFullSubgroups";
    else
        p.why = "too many subgroups per workgroup";
    return p;
}

vk_subgroup_info vk_caps_subgroup_info(const vk_caps *c)
{
    vk_subgroup_info s = {
        .size = c->subgroup_size,
        .min = c->subgroup_min ? c->subgroup_min : c->subgroup_size,
        .max = c->subgroup_max ? c->subgroup_max : c->subgroup_size,
        .size_control = c->subgroup_size_control,
        .full_subgroups = c->full_subgroups,
        .max_wg_subgroups = c->max_wg_subgroups,
    };
    return s;
}

bool vk_coopmat_gate(const vk_caps *c, bool khr, bool khr_built, vk_subgroup_plan *plan)
{
    vk_subgroup_plan none = {.why = "no cooperative matrix"};
    if (plan) *plan = none;
    bool shape = khr
        ? c->coopmat_khr && c->coopmat_khr_m == 16 && c->coopmat_khr_n == 16 && c->coopmat_khr_k == 16
        : c->coopmat_nv && c->coopmat_m == 16 && c->coopmat_n == 16 && c->coopmat_k == 16;
    if (!shape) {
        if (plan && (khr ? c->coopmat_khr : c->coopmat_nv)) plan->why = "no 16x16x16 f16 shape";
        return false;
    }
    if (khr && (!khr_built || c->api_version < VK_API_VERSION_1_3)) {
        if (plan) plan->why = !khr_built ? "this build has no KHR kernel" : "needs Vulkan 1.3";
        return false;
    }
    if (!c->fp16 || c->max_shared < 28 * 1024) {
        if (plan) plan->why = !c->fp16 ? "no shaderFloat16" : "less than 28 KiB of shared memory";
        return false;
    }
    vk_subgroup_info s = vk_caps_subgroup_info(c);
    vk_subgroup_plan p = vk_subgroup_plan_for(&s, 32, 128, khr);
    if (plan) *plan = p;
    return p.ok;
}

/* "NV 16x16x16, required subgroup size 32, full subgroups" into buf. */
static void describe_plan(const char *api, uint32_t m, uint32_t n, uint32_t k, const vk_subgroup_plan *p,
                          char *buf, size_t len)
{
    if (p->required_size)
        snprintf(buf, len, "%s %ux%ux%u, required subgroup size %u%s", api, m, n, k, p->required_size,
                 p->full_subgroups ? ", full subgroups" : "");
    else
        snprintf(buf, len, "%s %ux%ux%u, fixed subgroup size 32", api, m, n, k);
}

void vk_coopmat_describe(const vk_caps *c, bool khr_built, char *buf, size_t len)
{
    vk_subgroup_plan pn, pk;
    bool nv = vk_coopmat_gate(c, false, khr_built, &pn);
    bool khr = vk_coopmat_gate(c, true, khr_built, &pk);
    char d[160];
    if (khr) {
        describe_plan("KHR", c->coopmat_khr_m, c->coopmat_khr_n, c->coopmat_khr_k, &pk, d, sizeof d);
        snprintf(buf, len, "coopmat_khr (%s)", d);
    } else if (nv) {
        describe_plan("NV", c->coopmat_m, c->coopmat_n, c->coopmat_k, &pn, d, sizeof d);
        snprintf(buf, len, "coopmat_nv (%s)", d);
    } else {
        snprintf(buf, len, "tiled (cooperative matrix NV: %s; KHR: %s)", c->coopmat_nv ? pn.why : "none",
                 c->coopmat_khr ? pk.why : "none");
    }
}

/* ---- matmul variant ---- */

const char *vk_pick_matmul(int n, gpt2_dtype wtype, bool exact_x, bool nv_ok, bool khr_ok, const char *force)
{
    if (force) {
        bool khr = strcmp(force, "coopmat_khr") == 0;
        bool nv = strcmp(force, "coopmat_nv") == 0;
        if (!khr && !nv) return force;
        if (wtype == GPT2_F16 && (khr ? khr_ok : nv_ok)) return force;
        /* a cooperative-matrix variant the device cannot run: the automatic choice */
    }
    if (n <= VKE_MATVEC_MAX_N) return "matvec";
    if (wtype == GPT2_F16 && n >= VKE_COOPMAT_MIN_N && !exact_x) {
        if (khr_ok) return "coopmat_khr";
        if (nv_ok) return "coopmat_nv";
    }
    return "tiled";
}

vk_mm_accuracy vk_matmul_accuracy(const char *variant)
{
    if (variant && strncmp(variant, "coopmat", 7) == 0) {
        /* f16 x f16 products are exact in f32 and are accumulated in f32, in an order of their
         * own: as close to the f16-x reference as the plain kernels are to theirs, with margin for
         * how matrix units accumulate. Against the f32 x, the rounding of x to f16 (relative error
         * up to 2^-11 = 4.9e-4 per term) dominates. */
        return (vk_mm_accuracy){.rtol = 1e-4, .atol = 1e-6, .rtol_f32x = 1e-3, .x_f16 = true};
    }
    return (vk_mm_accuracy){.rtol = 1e-5, .atol = 1e-6, .rtol_f32x = 1e-5, .x_f16 = false};
}

/* ---- devices ---- */

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static int feature_score(const vk_rank_info *d)
{
    return (d->coopmat ? 4 : 0) + (d->fp16 ? 2 : 0) + (d->subgroup_arith ? 1 : 0);
}

/* a ranks before b (index order breaks the last tie). */
static bool ranks_before(const vk_rank_info *a, int ia, const vk_rank_info *b, int ib)
{
    int ta = type_rank(a->type), tb = type_rank(b->type);
    if (ta != tb) return ta > tb;
    if (a->device_local_bytes != b->device_local_bytes) return a->device_local_bytes > b->device_local_bytes;
    int fa = feature_score(a), fb = feature_score(b);
    if (fa != fb) return fa > fb;
    return ia < ib;
}

int vk_rank_devices(const vk_rank_info *d, int n, int *order)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!d[i].usable) continue;
        int at = k++;
        while (at > 0 && ranks_before(&d[i], i, &d[order[at - 1]], order[at - 1])) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    return k;
}

/* Case-insensitive substring test. */
static bool contains_nocase(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < nl && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == nl) return true;
    }
    return nl == 0;
}

/* The hex digits of sel (dashes dropped) into hex, lower case; false if sel has anything else. */
static bool hex_digits(const char *sel, char *hex, size_t cap)
{
    size_t k = 0;
    for (const char *p = sel; *p; p++) {
        if (*p == '-') continue;
        if (!isxdigit((unsigned char)*p) || k + 1 >= cap) return false;
        hex[k++] = (char)tolower((unsigned char)*p);
    }
    hex[k] = '\0';
    return k > 0;
}

int vk_match_device(const char *sel, const char *const *names, const uint8_t (*uuids)[VK_UUID_SIZE], int n,
                    char *err, size_t errlen)
{
    if (!sel || !*sel) {
        snprintf(err, errlen, "Vulkan: an empty device name");
        return -1;
    }
    bool digits = true;
    for (const char *p = sel; *p; p++) digits &= isdigit((unsigned char)*p) != 0;
    if (digits) {
        char *end;
        long v = strtol(sel, &end, 10);
        if (strlen(sel) <= 6 && v >= 0 && v < n) return (int)v;
        snprintf(err, errlen, "Vulkan: no device %s (there are %d; see `vkgpt2 devices`)", sel, n);
        return -1;
    }
    char hex[2 * VK_UUID_SIZE + 1];
    if (uuids && hex_digits(sel, hex, sizeof hex) && strlen(hex) >= 4) {
        int found = -1, count = 0;
        for (int i = 0; i < n; i++) {
            char u[2 * VK_UUID_SIZE + 1];
            for (unsigned b = 0; b < VK_UUID_SIZE; b++) snprintf(u + 2 * b, 3, "%02x", uuids[i][b]);
            if (strncmp(u, hex, strlen(hex)) == 0) {
                found = i;
                count++;
            }
        }
        if (count == 1) return found;
        if (count > 1) {
            snprintf(err, errlen, "Vulkan: UUID prefix '%s' matches %d devices; give more digits", sel,
                     count);
            return -1;
        }
        /* no UUID starts so: it may still be part of a name ("a100") */
    }
    int found = -1, count = 0;
    for (int i = 0; i < n; i++)
        if (names[i] && contains_nocase(names[i], sel)) {
            if (count == 0) found = i;
            count++;
        }
    if (count == 1) return found;
    if (count > 1)
        snprintf(err, errlen,
                 "Vulkan: '%s' matches %d devices (the first is %d: %s); name one by "
                 "index or UUID prefix (see `vkgpt2 devices`)",
                 sel, count, found, names[found]);
    else
        snprintf(err, errlen,
                 "Vulkan: no device index, UUID prefix or name matches '%s' (see "
                 "`vkgpt2 devices`)",
                 sel);
    return -1;
}

int vk_try_candidates(const int *order, int n, int (*try_one)(void *ctx, int dev, char *err, size_t errlen),
                      void *ctx, char *err, size_t errlen)
{
    char last[512] = "";
    for (int i = 0; i < n; i++) {
        if (try_one(ctx, order[i], last, sizeof last) == 0) return i;
    }
    if (n == 0)
        snprintf(err, errlen, "Vulkan: no usable device");
    else if (n == 1)
        snprintf(err, errlen, "%s", last);
    else
        snprintf(err, errlen, "%s (and %d other device%s failed before it)", last, n - 1,
                 n - 1 == 1 ? "" : "s");
    return -1;
}

/* ---- limits ---- */

uint64_t vk_block_limit(uint64_t max_alloc, uint64_t max_buffer)
{
    return max_buffer && max_buffer < max_alloc ? max_buffer : max_alloc;
}

uint64_t vk_fence_timeout_ns(const char *env, bool cpu_device)
{
    uint64_t ms = cpu_device ? VKE_FENCE_TIMEOUT_MS_CPU : VKE_FENCE_TIMEOUT_MS_DEFAULT;
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        /* a positive whole number that fits in ns; anything else keeps the default */
        if (*end == '\0' && env[0] != '-' && v > 0 && v <= UINT64_MAX / 1000000u) ms = v;
    }
    return ms * 1000000u;
}

uint32_t vk_argmax_wg(uint32_t max_invocations, uint32_t max_size_x)
{
    uint32_t wg = 1024;
    while (wg > 64 && (wg > max_invocations || wg > max_size_x)) wg >>= 1;
    return wg;
}

uint64_t vk_peak_copy_bytes(uint64_t device_local_bytes, uint64_t block_limit)
{
    const uint64_t mib = (uint64_t)1 << 20;
    uint64_t b = (uint64_t)1 << 30;
    if (device_local_bytes && device_local_bytes / 8 < b) b = device_local_bytes / 8;
    if (block_limit && block_limit < b) b = block_limit;
    b = b / mib * mib;
    return b < 16 * mib ? 16 * mib : b;
}

/* ---- emulated device traits ---- */

int vk_emulate_parse(const char *s, vk_emulate *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->ts_scale = 1.0;
    if (!s) return 0;
    size_t at = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, ",");
        char tok[48];
        if (len == 0 || len >= sizeof tok) {
            snprintf(err, errlen,
                     "VKGPT2_EMULATE: '%.*s' is not a trait (nohostvis, nofp16, "
                     "nosubgroup, wg=N, range=MIB, tsperiod=P)",
                     (int)(len > 40 ? 40 : len), p);
            return -1;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        char *end = NULL;
        bool ok = true;
        if (strcmp(tok, "nohostvis") == 0) {
            out->no_host_visible = true;
        } else if (strcmp(tok, "nofp16") == 0) {
            out->no_fp16 = true;
        } else if (strcmp(tok, "nosubgroup") == 0) {
            out->no_subgroup = true;
        } else if (strncmp(tok, "wg=", 3) == 0) {
            unsigned long v = strtoul(tok + 3, &end, 10);
            ok = end != tok + 3 && !*end && v >= 64 && v <= 65536;
            out->max_wg = (uint32_t)v;
        } else if (strncmp(tok, "range=", 6) == 0) {
            unsigned long long v = strtoull(tok + 6, &end, 10);
            ok = end != tok + 6 && !*end && v >= 1 && v <= (1ull << 20);
            out->max_range = (uint64_t)v << 20;
        } else if (strncmp(tok, "tsperiod=", 9) == 0) {
            double v = strtod(tok + 9, &end);
            ok = end != tok + 9 && !*end && v >= 0.001 && v <= 1e6;
            out->ts_scale = v;
        } else {
            ok = false;
        }
        if (!ok) {
            snprintf(err, errlen,
                     "VKGPT2_EMULATE: '%s' is not a trait (nohostvis, nofp16, "
                     "nosubgroup, wg=64..65536, range=MIB, tsperiod=P)",
                     tok);
            return -1;
        }
        int n = snprintf(out->desc + at, sizeof out->desc - at, "%s%s", at ? "," : "", tok);
        if (n > 0 && (size_t)n < sizeof out->desc - at) at += (size_t)n;
        out->on = true;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

void vk_emulate_caps(const vk_emulate *em, vk_caps *c)
{
    if (!em->on) return;
    if (em->no_fp16) c->fp16 = false;
    if (em->no_subgroup) c->subgroup_arith = false;
    if (em->max_wg) {
        if (c->max_wg_invocations > em->max_wg) c->max_wg_invocations = em->max_wg;
        for (int i = 0; i < 3; i++)
            if (c->max_wg_size[i] > em->max_wg) c->max_wg_size[i] = em->max_wg;
    }
    if (em->max_range && c->max_storage_range > em->max_range) c->max_storage_range = em->max_range;
    c->timestamp_period_ns *= em->ts_scale;
    snprintf(c->emulated, sizeof c->emulated, "%s", em->desc);
}
