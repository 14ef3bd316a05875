/* vk_fault.h - injected device faults, for testing what the program does when the GPU fails.
 *
 * VKGPT2_FAULT="alloc:N" makes the Nth vk_mem_alloc of the process (1-based, counting every call)
 * fail as if vkAllocateMemory had returned VK_ERROR_OUT_OF_DEVICE_MEMORY; "submit:N" makes the Nth
 * submission of a recorded sequence (vk_seq_submit, so vk_seq_run: the steps of generation; the
 * blocking transfers of uploads are not counted) return VK_ERROR_DEVICE_LOST, and every later
 * submission of the process too, as a lost device would. "hang:N": the Nth submission of a
 * sequence is made, but waiting for it reports VK_TIMEOUT at once, as a fence that did not signal
 * within the fence timeout (VKGPT2_FENCE_TIMEOUT_MS) would; the engine then treats the device as
 * hung (every later submission and transfer fails). "create:N": the Nth vkCreateDevice of the
 * process fails with VK_ERROR_INITIALIZATION_FAILED (the next candidate device is tried).
 * "variant:NAME": every output of kernel variant NAME ("subgroup", "coopmat_nv", "coopmat_khr";
 * see vulkan/variant_guard.h) is perturbed after it is computed, as a miscompiled kernel's would
 * be, so that the variant guard's check fails and the fallback can be tested. The guard caches that
 * verdict like any other: use a scratch XDG_CACHE_HOME with it.
 * Several faults: "alloc:3,submit:10". The variable is read when it changes, which restarts the
 * counts. Unset: no cost but a getenv.
 */
#ifndef VKG_VK_FAULT_H
#define VKG_VK_FAULT_H

#include "vk_engine.h"

/* Called once per vk_mem_alloc / vk_seq_submit: VK_SUCCESS, or the error to report instead. */
VkResult vk_fault_alloc(void);
VkResult vk_fault_submit(void);
/* Called once per vk_seq_submit that goes ahead: whether its wait is to report VK_TIMEOUT. */
bool vk_fault_hang(void);
/* Called once per vkCreateDevice: VK_SUCCESS, or the error to report instead. */
VkResult vk_fault_create_device(void);

/* Whether the outputs of kernel variant `variant` are to be perturbed (variant:NAME). */
bool vk_fault_variant(const char *variant);
/* While paused (calls nest), allocations and submissions are not counted by alloc:N, submit:N and
 * hang:N: the variant guard's own check runs paused, so the counts mean the same whether or not
 * a verdict was cached. */
void vk_fault_pause(bool on);

/* The VkResult of the last failed submit or wait of a sequence (VK_SUCCESS when none failed), so
 * the caller can name it in its one-line error. */
VkResult vk_seq_last_error(const vk_seq *s);

/* Why the last transfer could not get its staging buffer ("" if it could), for the same purpose. */
const char *vk_mem_staging_error(void);

#endif
