/* memory.c - a few big blocks of device memory, each one buffer reached by device address,
 * sub-allocated first-fit from a sorted free list; blocking uploads/downloads through a staging
 * buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_fault.h"
#include "vk_internal.h"
#include "core/notice.h"

/* ---- injected faults (vk_fault.h) ---- */

static char fault_env[64];                   /* VKGPT2_FAULT as last seen */
static long fault_alloc_at, fault_submit_at; /* 1-based call to fail; 0: none */
static long fault_hang_at, fault_create_at;  /* likewise for hang:N and create:N */
static long n_allocs, n_submits;             /* calls so far (since the variable last changed) */
static long n_hang_submits, n_creates;       /* the same for hang:N and create:N */
static char fault_variant[32];               /* variant:NAME: the kernel variant whose output is perturbed */
static int fault_paused;                     /* vk_fault_pause depth: the counts stand still while > 0 */

static void fault_refresh(void)
{
    const char *v = getenv("VKGPT2_FAULT");
    if (!v) v = "";
    if (strncmp(v, fault_env, sizeof fault_env - 1) == 0 && strlen(v) < sizeof fault_env) return;
    snprintf(fault_env, sizeof fault_env, "%s", v);
    fault_alloc_at = fault_submit_at = fault_hang_at = fault_create_at = 0;
    n_allocs = n_submits = n_hang_submits = n_creates = 0;
    fault_variant[0] = '\0';
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        long n = 0;
        if (len > 6 && strncmp(p, "alloc:", 6) == 0)
            n = strtol(p + 6, NULL, 10), fault_alloc_at = n > 0 ? n : 0;
        else if (len > 7 && strncmp(p, "submit:", 7) == 0)
            n = strtol(p + 7, NULL, 10), fault_submit_at = n > 0 ? n : 0;
        else if (len > 5 && strncmp(p, "hang:", 5) == 0)
            n = strtol(p + 5, NULL, 10), fault_hang_at = n > 0 ? n : 0;
        else if (len > 7 && strncmp(p, "create:", 7) == 0)
            n = strtol(p + 7, NULL, 10), fault_create_at = n > 0 ? n : 0;
        else if (len > 8 && len - 8 < sizeof fault_variant && strncmp(p, "variant:", 8) == 0)
            snprintf(fault_variant, sizeof fault_variant, "%.*s", (int)(len - 8), p + 8);
        else
            gpt2_notice(VKG_NOTICE_WARNING,
                        "VKGPT2_FAULT: '%.*s' is not alloc:N, submit:N, hang:N, "
                        "create:N or variant:NAME; ignored",
                        (int)len, p);
        p += len;
        if (*p == ',') p++;
    }
}

VkResult vk_fault_alloc(void)
{
    fault_refresh();
    if (fault_paused) return VK_SUCCESS;
    return ++n_allocs == fault_alloc_at ? VK_ERROR_OUT_OF_DEVICE_MEMORY : VK_SUCCESS;
}

VkResult vk_fault_submit(void)
{
    fault_refresh();
    if (fault_paused) return VK_SUCCESS;
    /* A lost device stays lost. */
    return fault_submit_at && ++n_submits >= fault_submit_at ? VK_ERROR_DEVICE_LOST : VK_SUCCESS;
}

bool vk_fault_hang(void)
{
    fault_refresh();
    if (fault_paused) return false;
    return fault_hang_at && ++n_hang_submits == fault_hang_at;
}

VkResult vk_fault_create_device(void)
{
    fault_refresh();
    return ++n_creates == fault_create_at ? VK_ERROR_INITIALIZATION_FAILED : VK_SUCCESS;
}

bool vk_fault_variant(const char *variant)
{
    fault_refresh();
    return fault_variant[0] && variant && strcmp(fault_variant, variant) == 0;
}

void vk_fault_pause(bool on)
{
    if (on)
        fault_paused++;
    else if (fault_paused > 0)
        fault_paused--;
}

static VkDeviceSize round_up(VkDeviceSize x, VkDeviceSize a) { return (x + a - 1) / a * a; }

/* "1.50 GiB (1610612736 bytes)" */
static const char *fmt_bytes(char *buf, size_t len, uint64_t n)
{
    const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    else
        snprintf(buf, len, "%.2f %s (%llu bytes)", v, unit[u], (unsigned long long)n);
    return buf;
}

static const char *kind_name(vk_mem_kind kind)
{
    return kind == VKE_MEM_HOST ? "host-visible" : "device-local";
}

/* The best memory type among type_bits for kind, or -1. Emulating a discrete GPU (nohostvis), a
 * device block avoids host-visible types and a host block device-local ones, where the device has
 * a type without that property. */
static int pick_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t type_bits, vk_mem_kind kind,
                     bool discrete)
{
    if (discrete) {
        VkMemoryPropertyFlags avoid =
            kind == VKE_MEM_HOST ? VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT : VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
        uint32_t without = 0;
        for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
            if (!(mp->memoryTypes[i].propertyFlags & avoid)) without |= 1u << i;
        int t = pick_type(mp, type_bits & without, kind, false);
        if (t >= 0) return t;
    }
    int best = -1, best_score = -1;
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        if (!(type_bits & (1u << i))) continue;
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        int score;
        if (kind == VKE_MEM_HOST) {
            VkMemoryPropertyFlags need =
                VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
            if ((f & need) != need) continue;
            /* cached memory makes readbacks fast */
            score = (f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) ? 2 : 1;
        } else {
            if (f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)
                score = (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) ? 2 : 3;
            else
                score = 1;
        }
        if (score > best_score) {
            best_score = score;
            best = (int)i;
        }
    }
    return best;
}

static void block_destroy(vk_engine *e, vk_block *b)
{
    if (b->map) vkUnmapMemory(e->device, b->memory);
    if (b->buffer) vkDestroyBuffer(e->device, b->buffer, NULL);
    if (b->memory) vkFreeMemory(e->device, b->memory, NULL);
    free(b->free);
    memset(b, 0, sizeof *b);
}

/* Creates a block of size bytes of kind; returns its index, or -1 with err. */
static int block_create(vk_engine *e, VkDeviceSize size, vk_mem_kind kind, VkDeviceSize asked, char *err,
                        size_t errlen)
{
    char s1[64], s2[64];
    vk_block b = {.size = size, .kind = kind};
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
            VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT |
            VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
            (e->caps.cond_render ? VK_BUFFER_USAGE_CONDITIONAL_RENDERING_BIT_EXT : 0),
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(e->device, &bci, NULL, &b.buffer);
    if (r != VK_SUCCESS) {
        snprintf(err, errlen, "cannot allocate %s of %s memory: vkCreateBuffer(%s): %s",
                 fmt_bytes(s1, sizeof s1, asked), kind_name(kind), fmt_bytes(s2, sizeof s2, size),
                 vk_result_str(r));
        return -1;
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(e->device, b.buffer, &req);
    int type = pick_type(&e->mem_props, req.memoryTypeBits, kind, e->emu.no_host_visible);
    if (type < 0) {
        snprintf(err, errlen, "cannot allocate %s: the device has no %s memory type for buffers",
                 fmt_bytes(s1, sizeof s1, asked), kind_name(kind));
        block_destroy(e, &b);
        return -1;
    }
    uint32_t heap = e->mem_props.memoryTypes[type].heapIndex;
    VkDeviceSize heap_size = e->mem_props.memoryHeaps[heap].size;
    if (req.size > heap_size) {
        snprintf(err, errlen, "cannot allocate %s of %s memory: the heap holds only %s",
                 fmt_bytes(s1, sizeof s1, asked), kind_name(kind), fmt_bytes(s2, sizeof s2, heap_size));
        block_destroy(e, &b);
        return -1;
    }
    VkMemoryAllocateFlagsInfo flags = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
        .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT,
    };
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .pNext = &flags,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    r = vkAllocateMemory(e->device, &mai, NULL, &b.memory);
    if (r != VK_SUCCESS) {
        b.memory = VK_NULL_HANDLE;
        snprintf(err, errlen,
                 "cannot allocate %s of %s memory: vkAllocateMemory(%s) in a heap of "
                 "%s: %s",
                 fmt_bytes(s1, sizeof s1, asked), kind_name(kind), fmt_bytes(s2, sizeof s2, req.size),
                 fmt_bytes((char[64]){0}, 64, heap_size), vk_result_str(r));
        block_destroy(e, &b);
        return -1;
    }
    r = vkBindBufferMemory(e->device, b.buffer, b.memory, 0);
    if (r != VK_SUCCESS) {
        vk_set_err(err, errlen, "vkBindBufferMemory failed", r);
        block_destroy(e, &b);
        return -1;
    }
    VkBufferDeviceAddressInfo ai = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
        .buffer = b.buffer,
    };
    b.addr = vkGetBufferDeviceAddress(e->device, &ai);
    if (kind == VKE_MEM_HOST) {
        r = vkMapMemory(e->device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.map);
        if (r != VK_SUCCESS) {
            b.map = NULL;
            vk_set_err(err, errlen, "vkMapMemory failed", r);
            block_destroy(e, &b);
            return -1;
        }
    }
    b.cap_free = 8;
    b.free = malloc((size_t)b.cap_free * sizeof *b.free);
    if (!b.free) {
        snprintf(err, errlen, "out of host memory");
        block_destroy(e, &b);
        return -1;
    }
    b.free[0] = (vk_free_range){0, size};
    b.n_free = 1;

    int slot = -1;
    for (int i = 0; i < e->n_blocks; i++)
        if (!e->blocks[i].memory) {
            slot = i;
            break;
        }
    if (slot < 0) {
        vk_block *nb = realloc(e->blocks, (size_t)(e->n_blocks + 1) * sizeof *nb);
        if (!nb) {
            snprintf(err, errlen, "out of host memory");
            block_destroy(e, &b);
            return -1;
        }
        e->blocks = nb;
        slot = e->n_blocks++;
    }
    e->blocks[slot] = b;
    return slot;
}

/* First fit of size (a multiple of VKE_MEM_ALIGN) in block b: the offset, or -1. */
static int64_t block_take(vk_block *b, VkDeviceSize size)
{
    for (int i = 0; i < b->n_free; i++) {
        vk_free_range *f = &b->free[i];
        if (f->size < size) continue;
        VkDeviceSize off = f->offset;
        f->offset += size;
        f->size -= size;
        if (f->size == 0) {
            memmove(f, f + 1, (size_t)(b->n_free - i - 1) * sizeof *f);
            b->n_free--;
        }
        b->used += size;
        return (int64_t)off;
    }
    return -1;
}

/* Returns [off, off + size) to block b's free list, merging with its neighbours. */
static int block_give(vk_block *b, VkDeviceSize off, VkDeviceSize size)
{
    int i = 0;
    while (i < b->n_free && b->free[i].offset < off) i++;
    bool merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == off;
    bool merge_next = i < b->n_free && off + size == b->free[i].offset;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], (size_t)(b->n_free - i - 1) * sizeof *b->free);
        b->n_free--;
    } else if (merge_prev) {
        b->free[i - 1].size += size;
    } else if (merge_next) {
        b->free[i].offset = off;
        b->free[i].size += size;
    } else {
        if (b->n_free == b->cap_free) {
            vk_free_range *nf = realloc(b->free, (size_t)b->cap_free * 2 * sizeof *nf);
            if (!nf) return -1; /* the range leaks; the block is still consistent */
            b->free = nf;
            b->cap_free *= 2;
        }
        memmove(&b->free[i + 1], &b->free[i], (size_t)(b->n_free - i) * sizeof *b->free);
        b->free[i] = (vk_free_range){off, size};
        b->n_free++;
    }
    b->used -= size;
    return 0;
}

int vk_mem_alloc(vk_engine *e, vk_mem *m, VkDeviceSize size, vk_mem_kind kind, char *err, size_t errlen)
{
    char s1[64], s2[64];
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    memset(m, 0, sizeof *m);
    m->block = -1;
    if (kind != VKE_MEM_DEVICE && kind != VKE_MEM_HOST) {
        snprintf(err, errlen, "vk_mem_alloc: unknown memory kind %d", (int)kind);
        return -1;
    }
    VkResult fault = vk_fault_alloc();
    if (fault != VK_SUCCESS) {
        snprintf(err, errlen, "cannot allocate %s of %s memory: %s (VKGPT2_FAULT)",
                 fmt_bytes(s1, sizeof s1, size), kind_name(kind), vk_result_str(fault));
        return -1;
    }
    VkDeviceSize want = round_up(size ? size : 1, VKE_MEM_ALIGN);
    if (want < size || want > e->caps.max_block) {
        /* every block is one buffer: the limit is the smaller of the allocation and buffer
         * limits (vk_block_limit) */
        bool by_buffer = e->caps.max_block < e->caps.max_alloc;
        snprintf(err, errlen, "cannot allocate %s of %s memory: larger than the device's %s of %s",
                 fmt_bytes(s1, sizeof s1, size), kind_name(kind),
                 by_buffer ? "maxBufferSize" : "maxMemoryAllocationSize",
                 fmt_bytes(s2, sizeof s2, e->caps.max_block));
        return -1;
    }
    int bi = -1;
    int64_t off = -1;
    for (int i = 0; i < e->n_blocks && off < 0; i++) {
        vk_block *b = &e->blocks[i];
        if (b->memory && b->kind == kind && b->size - b->used >= want) {
            off = block_take(b, want);
            bi = i;
        }
    }
    if (off < 0) {
        VkDeviceSize def = kind == VKE_MEM_HOST ? VKE_BLOCK_BYTES_HOST : VKE_BLOCK_BYTES_DEVICE;
        VkDeviceSize bsize = want > def ? want : def;
        if (bsize > e->caps.max_block) bsize = e->caps.max_block;
        bi = block_create(e, bsize, kind, size, err, errlen);
        if (bi < 0 && bsize > want) /* no room for a whole default block: try just what is asked */
            bi = block_create(e, want, kind, size, err, errlen);
        if (bi < 0) return -1;
        off = block_take(&e->blocks[bi], want);
        if (off < 0) {
            snprintf(err, errlen, "vk_mem_alloc: internal error (new block too small)");
            return -1;
        }
    }
    vk_block *b = &e->blocks[bi];
    m->buffer = b->buffer;
    m->offset = (VkDeviceSize)off;
    m->size = size;
    m->addr = b->addr + (VkDeviceSize)off;
    m->map = b->map ? (char *)b->map + off : NULL;
    m->block = bi;
    if (kind == VKE_MEM_DEVICE) e->device_bytes += want;
    return 0;
}

void vk_mem_free(vk_engine *e, vk_mem *m)
{
    if (!e || !m || m->block < 0 || m->block >= e->n_blocks || !m->buffer) return;
    vk_block *b = &e->blocks[m->block];
    VkDeviceSize want = round_up(m->size ? m->size : 1, VKE_MEM_ALIGN);
    if (b->buffer != m->buffer) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_mem_free: allocation does not belong to its block");
        return;
    }
    block_give(b, m->offset, want);
    if (b->kind == VKE_MEM_DEVICE) e->device_bytes -= want;
    VkDeviceSize def = b->kind == VKE_MEM_HOST ? VKE_BLOCK_BYTES_HOST : VKE_BLOCK_BYTES_DEVICE;
    if (b->used == 0 && b->size > def && !e->hung) {
        /* an oversized block made for one big tensor: give the memory back; the device must be
         * done with it, as with any freed allocation */
        block_destroy(e, b);
    }
    memset(m, 0, sizeof *m);
    m->block = -1;
}

uint64_t vk_mem_device_bytes(const vk_engine *e) { return e->device_bytes; }

void vk_mem_destroy_all(vk_engine *e)
{
    for (int i = 0; i < e->n_blocks; i++)
        if (e->blocks[i].memory) block_destroy(e, &e->blocks[i]);
    free(e->blocks);
    e->blocks = NULL;
    e->n_blocks = 0;
    e->have_staging = false;
}

/* ---- blocking transfers ---- */

static char staging_err[256]; /* why the staging buffer could not be made (vk_fault.h) */

const char *vk_mem_staging_error(void) { return staging_err; }

static int staging(vk_engine *e)
{
    if (e->have_staging) return 0;
    char err[200];
    if (vk_mem_alloc(e, &e->staging, VKE_STAGING_BYTES, VKE_MEM_HOST, err, sizeof err)) {
        /* No message here: the caller's one-line error names it (vk_mem_staging_error). */
        snprintf(staging_err, sizeof staging_err, "staging buffer: %s", err);
        return -1;
    }
    e->have_staging = true;
    return 0;
}

static int xfer_begin(vk_engine *e)
{
    if (e->hung) { /* the transfer command buffer may still be in use; the device is not trusted */
        gpt2_notice(VKG_NOTICE_ERROR, "transfer: %s (the device timed out before)",
                    vk_result_str(VK_TIMEOUT));
        return -1;
    }
    VkResult r = vkResetCommandBuffer(e->xfer_cmd, 0);
    if (r == VK_SUCCESS) {
        VkCommandBufferBeginInfo bi = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
            .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };
        r = vkBeginCommandBuffer(e->xfer_cmd, &bi);
    }
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "transfer: vkBeginCommandBuffer: %s", vk_result_str(r));
        return -1;
    }
    /* Barrier: shaders and copies of earlier submissions may still write (or read) the memory this
     * transfer reads or overwrites; make their writes visible to the transfer stage first. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(e->xfer_cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    return 0;
}

static int xfer_submit_wait(vk_engine *e)
{
    /* Barrier: what the transfer wrote must be visible to the host (downloads read the staging
     * buffer after the fence) and to shaders and copies of later submissions. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
            VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(e->xfer_cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
                             VK_PIPELINE_STAGE_TRANSFER_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(e->xfer_cmd);
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "transfer: vkEndCommandBuffer: %s", vk_result_str(r));
        return -1;
    }
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &e->xfer_cmd,
    };
    r = vkQueueSubmit(e->queue, 1, &si, e->xfer_fence);
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "transfer: vkQueueSubmit: %s", vk_result_str(r));
        return -1;
    }
    /* A finite wait (the fence timeout): a hung GPU fails the transfer instead of the process. */
    r = vkWaitForFences(e->device, 1, &e->xfer_fence, VK_TRUE, e->fence_timeout_ns);
    if (r == VK_TIMEOUT) {
        e->hung = true;
        e->xfer_pending = true; /* vk_engine_destroy waits once more before freeing anything */
    }
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "transfer: vkWaitForFences: %s", vk_result_str(r));
        return -1;
    }
    r = vkResetFences(e->device, 1, &e->xfer_fence);
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "transfer: vkResetFences: %s", vk_result_str(r));
        return -1;
    }
    return 0;
}

static int check_range(const char *what, const vk_mem *m, VkDeviceSize off, size_t n)
{
    if (!m || !m->buffer) {
        gpt2_notice(VKG_NOTICE_ERROR, "%s: no buffer", what);
        return -1;
    }
    if (off > m->size || n > m->size - off) {
        gpt2_notice(VKG_NOTICE_ERROR, "%s: %zu bytes at offset %llu overrun an allocation of %llu", what, n,
                    (unsigned long long)off, (unsigned long long)m->size);
        return -1;
    }
    return 0;
}

int vk_upload(vk_engine *e, const vk_mem *dst, VkDeviceSize off, const void *src, size_t n)
{
    if (check_range("vk_upload", dst, off, n)) return -1;
    if (n == 0) return 0;
    if (dst->map) {
        memcpy((char *)dst->map + off, src, n);
        return 0;
    }
    if (staging(e)) return -1;
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < VKE_STAGING_BYTES ? n - done : (size_t)VKE_STAGING_BYTES;
        memcpy(e->staging.map, (const char *)src + done, chunk);
        if (xfer_begin(e)) return -1;
        VkBufferCopy c = {
            .srcOffset = e->staging.offset,
            .dstOffset = dst->offset + off + done,
            .size = chunk,
        };
        vkCmdCopyBuffer(e->xfer_cmd, e->staging.buffer, dst->buffer, 1, &c);
        if (xfer_submit_wait(e)) return -1;
        done += chunk;
    }
    return 0;
}

int vk_download(vk_engine *e, const vk_mem *src, VkDeviceSize off, void *dst, size_t n)
{
    if (check_range("vk_download", src, off, n)) return -1;
    if (n == 0) return 0;
    if (src->map) {
        memcpy(dst, (const char *)src->map + off, n);
        return 0;
    }
    if (staging(e)) return -1;
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < VKE_STAGING_BYTES ? n - done : (size_t)VKE_STAGING_BYTES;
        if (xfer_begin(e)) return -1;
        VkBufferCopy c = {
            .srcOffset = src->offset + off + done,
            .dstOffset = e->staging.offset,
            .size = chunk,
        };
        vkCmdCopyBuffer(e->xfer_cmd, src->buffer, e->staging.buffer, 1, &c);
        if (xfer_submit_wait(e)) return -1;
        memcpy((char *)dst + done, e->staging.map, chunk);
        done += chunk;
    }
    return 0;
}

int vk_fill_zero(vk_engine *e, const vk_mem *dst, VkDeviceSize off, size_t n)
{
    if (check_range("vk_fill_zero", dst, off, n)) return -1;
    if (n == 0) return 0;
    if (dst->map) {
        memset((char *)dst->map + off, 0, n);
        return 0;
    }
    VkDeviceSize at = dst->offset + off;
    if (at % 4 == 0 && n % 4 == 0) {
        if (xfer_begin(e)) return -1;
        vkCmdFillBuffer(e->xfer_cmd, dst->buffer, at, n, 0);
        return xfer_submit_wait(e);
    }
    if (staging(e)) return -1;
    memset(e->staging.map, 0, n < VKE_STAGING_BYTES ? n : (size_t)VKE_STAGING_BYTES);
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < VKE_STAGING_BYTES ? n - done : (size_t)VKE_STAGING_BYTES;
        if (xfer_begin(e)) return -1;
        VkBufferCopy c = {.srcOffset = e->staging.offset, .dstOffset = at + done, .size = chunk};
        vkCmdCopyBuffer(e->xfer_cmd, e->staging.buffer, dst->buffer, 1, &c);
        if (xfer_submit_wait(e)) return -1;
        done += chunk;
    }
    return 0;
}

/* Staging buffer size (for tests that cross chunk boundaries). */
size_t vk_staging_bytes(void) { return (size_t)VKE_STAGING_BYTES; }
