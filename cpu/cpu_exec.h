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
    int n;                         /* tokens (rows) in the step */
    void **kcache, **vcache;       /* per layer: slots of hp.n_ctx positions (cpu_kv_index) */
    const int *row_base, *row_pos; /* row t: its sequence's cache rows start at row_base[t]
                                      (slot * n_ctx), its token sits at position row_pos[t]; a
                                      prompt chunk is n rows of one slot at consecutive positions,
                                      a batched decode step one row per sequence */
    gpt2_dtype kv_type;            /* cache element type */
    cpu_pool *pool;                /* threads, or NULL */
} cpu_step;

/* Runs one node; returns 0, or -1 when a kernel could not allocate its scratch (out of memory). */
int cpu_exec_node(const cpu_step *s, const gpt2_node *nd);

#endif
