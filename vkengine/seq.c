/* seq.c - recorded command sequences: one primary command buffer with its fence, replayable, with
 * optional per-dispatch GPU timestamps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vk_fault.h"
#include "vk_internal.h"
#include "core/notice.h"
#include "core/clock.h"

#define LABEL_BYTES 48

struct vk_seq {
    vk_engine *e;
    VkCommandBuffer cmd;
    VkFence fence;
    VkQueryPool queries; /* 2 per dispatch; VK_NULL_HANDLE without timestamps */
    int max_dispatches;
    bool timing;          /* asked for (applies at the next begin) */
    bool timing_recorded; /* the recording writes timestamps */
    bool recording, recorded, pending, failed;
    int n_dispatches, n_barriers, n_timed;
    VkPipeline bound;
    char (*labels)[LABEL_BYTES];
    double *ms;        /* per timed dispatch, after the last wait */
    uint64_t *ticks;   /* raw timestamp pairs (2 per dispatch), read after each wait */
    double *t0_ns;     /* start of each timed dispatch in GPU ns (absolute) */
    double (*cost)[4]; /* per dispatch: bytes, flops, bytes and flops per cached position */
    bool cost_open;    /* the last dispatch has no cost yet */
    int n_ms;
    VkResult last_error; /* of the last failed submit or wait (vk_fault.h) */
    bool inject_timeout; /* VKGPT2_FAULT=hang:N picked the pending submission */
    bool cond_open;      /* inside vk_seq_cond_begin .. vk_seq_cond_end */
};

VkResult vk_seq_last_error(const vk_seq *s) { return s->last_error; }

static void seq_fail(vk_seq *s, const char *what, VkResult r)
{
    gpt2_notice(VKG_NOTICE_ERROR, "%s: %s", what, vk_result_str(r));
    s->failed = true;
}

vk_seq *vk_seq_create(vk_engine *e, int max_dispatches)
{
    if (!e) return NULL;
    vk_seq *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->e = e;
    s->max_dispatches = max_dispatches > 0 ? max_dispatches : 1;
    s->labels = calloc((size_t)s->max_dispatches, sizeof *s->labels);
    s->ms = calloc((size_t)s->max_dispatches, sizeof *s->ms);
    s->t0_ns = calloc((size_t)s->max_dispatches, sizeof *s->t0_ns);
    s->cost = calloc((size_t)s->max_dispatches, sizeof *s->cost);
    s->ticks = calloc(2 * (size_t)s->max_dispatches, sizeof *s->ticks);
    if (!s->labels || !s->ms || !s->t0_ns || !s->cost || !s->ticks) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_create: out of host memory");
        vk_seq_destroy(s);
        return NULL;
    }
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = e->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkResult r = vkAllocateCommandBuffers(e->device, &cai, &s->cmd);
    if (r != VK_SUCCESS) {
        s->cmd = VK_NULL_HANDLE;
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_create: vkAllocateCommandBuffers: %s", vk_result_str(r));
        vk_seq_destroy(s);
        return NULL;
    }
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    r = vkCreateFence(e->device, &fci, NULL, &s->fence);
    if (r != VK_SUCCESS) {
        s->fence = VK_NULL_HANDLE;
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_create: vkCreateFence: %s", vk_result_str(r));
        vk_seq_destroy(s);
        return NULL;
    }
    if (e->caps.timestamps) {
        VkQueryPoolCreateInfo qci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2 * (uint32_t)s->max_dispatches,
        };
        r = vkCreateQueryPool(e->device, &qci, NULL, &s->queries);
        if (r != VK_SUCCESS) { /* no timings, everything else works */
            s->queries = VK_NULL_HANDLE;
            gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_create: vkCreateQueryPool: %s (no timings)",
                        vk_result_str(r));
        }
    }
    return s;
}

void vk_seq_destroy(vk_seq *s)
{
    if (!s) return;
    VkDevice dev = s->e->device;
    if (s->pending && !s->inject_timeout) vk_seq_wait(s);
    if (s->pending) {
        /* Its wait timed out: one more bounded wait; work that still has not finished may use
         * the command buffer, so it is left to the (abandoned) device. */
        if (vkWaitForFences(dev, 1, &s->fence, VK_TRUE, s->e->fence_timeout_ns) != VK_SUCCESS) {
            s->e->n_stuck++;
            free(s->labels);
            free(s->ms);
            free(s->t0_ns);
            free(s->cost);
            free(s->ticks);
            free(s);
            return;
        }
        s->pending = false;
    }
    if (s->queries) vkDestroyQueryPool(dev, s->queries, NULL);
    if (s->fence) vkDestroyFence(dev, s->fence, NULL);
    if (s->cmd) vkFreeCommandBuffers(dev, s->e->pool, 1, &s->cmd);
    free(s->labels);
    free(s->ms);
    free(s->t0_ns);
    free(s->cost);
    free(s->ticks);
    free(s);
}

void vk_seq_set_timing(vk_seq *s, bool on) { s->timing = on; }

void vk_seq_begin(vk_seq *s)
{
    if (s->pending) vk_seq_wait(s);
    if (s->pending) { /* timed out: the command buffer may still run */
        seq_fail(s, "vk_seq_begin", VK_TIMEOUT);
        return;
    }
    s->failed = false;
    s->recorded = false;
    s->n_dispatches = s->n_barriers = s->n_timed = 0;
    s->n_ms = 0;
    s->bound = VK_NULL_HANDLE;
    s->cost_open = false;
    memset(s->cost, 0, (size_t)s->max_dispatches * sizeof *s->cost);
    VkResult r = vkResetCommandBuffer(s->cmd, 0);
    if (r != VK_SUCCESS) {
        seq_fail(s, "vk_seq_begin: vkResetCommandBuffer", r);
        return;
    }
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    r = vkBeginCommandBuffer(s->cmd, &bi);
    if (r != VK_SUCCESS) {
        seq_fail(s, "vk_seq_begin: vkBeginCommandBuffer", r);
        return;
    }
    s->recording = true;
    s->cond_open = false;
    s->timing_recorded = s->timing && s->queries;
    if (s->timing_recorded) vkCmdResetQueryPool(s->cmd, s->queries, 0, 2 * (uint32_t)s->max_dispatches);
    /* Barrier: the first dispatches of this sequence read what earlier submissions (a previous
     * replay, another sequence, an upload) wrote; those writes must be complete and visible to
     * shaders, copies and indirect-argument reads here. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
            VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_INDIRECT_COMMAND_READ_BIT,
    };
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                             VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
}

/* Binds p and pushes the constants; false (and the sequence fails) on bad arguments. */
static bool prepare(vk_seq *s, vk_pipeline *p, const void *push, size_t push_bytes, const char *what)
{
    if (!s->recording) {
        gpt2_notice(VKG_NOTICE_ERROR, "%s: the sequence is not recording (vk_seq_begin first)", what);
        s->failed = true;
        return false;
    }
    if (!p) {
        gpt2_notice(VKG_NOTICE_ERROR, "%s: no pipeline", what);
        s->failed = true;
        return false;
    }
    if (push_bytes > VKE_PUSH_BYTES || (push_bytes && !push)) {
        gpt2_notice(VKG_NOTICE_ERROR, "%s(%s): %zu push-constant bytes (at most %d)", what, p->name,
                    push_bytes, VKE_PUSH_BYTES);
        s->failed = true;
        return false;
    }
    if (s->bound != p->pipeline) {
        vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
        s->bound = p->pipeline;
    }
    /* The whole range is pushed (zero-padded) so every byte a shader declares is defined. */
    uint8_t block[VKE_PUSH_BYTES] = {0};
    if (push_bytes) memcpy(block, push, push_bytes);
    vkCmdPushConstants(s->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, VKE_PUSH_BYTES, block);
    return true;
}

/* Timestamp before a dispatch; returns its slot or -1. */
static int time_start(vk_seq *s, const char *label)
{
    if (!s->timing_recorded || s->n_timed >= s->max_dispatches) return -1;
    int i = s->n_timed++;
    size_t len = strlen(label);
    if (len >= LABEL_BYTES) len = LABEL_BYTES - 1;
    memcpy(s->labels[i], label, len);
    s->labels[i][len] = '\0';
    /* At the compute stage: the tick is taken once earlier dispatches have left the shader stage. */
    vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, s->queries, 2 * (uint32_t)i);
    return i;
}

static void time_end(vk_seq *s, int i)
{
    if (i >= 0)
        vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, s->queries, 2 * (uint32_t)i + 1);
}

void vk_seq_dispatch(vk_seq *s, vk_pipeline *p, const void *push, size_t push_bytes, uint32_t gx, uint32_t gy,
                     uint32_t gz, const char *label)
{
    if (!prepare(s, p, push, push_bytes, "vk_seq_dispatch")) return;
    const uint32_t *max = s->e->caps.max_wg_count;
    if (gx > max[0] || gy > max[1] || gz > max[2]) {
        gpt2_notice(VKG_NOTICE_ERROR,
                    "vk_seq_dispatch(%s): %u x %u x %u workgroups exceed the device's "
                    "%u x %u x %u",
                    label ? label : p->name, gx, gy, gz, max[0], max[1], max[2]);
        s->failed = true;
        return;
    }
    if (gx == 0 || gy == 0 || gz == 0) return; /* nothing to do */
    int t = time_start(s, label ? label : p->name);
    vkCmdDispatch(s->cmd, gx, gy, gz);
    time_end(s, t);
    s->n_dispatches++;
    s->cost_open = true;
}

void vk_seq_dispatch_indirect(vk_seq *s, vk_pipeline *p, const void *push, size_t push_bytes,
                              const vk_mem *buf, VkDeviceSize off, const char *label)
{
    if (!prepare(s, p, push, push_bytes, "vk_seq_dispatch_indirect")) return;
    if (!buf || !buf->buffer || off % 4 != 0 || off > buf->size ||
        buf->size - off < sizeof(VkDispatchIndirectCommand)) {
        gpt2_notice(VKG_NOTICE_ERROR,
                    "vk_seq_dispatch_indirect(%s): the group counts must lie in the "
                    "buffer at a 4-byte aligned offset",
                    label ? label : p->name);
        s->failed = true;
        return;
    }
    /* Barrier: the group counts are usually computed by an earlier dispatch; its shader writes must
     * be visible to the indirect-argument read of this dispatch. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_INDIRECT_COMMAND_READ_BIT,
    };
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    int t = time_start(s, label ? label : p->name);
    vkCmdDispatchIndirect(s->cmd, buf->buffer, buf->offset + off);
    time_end(s, t);
    s->n_dispatches++;
    s->cost_open = true;
}

void vk_seq_barrier(vk_seq *s)
{
    if (!s->recording) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_barrier: the sequence is not recording");
        s->failed = true;
        return;
    }
    /* Barrier (asked for by the caller): later dispatches read or overwrite what earlier
     * dispatches wrote (read-after-write and write-after-write between compute shaders). */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
    s->n_barriers++;
}

void vk_seq_cond_begin(vk_seq *s, const vk_mem *buf, VkDeviceSize off)
{
    if (!s->recording || s->cond_open || !buf || !buf->buffer || off % 4 != 0 || off + 4 > buf->size) {
        gpt2_notice(VKG_NOTICE_ERROR,
                    "vk_seq_cond_begin: not recording, already open, or the predicate "
                    "is not a 4-byte aligned word of the buffer");
        s->failed = true;
        return;
    }
    s->cond_open = true;
    if (!s->e->caps.cond_render)
        return; /* no extension: the work runs (the caller's results are then only discarded) */
    /* Barrier: the predicate word is written by an earlier dispatch (or the parameter copy); those
     * writes must be visible to the conditional-rendering read that starts the block. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_CONDITIONAL_RENDERING_READ_BIT_EXT,
    };
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_CONDITIONAL_RENDERING_BIT_EXT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkConditionalRenderingBeginInfoEXT ci = {
        .sType = VK_STRUCTURE_TYPE_CONDITIONAL_RENDERING_BEGIN_INFO_EXT,
        .buffer = buf->buffer,
        .offset = buf->offset + off,
    };
    vkCmdBeginConditionalRenderingEXT(s->cmd, &ci);
}

void vk_seq_cond_end(vk_seq *s)
{
    if (!s->recording || !s->cond_open) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_cond_end: no open vk_seq_cond_begin");
        s->failed = true;
        return;
    }
    s->cond_open = false;
    if (s->e->caps.cond_render) vkCmdEndConditionalRenderingEXT(s->cmd);
}

void vk_seq_copy(vk_seq *s, const vk_mem *src, VkDeviceSize src_off, const vk_mem *dst, VkDeviceSize dst_off,
                 VkDeviceSize n)
{
    if (!s->recording) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_copy: the sequence is not recording");
        s->failed = true;
        return;
    }
    if (!src || !dst || !src->buffer || !dst->buffer || src_off > src->size || n > src->size - src_off ||
        dst_off > dst->size || n > dst->size - dst_off) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_copy: %llu bytes overrun the source or destination",
                    (unsigned long long)n);
        s->failed = true;
        return;
    }
    if (n == 0) return;
    /* Barrier: earlier dispatches may have written the source (read-after-write) or still read
     * the destination (write-after-read); the copy waits for them. */
    VkMemoryBarrier before = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0, NULL, 0, NULL);
    VkBufferCopy c = {
        .srcOffset = src->offset + src_off,
        .dstOffset = dst->offset + dst_off,
        .size = n,
    };
    vkCmdCopyBuffer(s->cmd, src->buffer, dst->buffer, 1, &c);
    /* Barrier: later dispatches (or indirect dispatches, or copies) read what the copy wrote. */
    VkMemoryBarrier after = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
            VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_INDIRECT_COMMAND_READ_BIT,
    };
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                             VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT,
                         0, 1, &after, 0, NULL, 0, NULL);
}

int vk_seq_end(vk_seq *s)
{
    if (!s->recording) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_end: the sequence is not recording");
        return -1;
    }
    s->recording = false;
    /* Barrier: results written by shaders or copies are read by the host (through mapped
     * host-visible buffers) once the fence has signalled. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(s->cmd);
    if (r != VK_SUCCESS) seq_fail(s, "vk_seq_end: vkEndCommandBuffer", r);
    if (s->failed) return -1;
    s->recorded = true;
    return 0;
}

int vk_seq_submit(vk_seq *s)
{
    if (!s->recorded || s->failed) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_submit: nothing (valid) recorded");
        return -1;
    }
    if (s->pending && vk_seq_wait(s)) return -1;
    if (s->e->hung) {
        /* A device that timed out once is not trusted again (as a lost one is not). */
        s->last_error = VK_TIMEOUT;
        return -1;
    }
    VkResult r = vkResetFences(s->e->device, 1, &s->fence);
    if (r != VK_SUCCESS) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_submit: vkResetFences: %s", vk_result_str(r));
        return -1;
    }
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &s->cmd,
    };
    r = vk_fault_submit();
    if (r == VK_SUCCESS) r = vkQueueSubmit(s->e->queue, 1, &si, s->fence);
    if (r != VK_SUCCESS) {
        /* No message here: the caller names the error (vk_seq_last_error) on its one line. */
        s->last_error = r;
        return -1;
    }
    s->pending = true;
    s->inject_timeout = vk_fault_hang();
    return 0;
}

int vk_seq_wait(vk_seq *s)
{
    if (!s->pending) return 0;
    /* A finite wait: a GPU that hangs must not hang the process. VK_TIMEOUT is then handled as a
     * lost device is (the caller goes on on the CPU); the submission stays pending, since the
     * GPU may still be running it. */
    VkResult r = s->inject_timeout
        ? VK_TIMEOUT
        : vkWaitForFences(s->e->device, 1, &s->fence, VK_TRUE, s->e->fence_timeout_ns);
    if (r == VK_TIMEOUT) {
        s->e->hung = true;
        s->last_error = r; /* reported by the caller (vk_seq_last_error) */
        return -1;
    }
    s->pending = false;
    if (r != VK_SUCCESS) {
        s->last_error = r; /* reported by the caller (vk_seq_last_error) */
        return -1;
    }
    s->n_ms = 0;
    if (s->timing_recorded && s->n_timed > 0) {
        uint32_t n = 2 * (uint32_t)s->n_timed;
        uint64_t *ticks = s->ticks; /* allocated with the sequence: no allocation per step */
        r = vkGetQueryPoolResults(s->e->device, s->queries, 0, n, n * sizeof *ticks, ticks, sizeof *ticks,
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
        if (r == VK_SUCCESS) {
            uint32_t bits = s->e->timestamp_valid_bits;
            uint64_t mask = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
            /* emulated period (tsperiod=P): the raw ticks are read as P times fewer, longer ones
             * (whole ticks, so the resolution is as coarse as such a device's) */
            double period = s->e->caps.timestamp_period_ns, scale = s->e->emu.ts_scale;
            for (int i = 0; i < s->n_timed; i++) {
                uint64_t t0 = ticks[2 * i] & mask, t1 = ticks[2 * i + 1] & mask;
                uint64_t d = (t1 - t0) & mask; /* wraps around with the counter */
                s->ms[i] = floor((double)d / scale) * period * 1e-6;
                s->t0_ns[i] = floor((double)t0 / scale) * period;
            }
            s->n_ms = s->n_timed;
        } else {
            gpt2_notice(VKG_NOTICE_ERROR, "vk_seq_wait: vkGetQueryPoolResults: %s", vk_result_str(r));
        }
    }
    return 0;
}

int vk_seq_run(vk_seq *s)
{
    if (vk_seq_submit(s)) return -1;
    return vk_seq_wait(s);
}

int vk_seq_dispatches(const vk_seq *s) { return s->n_dispatches; }

int vk_seq_barriers(const vk_seq *s) { return s->n_barriers; }

int vk_seq_timings(const vk_seq *s, double *ms, const char **labels, int max)
{
    int n = s->n_ms < max ? s->n_ms : max;
    for (int i = 0; i < n; i++) {
        if (ms) ms[i] = s->ms[i];
        if (labels) labels[i] = s->labels[i];
    }
    return n;
}

void vk_seq_set_cost(vk_seq *s, double bytes, double flops, double bytes_per_past, double flops_per_past)
{
    /* Only the dispatch just recorded, once: a wrapper whose dispatch was skipped changes nothing. */
    if (!s->cost_open || s->n_dispatches < 1 || s->n_dispatches > s->max_dispatches) return;
    double *c = s->cost[s->n_dispatches - 1];
    c[0] = bytes;
    c[1] = flops;
    c[2] = bytes_per_past;
    c[3] = flops_per_past;
    s->cost_open = false;
}

int vk_seq_costs(const vk_seq *s, int n_past, double *bytes, double *flops, int max)
{
    int n = s->n_dispatches < max ? s->n_dispatches : max;
    if (n > s->max_dispatches) n = s->max_dispatches;
    for (int i = 0; i < n; i++) {
        const double *c = s->cost[i];
        if (bytes) bytes[i] = c[0] + c[2] * n_past;
        if (flops) flops[i] = c[1] + c[3] * n_past;
    }
    return n;
}

int vk_seq_timestamps(const vk_seq *s, double *t0_ns, int max)
{
    int n = s->n_ms < max ? s->n_ms : max;
    for (int i = 0; i < n; i++) t0_ns[i] = s->t0_ns[i];
    return n;
}

int vk_engine_clock_offset(vk_engine *e, double *offset_ns)
{
    /* One timestamp written at the top of the pipe by a tiny submission, taken as the midpoint of
     * the host clock read before the submit and after the wait: host_ns = gpu_ns + offset. The
     * best (narrowest) of a few tries is kept. */
    *offset_ns = 0;
    if (!e->caps.timestamps) return -1;
    vk_seq *s = vk_seq_create(e, 1);
    if (!s || !s->queries) {
        vk_seq_destroy(s);
        return -1;
    }
    double best_width = -1;
    for (int k = 0; k < 5; k++) {
        if (vkResetCommandBuffer(s->cmd, 0) != VK_SUCCESS) break;
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        if (vkBeginCommandBuffer(s->cmd, &bi) != VK_SUCCESS) break;
        vkCmdResetQueryPool(s->cmd, s->queries, 0, 2);
        vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s->queries, 0);
        if (vkEndCommandBuffer(s->cmd) != VK_SUCCESS) break;
        s->recorded = true;
        int64_t a = gpt2_clock_ns();
        if (vk_seq_submit(s)) break;
        VkResult r = s->inject_timeout
            ? VK_TIMEOUT
            : vkWaitForFences(e->device, 1, &s->fence, VK_TRUE, e->fence_timeout_ns);
        if (r == VK_TIMEOUT) {
            e->hung = true;
            break; /* left pending: vk_seq_destroy waits once more */
        }
        s->pending = false;
        int64_t b = gpt2_clock_ns();
        uint64_t tick = 0;
        if (r != VK_SUCCESS ||
            vkGetQueryPoolResults(e->device, s->queries, 0, 1, sizeof tick, &tick, sizeof tick,
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
            break;
        uint32_t bits = e->timestamp_valid_bits;
        uint64_t mask = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
        double ha = (double)a, hb = (double)b;
        double g = floor((double)(tick & mask) / e->emu.ts_scale) * e->caps.timestamp_period_ns;
        if (best_width < 0 || hb - ha < best_width) {
            best_width = hb - ha;
            *offset_ns = (ha + hb) / 2 - g;
        }
    }
    vk_seq_destroy(s);
    return best_width < 0 ? -1 : 0;
}

uint64_t vk_engine_fence_timeout_ns(const vk_engine *e) { return e->fence_timeout_ns; }
