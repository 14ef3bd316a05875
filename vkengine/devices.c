/* devices.c - `vkgpt2 devices`: every Vulkan device and what it offers, as a readable list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"
#include "vk_select.h"

#ifdef VKG_HAVE_COOPMAT_KHR
#define KHR_BUILT true
#else
#define KHR_BUILT false
#endif

static const char *type_str(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

static void fmt_size(char *buf, size_t len, uint64_t n)
{
    if (n >= ((uint64_t)1 << 30))
        snprintf(buf, len, "%.2f GiB", (double)n / (double)((uint64_t)1 << 30));
    else if (n >= ((uint64_t)1 << 20))
        snprintf(buf, len, "%.2f MiB", (double)n / (double)((uint64_t)1 << 20));
    else
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
}

static const char *yes_no(bool b) { return b ? "yes" : "no"; }

/* The driver version in the vendor's own encoding. */
static void fmt_driver_version(char *buf, size_t len, uint32_t vendor, uint32_t v)
{
    if (vendor == 0x10de) /* NVIDIA: 10.8.8.6 bits */
        snprintf(buf, len, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
    else if (vendor == 0x8086) /* Intel on Windows: 18.14 bits; Mesa uses the Vulkan encoding */
        snprintf(buf, len, "%u.%u.%u (0x%08x)", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                 VK_API_VERSION_PATCH(v), v);
    else
        snprintf(buf, len, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                 VK_API_VERSION_PATCH(v));
}

static void subgroup_ops(char *buf, size_t len, uint32_t ops)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
        {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
        {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
        {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
        {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
        {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle-relative"},
        {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
        {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"},
    };
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(ops & names[i].bit)) continue;
        int n = snprintf(buf + at, len - at, "%s%s", at ? " " : "", names[i].name);
        if (n < 0 || (size_t)n >= len - at) break;
        at += (size_t)n;
    }
    if (!buf[0]) snprintf(buf, len, "none");
}

#define ROW(out, key, ...)                                                                                   \
    do {                                                                                                     \
        fprintf(out, "    %-24s ", key);                                                                     \
        fprintf(out, __VA_ARGS__);                                                                           \
        fputc('\n', out);                                                                                    \
    } while (0)

static void print_device(FILE *out, uint32_t index, const vk_probe *p)
{
    const vk_caps *c = &p->caps;
    char buf[512], b2[64];
    fprintf(out, "device %u: %s\n", index, c->name);
    ROW(out, "type", "%s", type_str(c->type));
    for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(buf + 2 * i, 3, "%02x", c->device_uuid[i]);
    ROW(out, "device UUID", "%s", buf);
    ROW(out, "vendor / device id", "0x%04x / 0x%04x", c->vendor_id, p->props.deviceID);
    ROW(out, "driver", "%s%s%s", p->driver_name[0] ? p->driver_name : "(unknown)",
        p->driver_info[0] ? " " : "", p->driver_info);
    fmt_driver_version(buf, sizeof buf, c->vendor_id, c->driver_version);
    ROW(out, "driver version", "%s", buf);
    ROW(out, "Vulkan API", "%u.%u.%u", VK_API_VERSION_MAJOR(c->api_version),
        VK_API_VERSION_MINOR(c->api_version), VK_API_VERSION_PATCH(c->api_version));
    for (uint32_t h = 0; h < p->mem.memoryHeapCount; h++) {
        char key[32];
        snprintf(key, sizeof key, "memory heap %u", h);
        fmt_size(b2, sizeof b2, p->mem.memoryHeaps[h].size);
        ROW(out, key, "%s%s", b2,
            (p->mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) ? " (device-local)" : "");
    }
    if (c->subgroup_size_control)
        ROW(out, "subgroup size", "%u (controllable %u..%u%s)", c->subgroup_size, c->subgroup_min,
            c->subgroup_max, c->full_subgroups ? ", full subgroups" : "");
    else
        ROW(out, "subgroup size", "%u", c->subgroup_size);
    subgroup_ops(buf, sizeof buf, p->subgroup_ops);
    ROW(out, "subgroup operations", "%s%s", buf,
        (p->subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT) ? "" : " (not in compute shaders)");
    ROW(out, "shaderFloat16", "%s", yes_no(c->fp16));
    ROW(out, "shaderInt8", "%s", yes_no(c->int8));
    ROW(out, "16-bit storage", "%s", yes_no(c->storage16));
    if (c->coopmat_nv)
        ROW(out, "cooperative matrix NV", "yes (f16 x f16 -> f32, %ux%ux%u)", c->coopmat_m, c->coopmat_n,
            c->coopmat_k);
    else
        ROW(out, "cooperative matrix NV", "no");
    if (c->coopmat_khr)
        ROW(out, "cooperative matrix KHR", "yes (f16 x f16 -> f32, %ux%ux%u)", c->coopmat_khr_m,
            c->coopmat_khr_n, c->coopmat_khr_k);
    else
        ROW(out, "cooperative matrix KHR", "no");
    vk_coopmat_describe(c, KHR_BUILT, buf, sizeof buf);
    ROW(out, "f16 prefill matmul", "%s", buf);
    ROW(out, "buffer device address", "%s", yes_no(p->bda));
    fmt_size(b2, sizeof b2, c->max_storage_range);
    ROW(out, "maxStorageBufferRange", "%s", b2);
    fmt_size(b2, sizeof b2, c->max_alloc);
    ROW(out, "maxMemoryAllocationSize", "%s", b2);
    if (c->max_buffer) {
        fmt_size(b2, sizeof b2, c->max_buffer);
        ROW(out, "maxBufferSize", "%s", b2);
    } else {
        ROW(out, "maxBufferSize", "not reported");
    }
    ROW(out, "compute shared memory", "%u bytes", c->max_shared);
    ROW(out, "workgroup invocations", "%u (size %u x %u x %u)", c->max_wg_invocations, c->max_wg_size[0],
        c->max_wg_size[1], c->max_wg_size[2]);
    if (c->timestamps)
        ROW(out, "timestamps", "yes (%.3f ns per tick, %u valid bits)", c->timestamp_period_ns,
            p->timestamp_valid_bits);
    else
        ROW(out, "timestamps", "no");
    const char *why = vk_probe_unusable(p);
    ROW(out, "usable by vkgpt2", "%s%s", why ? "no: " : "yes", why ? why : "");
    if (c->emulated[0]) ROW(out, "emulated traits", "%s (VKGPT2_EMULATE)", c->emulated);
}

int vk_list_devices(FILE *out, char *err, size_t errlen)
{
    VkInstance instance;
    vk_keep_drivers_loaded();
    if (vk_instance_create(NULL, &instance, err, errlen)) return -1;
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(instance, &n, NULL);
    VkPhysicalDevice *phys = NULL;
    if (r == VK_SUCCESS && n > 0) {
        phys = calloc(n, sizeof *phys);
        if (!phys) {
            snprintf(err, errlen, "out of host memory");
            vkDestroyInstance(instance, NULL);
            return -1;
        }
        r = vkEnumeratePhysicalDevices(instance, &n, phys);
    }
    if (r < 0) {
        vk_set_err(err, errlen, "Vulkan: vkEnumeratePhysicalDevices failed", r);
        free(phys);
        vkDestroyInstance(instance, NULL);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen, "Vulkan: no device found");
        vkDestroyInstance(instance, NULL);
        return -1;
    }
    vk_probe *p = malloc(sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of host memory");
        free(phys);
        vkDestroyInstance(instance, NULL);
        return -1;
    }
    vk_emulate emu;
    if (vk_emulate_parse(getenv("VKGPT2_EMULATE"), &emu, err, errlen)) {
        free(p);
        free(phys);
        vkDestroyInstance(instance, NULL);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (i) fputc('\n', out);
        vk_probe_device(phys[i], p);
        vk_emulate_caps(&emu, &p->caps);
        if (emu.no_subgroup) p->subgroup_ops &= ~(uint32_t)VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
        print_device(out, i, p);
    }
    free(p);
    free(phys);
    vkDestroyInstance(instance, NULL);
    return 0;
}

int vk_count_devices(char *err, size_t errlen)
{
    VkInstance instance;
    vk_keep_drivers_loaded();
    if (vk_instance_create(NULL, &instance, err, errlen)) return -1;
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(instance, &n, NULL);
    vkDestroyInstance(instance, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        vk_set_err(err, errlen, "Vulkan: vkEnumeratePhysicalDevices failed", r);
        return -1;
    }
    return (int)n;
}
