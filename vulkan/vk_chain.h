/* vk_chain.h - the ops that let decode steps follow each other on the device: the repetition
 * penalty over recent ids kept in device memory, and the link that feeds one step's pick to the
 * next, advances its position and stops the chain (several tokens per submit, backend_vk.c).
 */
#ifndef VKG_VK_CHAIN_H
#define VKG_VK_CHAIN_H

#include "vkengine/vk_engine.h"

/* The penalty settings of one row (penalty.comp's PenParams). */
typedef struct vk_penalty_params {
    float penalty;   /* core/sampler.h's repeat_penalty (1: off) */
    uint32_t window; /* ids the penalty looks at (0: off) */
} vk_penalty_params;
_Static_assert(sizeof(vk_penalty_params) == 8, "penalty.comp reads 8 bytes per row");

/* A chain's settings (chain.comp's ChainCfg). */
typedef struct vk_chain_cfg {
    uint32_t limit; /* steps that may run */
    uint32_t stop;  /* the id that ends the chain (0xffffffff: none) */
} vk_chain_cfg;
_Static_assert(sizeof(vk_chain_cfg) == 8, "chain.comp reads 8 bytes");

/* The repetition penalty on `rows` rows of logits x ([rows][n]): row r over the pen[r].window ids
 * that end just before hist[r * stride + base + k] (uint32; ids >= n skipped), each distinct id
 * once, as gpt2_sampler_pick does. */
void vk_op_penalty_rows(vk_engine *e, vk_seq *s, VkDeviceAddress x, VkDeviceAddress hist, VkDeviceAddress pen,
                        int n, int rows, int stride, int base, int k);

/* The link after chain step k: reads step k's pick at hist[base + k], writes live[k + 1] (1: step
 * k + 1 runs; 0 after the cfg's stop id or at its limit) and step k + 1's vk_step_params at next
 * (cur's with n_past + 1). One invocation. */
void vk_op_chain_link(vk_engine *e, vk_seq *s, VkDeviceAddress hist, VkDeviceAddress cur,
                      VkDeviceAddress next, VkDeviceAddress live, VkDeviceAddress cfg, int base, int k);

#endif
