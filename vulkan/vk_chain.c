/* vk_chain.c - recording wrappers of penalty.comp and chain.comp (see vk_chain.h). Push constant
 * layouts mirror the shaders' Push blocks: device addresses first, then 32-bit values. */
#include "vk_chain.h"

#include "core/notice.h"

typedef struct {
    VkDeviceAddress hist, x, pen;
    uint32_t n, stride, base, k;
} pc_penalty;

void vk_op_penalty_rows(vk_engine *e, vk_seq *s, VkDeviceAddress x, VkDeviceAddress hist, VkDeviceAddress pen,
                        int n, int rows, int stride, int base, int k)
{
    pc_penalty pc = {hist, x, pen, (uint32_t)n, (uint32_t)stride, (uint32_t)base, (uint32_t)k};
    uint32_t spec[1] = {64};
    vk_pipeline *p = vk_pipeline_get(e, "penalty", spec, 1);
    if (!p) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_chain: pipeline 'penalty' unavailable");
        return;
    }
    vk_seq_dispatch(s, p, &pc, sizeof pc, 1, (uint32_t)rows, 1, "penalty");
    vk_seq_set_cost(s, (double)rows * 64 * 12, (double)rows * 64, 0, 0);
}

typedef struct {
    VkDeviceAddress hist, cur, next, live, cfg;
    uint32_t base, k;
} pc_chain;

void vk_op_chain_link(vk_engine *e, vk_seq *s, VkDeviceAddress hist, VkDeviceAddress cur,
                      VkDeviceAddress next, VkDeviceAddress live, VkDeviceAddress cfg, int base, int k)
{
    pc_chain pc = {hist, cur, next, live, cfg, (uint32_t)base, (uint32_t)k};
    vk_pipeline *p = vk_pipeline_get(e, "chain", NULL, 0);
    if (!p) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_chain: pipeline 'chain' unavailable");
        return;
    }
    vk_seq_dispatch(s, p, &pc, sizeof pc, 1, 1, 1, "chain");
    vk_seq_set_cost(s, 64, 4, 0, 0);
}
