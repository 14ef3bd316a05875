/* result.c - VkResult in words. */
#include <stdio.h>
#include <string.h>

#include "vk_internal.h"

const char *vk_result_str(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS: success";
    case VK_NOT_READY: return "VK_NOT_READY: not ready yet";
    case VK_TIMEOUT: return "VK_TIMEOUT: timed out";
    case VK_EVENT_SET: return "VK_EVENT_SET: event is set";
    case VK_EVENT_RESET: return "VK_EVENT_RESET: event is reset";
    case VK_INCOMPLETE: return "VK_INCOMPLETE: result incomplete (array too small)";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY: out of host memory";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY: out of device memory";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED: initialization failed";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST: device lost (driver crash, hang or reset)";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED: memory map failed";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT: requested layer not installed";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
        return "VK_ERROR_EXTENSION_NOT_PRESENT: requested extension not supported";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT: requested feature not supported";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
        return "VK_ERROR_INCOMPATIBLE_DRIVER: no compatible Vulkan driver (ICD) found";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS: too many objects of this type";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED: format not supported";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL: pool fragmented";
    case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN: unknown error";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY: out of pool memory";
    case VK_ERROR_INVALID_EXTERNAL_HANDLE: return "VK_ERROR_INVALID_EXTERNAL_HANDLE: invalid external handle";
    case VK_ERROR_FRAGMENTATION: return "VK_ERROR_FRAGMENTATION: memory fragmented";
    case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS:
        return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: invalid opaque capture address";
    case VK_PIPELINE_COMPILE_REQUIRED: return "VK_PIPELINE_COMPILE_REQUIRED: pipeline compile required";
    case VK_ERROR_SURFACE_LOST_KHR: return "VK_ERROR_SURFACE_LOST_KHR: surface lost";
    case VK_ERROR_NATIVE_WINDOW_IN_USE_KHR: return "VK_ERROR_NATIVE_WINDOW_IN_USE_KHR: native window in use";
    case VK_SUBOPTIMAL_KHR: return "VK_SUBOPTIMAL_KHR: suboptimal";
    case VK_ERROR_OUT_OF_DATE_KHR: return "VK_ERROR_OUT_OF_DATE_KHR: out of date";
    case VK_ERROR_VALIDATION_FAILED_EXT: return "VK_ERROR_VALIDATION_FAILED_EXT: validation failed";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV: invalid shader";
    case VK_ERROR_NOT_PERMITTED_KHR: return "VK_ERROR_NOT_PERMITTED_KHR: not permitted";
    case VK_THREAD_IDLE_KHR: return "VK_THREAD_IDLE_KHR: thread idle";
    case VK_THREAD_DONE_KHR: return "VK_THREAD_DONE_KHR: thread done";
    case VK_OPERATION_DEFERRED_KHR: return "VK_OPERATION_DEFERRED_KHR: operation deferred";
    case VK_OPERATION_NOT_DEFERRED_KHR: return "VK_OPERATION_NOT_DEFERRED_KHR: operation not deferred";
    default: break;
    }
    return "unrecognized VkResult";
}

void vk_set_err(char *err, size_t errlen, const char *what, VkResult r)
{
    if (err && errlen) snprintf(err, errlen, "%s: %s (%d)", what, vk_result_str(r), (int)r);
}
