/* device.c - instance, validation, physical device choice, capability probing, logical device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_fault.h"
#include "vk_internal.h"
#include "core/notice.h"
#include "vk_select.h"

#define MAX_EXTS 16

/* VK_KHR_cooperative_matrix needs Vulkan headers and a volk of 1.3.255 or newer (Debian 12 ships
 * 1.3.239: there the KHR path compiles out and caps.coopmat_khr stays false). */
#if defined(VK_KHR_cooperative_matrix) && defined(VOLK_HEADER_VERSION) && VOLK_HEADER_VERSION >= 255
#define VKG_VK_COOPMAT_KHR 1
#else
#define VKG_VK_COOPMAT_KHR 0
#endif

static bool env_is_1(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                               VkDebugUtilsMessageTypeFlagsEXT types,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types;
    vk_engine *e = user;
    const char *level = "info";
    if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)
        level = "error";
    else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)
        level = "warning";
    if (severity &
        (VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)) {
        if (e) e->validation_messages++;
    }
    gpt2_notice(VKG_NOTICE_VALIDATION, "validation %s: %s", level,
                data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static bool has_ext(const VkExtensionProperties *exts, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0) return true;
    return false;
}

/* Instance extensions of the loader and implicit layers (layer NULL) or of one layer. */
static VkExtensionProperties *instance_exts(const char *layer, uint32_t *n)
{
    *n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, n, NULL) != VK_SUCCESS || *n == 0) return NULL;
    VkExtensionProperties *exts = calloc(*n, sizeof *exts);
    if (!exts || vkEnumerateInstanceExtensionProperties(layer, n, exts) < 0) {
        free(exts);
        *n = 0;
        return NULL;
    }
    return exts;
}

static bool have_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
    VkLayerProperties *layers = calloc(n, sizeof *layers);
    bool found = false;
    if (layers && vkEnumerateInstanceLayerProperties(&n, layers) >= 0)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(layers[i].layerName, name) == 0) found = true;
    free(layers);
    return found;
}

int vk_instance_create(vk_engine *e, VkInstance *out, char *err, size_t errlen)
{
    *out = VK_NULL_HANDLE;
    VkResult r = volkInitialize();
    if (r != VK_SUCCESS) {
        snprintf(err, errlen, "Vulkan loader (libvulkan.so.1) not found: %s", vk_result_str(r));
        return -1;
    }
    uint32_t loader_version = volkGetInstanceVersion();
    if (loader_version < VK_API_VERSION_1_2) {
        snprintf(err, errlen, "the Vulkan loader supports only Vulkan %u.%u; Vulkan 1.2 is needed",
                 VK_API_VERSION_MAJOR(loader_version), VK_API_VERSION_MINOR(loader_version));
        return -1;
    }

    const char *exts[MAX_EXTS];
    uint32_t n_exts = 0;
    const char *layers[1];
    uint32_t n_layers = 0;
    VkInstanceCreateFlags flags = 0;

    uint32_t n_avail = 0;
    VkExtensionProperties *avail = instance_exts(NULL, &n_avail);
    if (has_ext(avail, n_avail, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }

    bool validation = e && env_is_1("VKGPT2_VALIDATION");
    bool debug_utils = false, sync_validation = false;
    if (validation) {
        const char *layer = "VK_LAYER_KHRONOS_validation";
        if (!have_layer(layer)) {
            gpt2_notice(VKG_NOTICE_WARNING,
                        "VKGPT2_VALIDATION=1 but %s is not installed; running without "
                        "validation",
                        layer);
        } else {
            layers[n_layers++] = layer;
            uint32_t n_lext = 0;
            VkExtensionProperties *lext = instance_exts(layer, &n_lext);
            debug_utils = has_ext(avail, n_avail, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
                has_ext(lext, n_lext, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
            if (debug_utils) exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
            if (env_is_1("VKGPT2_VALIDATION_SYNC")) {
                if (has_ext(lext, n_lext, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
                    exts[n_exts++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
                    sync_validation = true;
                } else {
                    gpt2_notice(VKG_NOTICE_WARNING,
                                "the validation layer lacks %s; no synchronization "
                                "validation",
                                VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
                }
            }
            free(lext);
        }
    }
    free(avail);

    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkgpt2",
        .applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
        .pEngineName = "vkgpt2",
        .engineVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
        .apiVersion = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = n_layers,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    /* Chained into the create info, the messenger also reports on vkCreateInstance and
     * vkDestroyInstance themselves. */
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity =
            VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
            VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
        .pUserData = e,
    };
    VkValidationFeatureEnableEXT sync_feature = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    VkValidationFeaturesEXT vfeatures = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = &sync_feature,
    };
    const void **tail = &ci.pNext;
    if (debug_utils) {
        *tail = &dbg;
        tail = &dbg.pNext;
    }
    if (sync_validation) *tail = &vfeatures;

    r = vkCreateInstance(&ci, NULL, out);
    if (r != VK_SUCCESS) {
        *out = VK_NULL_HANDLE;
        vk_set_err(err, errlen, "Vulkan: vkCreateInstance failed", r);
        return -1;
    }
    volkLoadInstanceOnly(*out);
    if (debug_utils && e && vkCreateDebugUtilsMessengerEXT) {
        dbg.pNext = NULL; /* it chained the validation features into the instance create info */
        r = vkCreateDebugUtilsMessengerEXT(*out, &dbg, NULL, &e->messenger);
        if (r != VK_SUCCESS) {
            e->messenger = VK_NULL_HANDLE;
            gpt2_notice(VKG_NOTICE_ERROR, "vkCreateDebugUtilsMessengerEXT failed: %s", vk_result_str(r));
        }
    }
    return 0;
}

static VkExtensionProperties *device_exts(VkPhysicalDevice phys, uint32_t *n)
{
    *n = 0;
    if (vkEnumerateDeviceExtensionProperties(phys, NULL, n, NULL) != VK_SUCCESS || *n == 0) return NULL;
    VkExtensionProperties *exts = calloc(*n, sizeof *exts);
    if (!exts || vkEnumerateDeviceExtensionProperties(phys, NULL, n, exts) < 0) {
        free(exts);
        *n = 0;
        return NULL;
    }
    return exts;
}

void vk_probe_device(VkPhysicalDevice phys, vk_probe *p)
{
    memset(p, 0, sizeof *p);
    vk_caps *c = &p->caps;
    vkGetPhysicalDeviceProperties(phys, &p->props);
    vkGetPhysicalDeviceMemoryProperties(phys, &p->mem);
    uint32_t api = p->props.apiVersion;

    uint32_t n_ext = 0;
    VkExtensionProperties *exts = device_exts(phys, &n_ext);
    bool ext_coopmat_nv = has_ext(exts, n_ext, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    bool ext_coopmat_khr = has_ext(exts, n_ext, "VK_KHR_cooperative_matrix");
    p->ext_size_control =
        api < VK_API_VERSION_1_3 && has_ext(exts, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    p->ext_portability = has_ext(exts, n_ext, "VK_KHR_portability_subset");
    bool ext_driver_props = has_ext(exts, n_ext, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    bool ext_maintenance4 = has_ext(exts, n_ext, "VK_KHR_maintenance4");
    bool ext_cond = has_ext(exts, n_ext, VK_EXT_CONDITIONAL_RENDERING_EXTENSION_NAME);
    free(exts);

    /* properties */
    VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &sub};
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlProperties ssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
    VkPhysicalDeviceIDProperties idp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES,
                                        .pNext = &m3};
    VkPhysicalDeviceMaintenance4Properties m4 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    VkPhysicalDeviceProperties2 props2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &idp};
    if (api >= VK_API_VERSION_1_3 || ext_maintenance4) {
        m4.pNext = props2.pNext;
        props2.pNext = &m4;
    }
    if (api >= VK_API_VERSION_1_2 || ext_driver_props) {
        drv.pNext = props2.pNext;
        props2.pNext = &drv;
    }
    if (api >= VK_API_VERSION_1_3 || p->ext_size_control) {
        ssc.pNext = props2.pNext;
        props2.pNext = &ssc;
    }
    if (api >= VK_API_VERSION_1_1) vkGetPhysicalDeviceProperties2(phys, &props2);

    /* features */
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan13Features f13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    VkPhysicalDeviceSubgroupSizeControlFeatures fssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
#if VKG_VK_COOPMAT_KHR
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcmk = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
#endif
    VkPhysicalDeviceConditionalRenderingFeaturesEXT fcr = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_CONDITIONAL_RENDERING_FEATURES_EXT};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    if (api >= VK_API_VERSION_1_2) {
        f2.pNext = &f11;
        f11.pNext = &f12;
        if (ext_cond) {
            fcr.pNext = f2.pNext;
            f2.pNext = &fcr;
        }
        if (api >= VK_API_VERSION_1_3)
            f12.pNext = &f13;
        else if (p->ext_size_control)
            f12.pNext = &fssc;
        if (ext_coopmat_nv) {
            fcm.pNext = f2.pNext;
            f2.pNext = &fcm;
        }
#if VKG_VK_COOPMAT_KHR
        if (ext_coopmat_khr) {
            fcmk.pNext = f2.pNext;
            f2.pNext = &fcmk;
        }
#endif
        vkGetPhysicalDeviceFeatures2(phys, &f2);
    } else {
        vkGetPhysicalDeviceFeatures(phys, &f2.features);
    }

    /* queue family: one with compute, preferring one with timestamps */
    uint32_t n_fam = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &n_fam, NULL);
    VkQueueFamilyProperties *fams = n_fam ? calloc(n_fam, sizeof *fams) : NULL;
    if (fams) {
        vkGetPhysicalDeviceQueueFamilyProperties(phys, &n_fam, fams);
        for (uint32_t i = 0; i < n_fam; i++) {
            if (!(fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || fams[i].queueCount == 0) continue;
            if (!p->has_compute_queue || (p->timestamp_valid_bits == 0 && fams[i].timestampValidBits > 0)) {
                p->has_compute_queue = true;
                p->queue_family = i;
                p->timestamp_valid_bits = fams[i].timestampValidBits;
            }
        }
        free(fams);
    }

    /* caps */
    snprintf(c->name, sizeof c->name, "%s", p->props.deviceName);
    snprintf(p->driver_name, sizeof p->driver_name, "%s", drv.driverName);
    snprintf(p->driver_info, sizeof p->driver_info, "%s", drv.driverInfo);
    if (drv.driverName[0])
        snprintf(c->driver, sizeof c->driver, "%.120s %.120s", drv.driverName, drv.driverInfo);
    else
        snprintf(c->driver, sizeof c->driver, "(unknown driver)");
    c->type = p->props.deviceType;
    c->api_version = api;
    c->vendor_id = p->props.vendorID;
    memcpy(c->uuid, p->props.pipelineCacheUUID, VK_UUID_SIZE);
    c->driver_version = p->props.driverVersion;
    c->subgroup_size = sub.subgroupSize;
    p->subgroup_ops = sub.supportedOperations;
    p->subgroup_stages = sub.supportedStages;
    c->subgroup_arith = (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
        (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
    p->bda = f12.bufferDeviceAddress;
    c->fp16 = f12.shaderFloat16;
    c->int8 = f12.shaderInt8;
    p->storage8 = f12.storageBuffer8BitAccess;
    c->storage16 = f11.storageBuffer16BitAccess;
    p->scalar_layout = f12.scalarBlockLayout;
    /* glslang gives atomics Device scope, which the memory model allows only with its device-scope
     * feature: enable the model only with it. */
    p->memory_model = f12.vulkanMemoryModel && f12.vulkanMemoryModelDeviceScope;
    c->cond_render = ext_cond && fcr.conditionalRendering;
    p->int64 = f2.features.shaderInt64;
    p->int16 = f2.features.shaderInt16;
    if (api >= VK_API_VERSION_1_3) {
        p->size_control = f13.subgroupSizeControl;
        p->full_subgroups = f13.computeFullSubgroups;
        p->maintenance4 = f13.maintenance4;
    } else if (p->ext_size_control) {
        p->size_control = fssc.subgroupSizeControl;
        p->full_subgroups = fssc.computeFullSubgroups;
    }
    if (p->size_control && (ssc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
        ssc.minSubgroupSize > 0) {
        p->subgroup_min = ssc.minSubgroupSize;
        p->subgroup_max = ssc.maxSubgroupSize;
    } else {
        p->size_control = false;
        p->subgroup_min = p->subgroup_max = sub.subgroupSize;
    }
    c->subgroup_min = p->subgroup_min;
    c->subgroup_max = p->subgroup_max;
    c->subgroup_size_control = p->size_control;
    c->full_subgroups = p->size_control && p->full_subgroups;
    c->memory_model = p->memory_model;
    c->max_wg_subgroups = p->size_control ? ssc.maxComputeWorkgroupSubgroups : 0;

    /* cooperative matrix (NV): look for an f16 x f16 -> f32 subgroup shape */
    if (ext_coopmat_nv && fcm.cooperativeMatrix && vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) {
        uint32_t n = 0;
        if (vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(phys, &n, NULL) == VK_SUCCESS && n) {
            VkCooperativeMatrixPropertiesNV *cm = calloc(n, sizeof *cm);
            if (cm) {
                for (uint32_t i = 0; i < n; i++)
                    cm[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
                vk_coopmat_prop *pr = calloc(n, sizeof *pr);
                if (pr && vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(phys, &n, cm) >= 0) {
                    for (uint32_t i = 0; i < n; i++)
                        pr[i] =
                            (vk_coopmat_prop){.m = cm[i].MSize,
                                              .n = cm[i].NSize,
                                              .k = cm[i].KSize,
                                              .f16_f16_f32 = cm[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                                                  cm[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                                                  cm[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                                                  cm[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV,
                                              .subgroup_scope = cm[i].scope == VK_SCOPE_SUBGROUP_NV};
                    /* 16x16x16 wherever it is in the list (the kernel's shape), else the first
                     * f16 shape, reported but not used */
                    int at = vk_pick_coopmat_shape(pr, (int)n);
                    if (at >= 0) {
                        p->coopmat_m = pr[at].m;
                        p->coopmat_n = pr[at].n;
                        p->coopmat_k = pr[at].k;
                        c->coopmat_nv = true;
                    }
                }
                free(pr);
                free(cm);
            }
        }
    }
    c->coopmat_m = p->coopmat_m;
    c->coopmat_n = p->coopmat_n;
    c->coopmat_k = p->coopmat_k;

    /* cooperative matrix (KHR): the same search. The shader is SPIR-V 1.6 and may use the Vulkan
     * memory model, so a Vulkan 1.3 device with vulkanMemoryModel is required as well. */
#if VKG_VK_COOPMAT_KHR
    if (ext_coopmat_khr && fcmk.cooperativeMatrix && api >= VK_API_VERSION_1_3 && p->memory_model &&
        vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR) {
        uint32_t n = 0;
        if (vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR(phys, &n, NULL) == VK_SUCCESS && n) {
            VkCooperativeMatrixPropertiesKHR *cm = calloc(n, sizeof *cm);
            if (cm) {
                for (uint32_t i = 0; i < n; i++)
                    cm[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
                vk_coopmat_prop *pr = calloc(n, sizeof *pr);
                if (pr && vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR(phys, &n, cm) >= 0) {
                    for (uint32_t i = 0; i < n; i++)
                        pr[i] =
                            (vk_coopmat_prop){.m = cm[i].MSize,
                                              .n = cm[i].NSize,
                                              .k = cm[i].KSize,
                                              .f16_f16_f32 = cm[i].AType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                                                  cm[i].BType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                                                  cm[i].CType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                                                  cm[i].ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR,
                                              .subgroup_scope = cm[i].scope == VK_SCOPE_SUBGROUP_KHR,
                                              .saturating = cm[i].saturatingAccumulation};
                    int at = vk_pick_coopmat_shape(pr, (int)n);
                    if (at >= 0) {
                        c->coopmat_khr_m = pr[at].m;
                        c->coopmat_khr_n = pr[at].n;
                        c->coopmat_khr_k = pr[at].k;
                        c->coopmat_khr = true;
                    }
                }
                free(pr);
                free(cm);
            }
        }
    }
#else
    (void)ext_coopmat_khr;
#endif

    c->timestamps = p->props.limits.timestampComputeAndGraphics && p->timestamp_valid_bits > 0;
    c->timestamp_period_ns = p->props.limits.timestampPeriod;
    c->max_storage_range = p->props.limits.maxStorageBufferRange;
    c->max_alloc = m3.maxMemoryAllocationSize;
    c->max_shared = p->props.limits.maxComputeSharedMemorySize;
    c->max_wg_invocations = p->props.limits.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) {
        c->max_wg_count[i] = p->props.limits.maxComputeWorkGroupCount[i];
        c->max_wg_size[i] = p->props.limits.maxComputeWorkGroupSize[i];
    }
    c->max_buffer = api >= VK_API_VERSION_1_3 || ext_maintenance4 ? m4.maxBufferSize : 0;
    c->max_block = vk_block_limit(c->max_alloc, c->max_buffer);
    if (api >= VK_API_VERSION_1_1) memcpy(c->device_uuid, idp.deviceUUID, VK_UUID_SIZE);
    for (uint32_t i = 0; i < p->mem.memoryHeapCount; i++)
        if ((p->mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            p->mem.memoryHeaps[i].size > c->device_local_bytes)
            c->device_local_bytes = p->mem.memoryHeaps[i].size;
}

const char *vk_probe_unusable(const vk_probe *p)
{
    if (p->caps.api_version < VK_API_VERSION_1_2) return "supports only Vulkan 1.0/1.1 (1.2 is needed)";
    if (!p->has_compute_queue) return "has no compute queue";
    if (!p->bda) return "has no bufferDeviceAddress";
    if (!p->int64) return "has no shaderInt64 (needed for device addresses in shaders)";
    return NULL;
}

static int create_device(vk_engine *e, const vk_probe *p, char *err, size_t errlen)
{
    const char *exts[MAX_EXTS];
    uint32_t n_exts = 0;
    if (p->ext_portability) exts[n_exts++] = "VK_KHR_portability_subset";
    if (p->ext_size_control && p->size_control) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    if (p->caps.coopmat_nv) exts[n_exts++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    if (p->caps.cond_render) exts[n_exts++] = VK_EXT_CONDITIONAL_RENDERING_EXTENSION_NAME;
#if VKG_VK_COOPMAT_KHR
    if (p->caps.coopmat_khr) exts[n_exts++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcmk = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
        .cooperativeMatrix = VK_TRUE};
#endif

    /* Enable exactly the optional features the device has; shaders are picked by vk_ops from the
     * resulting caps. */
    VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceSubgroupSizeControlFeatures fssc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
        .subgroupSizeControl = p->size_control,
        .computeFullSubgroups = p->full_subgroups};
    VkPhysicalDeviceVulkan13Features f13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                            .subgroupSizeControl = p->size_control,
                                            .computeFullSubgroups = p->full_subgroups,
                                            .maintenance4 = p->maintenance4};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .bufferDeviceAddress = VK_TRUE,
                                            .shaderFloat16 = p->caps.fp16,
                                            .shaderInt8 = p->caps.int8,
                                            .storageBuffer8BitAccess = p->storage8,
                                            .scalarBlockLayout = p->scalar_layout,
                                            .vulkanMemoryModel = p->memory_model,
                                            .vulkanMemoryModelDeviceScope = p->memory_model};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12,
                                            .storageBuffer16BitAccess = p->caps.storage16};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &f11,
                                    .features = {.shaderInt64 = VK_TRUE, .shaderInt16 = p->int16}};
    if (p->caps.api_version >= VK_API_VERSION_1_3)
        f12.pNext = &f13;
    else if (p->ext_size_control && p->size_control)
        f12.pNext = &fssc;
    if (p->caps.coopmat_nv) {
        fcm.pNext = f2.pNext;
        f2.pNext = &fcm;
    }
#if VKG_VK_COOPMAT_KHR
    if (p->caps.coopmat_khr) {
        fcmk.pNext = f2.pNext;
        f2.pNext = &fcmk;
    }
#endif
    VkPhysicalDeviceConditionalRenderingFeaturesEXT fcr = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_CONDITIONAL_RENDERING_FEATURES_EXT,
        .conditionalRendering = VK_TRUE};
    if (p->caps.cond_render) {
        fcr.pNext = f2.pNext;
        f2.pNext = &fcr;
    }

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = p->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vk_fault_create_device();
    if (r == VK_SUCCESS) r = vkCreateDevice(e->phys, &dci, NULL, &e->device);
    if (r != VK_SUCCESS) {
        e->device = VK_NULL_HANDLE;
        char what[400];
        snprintf(what, sizeof what, "Vulkan: vkCreateDevice failed on %s", p->caps.name);
        vk_set_err(err, errlen, what, r);
        return -1;
    }
    volkLoadDevice(e->device);
    vkGetDeviceQueue(e->device, p->queue_family, 0, &e->queue);
    e->queue_family = p->queue_family;
    e->timestamp_valid_bits = p->timestamp_valid_bits;
    e->device_id = p->props.deviceID;
    e->mem_props = p->mem;
    return 0;
}

/* With VKGPT2_KEEP_DRIVERS_LOADED=1 (the tests set it) a first, hidden instance that has enumerated
 * the devices is kept for the life of the process, so the loader never unloads the drivers. Leak
 * checkers then still see the drivers' static state, instead of reporting their one-time
 * allocations as leaks from an unknown (unloaded) module. */
static VkInstance keep_drivers_instance;

void vk_keep_drivers_loaded(void)
{
    if (keep_drivers_instance || !env_is_1("VKGPT2_KEEP_DRIVERS_LOADED")) return;
    char err[256];
    if (vk_instance_create(NULL, &keep_drivers_instance, err, sizeof err))
        return; /* the real instance will fail the same way and report it */
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(keep_drivers_instance, &n, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        gpt2_notice(VKG_NOTICE_ERROR, "keep-drivers instance: %s", vk_result_str(r));
}

/* What try_create needs to create the logical device of one candidate. */
typedef struct create_ctx {
    vk_engine *e;
    VkPhysicalDevice *phys;
    vk_probe *probes;
} create_ctx;

/* vk_try_candidates callback: creates the logical device of device dev. */
static int try_create(void *ctx, int dev, char *err, size_t errlen)
{
    create_ctx *cc = ctx;
    cc->e->phys = cc->phys[dev];
    cc->e->caps = cc->probes[dev].caps;
    if (create_device(cc->e, &cc->probes[dev], err, errlen) == 0) return 0;
    cc->e->phys = VK_NULL_HANDLE;
    memset(&cc->e->caps, 0, sizeof cc->e->caps);
    return -1;
}

int vk_engine_create(vk_engine **out, int device_index, char *err, size_t errlen)
{
    char sel[16];
    if (device_index < 0) return vk_engine_create_named(out, NULL, err, errlen);
    snprintf(sel, sizeof sel, "%d", device_index);
    return vk_engine_create_named(out, sel, err, errlen);
}

int vk_engine_create_sel(vk_engine **out, int device_index, const char *name, char *err, size_t errlen)
{
    return name ? vk_engine_create_named(out, name, err, errlen)
                : vk_engine_create(out, device_index, err, errlen);
}

int vk_engine_create_named(vk_engine **out, const char *device, char *err, size_t errlen)
{
    if (device && !*device) device = NULL;
    *out = NULL;
    vk_keep_drivers_loaded();
    if (err && errlen) err[0] = '\0';
    vk_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of host memory");
        return -1;
    }
    if (vk_instance_create(e, &e->instance, err, errlen)) goto fail;

    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(e->instance, &n, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        vk_set_err(err, errlen, "Vulkan: vkEnumeratePhysicalDevices failed", r);
        goto fail;
    }
    if (n == 0) {
        snprintf(err, errlen,
                 "Vulkan: no device found (no driver installed, or VK_ICD_FILENAMES / "
                 "VK_DRIVER_FILES point nowhere)");
        goto fail;
    }
    VkPhysicalDevice *phys = calloc(n, sizeof *phys);
    vk_probe *probes = calloc(n, sizeof *probes);
    if (!phys || !probes) {
        free(phys);
        free(probes);
        snprintf(err, errlen, "out of host memory");
        goto fail;
    }
    r = vkEnumeratePhysicalDevices(e->instance, &n, phys);
    if (r < 0) {
        free(phys);
        free(probes);
        vk_set_err(err, errlen, "Vulkan: vkEnumeratePhysicalDevices failed", r);
        goto fail;
    }
    /* Probe every device: the ranking and the matching need them all. */
    const char **names = calloc(n, sizeof *names);
    uint8_t(*uuids)[VK_UUID_SIZE] = calloc(n, sizeof *uuids);
    vk_rank_info *rank = calloc(n, sizeof *rank);
    int *order = calloc(n, sizeof *order);
    int rc = -1;
    if (!names || !uuids || !rank || !order) {
        snprintf(err, errlen, "out of host memory");
        goto chosen;
    }
    /* Emulated traits (tests): applied before ranking and device creation, so the device is
     * created without what is emulated away. */
    if (vk_emulate_parse(getenv("VKGPT2_EMULATE"), &e->emu, err, errlen)) goto chosen;
    const char *why_last = NULL;
    for (uint32_t i = 0; i < n; i++) {
        vk_probe_device(phys[i], &probes[i]);
        vk_emulate_caps(&e->emu, &probes[i].caps);
        const vk_caps *c = &probes[i].caps;
        names[i] = c->name;
        memcpy(uuids[i], c->device_uuid, VK_UUID_SIZE);
        const char *why = vk_probe_unusable(&probes[i]);
        if (why) why_last = why;
        rank[i] = (vk_rank_info){.usable = why == NULL,
                                 .type = c->type,
                                 .device_local_bytes = c->device_local_bytes,
                                 .coopmat = vk_coopmat_gate(c, false, false, NULL) ||
                                     vk_coopmat_gate(c, true, VKG_VK_COOPMAT_KHR != 0, NULL),
                                 .fp16 = c->fp16,
                                 .subgroup_arith = c->subgroup_arith};
    }
    int n_cand = 0;
    if (device) {
        int at = vk_match_device(device, names, (const uint8_t(*)[VK_UUID_SIZE])uuids, (int)n, err, errlen);
        if (at >= 0) {
            const char *why = vk_probe_unusable(&probes[at]);
            if (why)
                snprintf(err, errlen, "Vulkan: device %d (%s) %s", at, probes[at].caps.name, why);
            else
                order[n_cand++] = at;
        }
        if (n_cand == 0) goto chosen;
    } else {
        n_cand = vk_rank_devices(rank, (int)n, order);
        if (n_cand == 0) {
            snprintf(err, errlen, "Vulkan: no usable device among %u (last one %s)", n,
                     why_last ? why_last : "unusable");
            goto chosen;
        }
    }
    /* The best candidate whose logical device can be created: a driver that refuses one (out of
     * memory, a feature it reported but cannot enable) does not stop the next. */
    create_ctx cc = {.e = e, .phys = phys, .probes = probes};
    int won = vk_try_candidates(order, n_cand, try_create, &cc, err, errlen);
    rc = won >= 0 ? 0 : -1;
chosen:
    free(names);
    free(uuids);
    free(rank);
    free(order);
    free(phys);
    free(probes);
    if (rc) goto fail;
    e->fence_timeout_ns =
        vk_fence_timeout_ns(getenv("VKGPT2_FENCE_TIMEOUT_MS"), e->caps.type == VK_PHYSICAL_DEVICE_TYPE_CPU);

    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = e->queue_family,
    };
    r = vkCreateCommandPool(e->device, &pci, NULL, &e->pool);
    if (r != VK_SUCCESS) {
        e->pool = VK_NULL_HANDLE;
        vk_set_err(err, errlen, "Vulkan: vkCreateCommandPool failed", r);
        goto fail;
    }
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = e->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    r = vkAllocateCommandBuffers(e->device, &cai, &e->xfer_cmd);
    if (r != VK_SUCCESS) {
        e->xfer_cmd = VK_NULL_HANDLE;
        vk_set_err(err, errlen, "Vulkan: vkAllocateCommandBuffers failed", r);
        goto fail;
    }
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    r = vkCreateFence(e->device, &fci, NULL, &e->xfer_fence);
    if (r != VK_SUCCESS) {
        e->xfer_fence = VK_NULL_HANDLE;
        vk_set_err(err, errlen, "Vulkan: vkCreateFence failed", r);
        goto fail;
    }
    if (vk_pipelines_init(e, err, errlen)) goto fail;
    *out = e;
    return 0;

fail:
    vk_engine_destroy(e);
    return -1;
}

void vk_engine_destroy(vk_engine *e)
{
    if (!e) return;
    if (e->device && e->xfer_pending) {
        /* a transfer whose wait timed out: one more bounded wait before anything is freed */
        if (vkWaitForFences(e->device, 1, &e->xfer_fence, VK_TRUE, e->fence_timeout_ns) != VK_SUCCESS)
            e->n_stuck++;
        e->xfer_pending = false;
    }
    if (e->device && e->n_stuck > 0) {
        /* Work that never finished may still use every object of the device: nothing is
         * destroyed (vkDeviceWaitIdle would block for ever). The process keeps running on the
         * CPU; the driver reclaims the device when it exits. */
        vk_pipeline *next;
        for (vk_pipeline *p = e->pipelines; p; p = next) {
            next = p->next;
            free(p);
        }
        for (int i = 0; i < e->n_blocks; i++) free(e->blocks[i].free);
        free(e->blocks);
        free(e);
        return;
    }
    if (e->device) {
        VkResult r = vkDeviceWaitIdle(e->device);
        if (r != VK_SUCCESS) gpt2_notice(VKG_NOTICE_ERROR, "vkDeviceWaitIdle: %s", vk_result_str(r));
        vk_pipelines_destroy(e);
        vk_mem_destroy_all(e);
        if (e->xfer_fence) vkDestroyFence(e->device, e->xfer_fence, NULL);
        if (e->pool) vkDestroyCommandPool(e->device, e->pool, NULL); /* frees xfer_cmd */
        vkDestroyDevice(e->device, NULL);
    }
    if (e->instance) {
        if (e->messenger) vkDestroyDebugUtilsMessengerEXT(e->instance, e->messenger, NULL);
        vkDestroyInstance(e->instance, NULL);
    }
    free(e);
}

const vk_caps *vk_engine_caps(const vk_engine *e) { return &e->caps; }

VkDevice vk_engine_device(const vk_engine *e) { return e->device; }

int vk_validation_messages(const vk_engine *e) { return e ? e->validation_messages : 0; }
