/* cpu_exec.h - runs one graph node on the CPU over host buffers.
 *
 * Used by the CPU backend for every node and by the Vulkan backend for the nodes it hands to the
 * CPU (VKGPT2_CPU_OPS, or ops a device lacks).
 */
#ifndef VKG_CPU_EXEC_H
#define VKG_CPU_EXEC_H

#include "core/graph.h"
#include "cpu_ops.h"

typedef struct cpu_step {
    const gpt2_model *model;       /* weights and shape */
    float *buf[GPT2_BUF_COUNT];    /* activation buffers, rows of gpt2_buf_width floats */
    const int32_t *ids;            /* the step's token ids */
    int n;                         /* tokens in the step */
    int n_past;                    /* positions already cached */
    void **kcache, **vcache;       /* per layer: [slots * n_ctx][E] of kv_type */
    int kv_base;                   /* first cache row of the step's sequence (slot * n_ctx) */
    const int *row_base, *row_pos; /* batched decode step (else NULL): row t is one token of its
                                      own sequence, cache rows from row_base[t], at row_pos[t] */
    vkg_dtype kv_type;             /* cache element type */
    cpu_pool *pool;                /* threads, or NULL */
} cpu_step;

void cpu_exec_node(const cpu_step *s, const gpt2_node *nd);

#endif
