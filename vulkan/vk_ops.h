/* vk_ops.h - one recording function per GPT-2 op: the GPU twins of cpu/cpu_ops.h.
 *
 * Each vk_op_* records dispatches into a vk_seq; none records a barrier (the caller knows which
 * results the next op reads and places vk_seq_barrier itself). Tensors are device addresses
 * (vk_mem.addr plus an offset). Shapes and semantics are exactly those of the CPU op of the same
 * name, so every shader is tested against its CPU twin and a float64 reference.
 *
 * Values that change from one replay to the next (the number of cached positions n_past, token ids)
 * are read by the shaders from device memory, never baked into the recording:
 *   step: a vk_step_params in device or host-visible memory, written before each submit.
 */
#ifndef VKG_VK_OPS_H
#define VKG_VK_OPS_H

#include "core/tensor.h"
#include "vkengine/vk_engine.h"

typedef struct vk_step_params {
    uint32_t n_past;  /* positions already in the KV cache before this step */
    uint32_t n;       /* tokens in this step (<= the n the sequence was recorded for) */
    uint32_t seed;    /* sampler seed for this step */
    uint32_t kv_base; /* first cache row of the step's sequence (slot * n_ctx; 0 for slot 0), or
                          VKOPS_STEP_BATCHED: a batched decode step, row t at the vk_step_row after
                          the header */
} vk_step_params;
/* The shaders read it as a 16-byte header with the rows after it (shaders/common.glsl). */
_Static_assert(sizeof(vk_step_params) == 16, "vk_step_params is 16 bytes, as the shaders read it");
#define VKOPS_STEP_BATCHED 0xffffffffu

/* A batched decode step's rows follow the 16-byte vk_step_params header in the same buffer: row t
 * feeds one token of its own sequence, whose cache rows start at kv_base, at position pos. */
typedef struct vk_step_row {
    uint32_t kv_base; /* first cache row of the row's slot (slot * n_ctx) */
    uint32_t pos;     /* the token's position (the row's sequence has pos tokens cached) */
} vk_step_row;

typedef struct vk_ops vk_ops;

/* Picks shader variants for the device's capabilities (subgroup size, fp16, coopmat, ...). */
vk_ops *vk_ops_create(vk_engine *e, char *err, size_t errlen);
void vk_ops_destroy(vk_ops *o);
/* Which matmul variant will serve a problem (for logs and tests): "matvec", "tiled", "coopmat_khr",
 * "coopmat_nv" (KHR preferred where both can run): vk_pick_matmul (vk_select.h) with the device's
 * gates, the forced variant and the exact-x setting. */
const char *vk_ops_matmul_variant(const vk_ops *o, int n, gpt2_dtype wtype);
/* Tests and benchmarks: force a matmul variant ("matvec", "tiled", "coopmat_khr", "coopmat_nv";
 * NULL: automatic; the coopmat ones are honoured only where the device (and, for KHR, the build)
 * can run them, else the automatic choice stands), and turn the subgroup-arithmetic
 * variants off (0), on (1, where supported) or back to automatic (-1). Affect later recordings. */
void vk_ops_force_matmul(vk_ops *o, const char *variant);
/* Later matmuls read x as f32 (on) or may round it to f16 in a coopmat kernel (off, the default):
 * the backend turns it on for the LM head and for steps that return every row's logits, so those
 * logits keep the plain kernels' accuracy and an |x| > 65504 cannot turn into inf. */
void vk_ops_set_exact_x(vk_ops *o, bool on);
/* Fused kernels on (the Vulkan backend's default lowering) or off: with it on, one-token decode
 * attention combines its splits in the same dispatch (no attn_reduce, no barrier) where the device
 * has the Vulkan memory model with device scope; vk_ops_fused_attention says whether that is so.
 * Affects later recordings. */
void vk_ops_set_fuse(vk_ops *o, bool on);
bool vk_ops_fused_attention(const vk_ops *o);
void vk_ops_set_subgroup(vk_ops *o, int on);
bool vk_ops_subgroup(const vk_ops *o); /* whether the subgroup variants are in use */
/* The guarded variants (vulkan/variant_guard.h): "subgroup" (every _sg shader), "coopmat_nv",
 * "coopmat_khr". Whether the device can run one; turning one on or off (on is honoured only
 * where it runs); whether it is on. */
bool vk_ops_variant_runs(const vk_ops *o, const char *variant);
void vk_ops_variant_enable(vk_ops *o, const char *variant, bool on);
bool vk_ops_variant_on(const vk_ops *o, const char *variant);

/* x[t][:] = wte[ids[t]][:] + wpe[n_past + t][:], t < n. ids: int32[n]. wte / wpe: f32, f16 or a
 * block format (d a multiple of 32). */
void vk_op_embed(vk_ops *o, vk_seq *s, VkDeviceAddress x, VkDeviceAddress wte, gpt2_dtype wte_type,
                 VkDeviceAddress wpe, gpt2_dtype wpe_type, VkDeviceAddress ids, VkDeviceAddress step, int n,
                 int d);

/* y = layernorm(x) * g + b over n rows of d (y may equal x). */
void vk_op_layernorm(vk_ops *o, vk_seq *s, VkDeviceAddress y, VkDeviceAddress x, VkDeviceAddress g,
                     VkDeviceAddress b, int n, int d, float eps);

/* Epilogue flags as in cpu_ops.h: 1 = bias, 2 = gelu, 4 = residual (y += old y). */
/* y[t][o] = epi(sum_i x[t][i] * W[o][i]), W [rows][cols] of type wtype (f32, f16, or a
 * block format q4_0 ... q8_0 with cols a multiple of 32, dequantized in the shader). bias may be 0
 * when the epilogue has no bias. Rows of x have stride ldx floats, of y stride ldy floats. */
void vk_op_matmul(vk_ops *o, vk_seq *s, VkDeviceAddress y, int ldy, VkDeviceAddress x, int ldx,
                  VkDeviceAddress W, gpt2_dtype wtype, int rows, int cols, VkDeviceAddress bias, int n,
                  int epilogue, int gelu_form);

/* Where a fused layernorm + matmul takes its rows from the embedding instead of x: row t is
 * wte[ids[t]] + wpe[pos(t)] (vk_op_embed's arithmetic, positions and token count from step). */
typedef struct vk_embed_src {
    VkDeviceAddress wte;  /* token embeddings [V][cols] */
    gpt2_dtype wte_type;  /* f32, f16 or a block format */
    VkDeviceAddress wpe;  /* position embeddings [n_ctx][cols] */
    gpt2_dtype wpe_type;  /* f32, f16 or a block format */
    VkDeviceAddress ids;  /* int32[n] */
    VkDeviceAddress step; /* vk_step_params */
} vk_embed_src;

/* The fused layernorm + matmul of decode: y = epi(layernorm(x; g, b, eps) . W^T), vk_op_layernorm
 * then vk_op_matmul in one dispatch, each workgroup normalising its tokens' rows of x itself (two
 * passes, as the layernorm) into shared memory. With emb the rows are the embedding instead, and
 * they are also written to x (stride ldx): vk_op_embed, vk_op_layernorm and vk_op_matmul in one.
 * The normalised rows are not stored anywhere. Serves what vk_op_ln_matmul_fits accepts: the
 * matvec sizes (n <= 8 tokens; every weight type), cols % 4 == 0, rows that fit shared memory;
 * otherwise it records nothing (and says so through the notice handler). */
bool vk_op_ln_matmul_fits(const vk_ops *o, int n, int cols, gpt2_dtype wtype);
void vk_op_ln_matmul(vk_ops *o, vk_seq *s, VkDeviceAddress y, int ldy, VkDeviceAddress x, int ldx,
                     VkDeviceAddress g, VkDeviceAddress b, float eps, VkDeviceAddress W, gpt2_dtype wtype,
                     int rows, int cols, VkDeviceAddress bias, int n, int epilogue, int gelu_form,
                     const vk_embed_src *emb);

/* Ops taking `step` read n_past from it at run time, and the number of tokens as min(n, step->n)
 * (step->n == 0 counts as n), so a sequence recorded for n tokens can replay shorter steps. */

/* Stores K and V of n new tokens (from qkv [n][3E]) at cache rows n_past .. n_past+n-1.
 * f16 caches need E even. */
void vk_op_kv_store(vk_ops *o, vk_seq *s, VkDeviceAddress kcache, VkDeviceAddress vcache, gpt2_dtype kv_type,
                    VkDeviceAddress qkv, VkDeviceAddress step, int n, int E);

/* Causal attention of n new tokens over the cache (rows 0 .. n_past+n-1, K/V already stored).
 * out: [n][E]. n > 1: flash attention (K/V tiles in shared memory, online softmax); n == 1: flash
 * decoding (the KV length split across workgroups, then a reduction), which also stores the new
 * token's K/V row itself (no vk_op_kv_store needed before it), using scratch, which must
 * hold vk_attention_scratch_bytes(n_head, head_dim, n_ctx) bytes. */
/* head_dim <= 128. The key range is split into vk_attention_scratch_bytes' splits of n_ctx, so
 * n_past + 1 <= n_ctx. With vk_ops_fused_attention the decode path is one dispatch, whose per-head
 * counters in scratch must be zero before the first one (zero the whole scratch once); each
 * dispatch leaves them zero. */
void vk_op_attention(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress qkv, VkDeviceAddress kcache,
                     VkDeviceAddress vcache, gpt2_dtype kv_type, VkDeviceAddress step, int n, int n_head,
                     int head_dim, int n_ctx, VkDeviceAddress scratch);
size_t vk_attention_scratch_bytes(int n_head, int head_dim, int n_ctx);

/* Decode attention of a batched step: n rows, each one new token of its own sequence (step->kv_base
 * == VKOPS_STEP_BATCHED: row t's slot and position from the step's rows). Each row's workgroups store
 * its new K/V row themselves (as the one-token decode does: no vk_op_kv_store before it). The
 * decode grid gets a z dimension = row; scratch must hold n * vk_attention_scratch_bytes(...). With
 * a plain step and n == 1 it is vk_op_attention's decode path. */
void vk_op_attention_rows(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress qkv,
                          VkDeviceAddress kcache, VkDeviceAddress vcache, gpt2_dtype kv_type,
                          VkDeviceAddress step, int n, int n_head, int head_dim, int n_ctx,
                          VkDeviceAddress scratch);

/* Elementwise: x = gelu(x) (form 0 tanh, 1 erf); y += x; softmax over n rows of d. */
void vk_op_gelu(vk_ops *o, vk_seq *s, VkDeviceAddress x, size_t count, int form);
void vk_op_add(vk_ops *o, vk_seq *s, VkDeviceAddress y, VkDeviceAddress x, size_t count);
void vk_op_softmax(vk_ops *o, vk_seq *s, VkDeviceAddress x, int n, int d);

/* out (uint32) = index of the largest of x[0..n) (lowest on ties). */
void vk_op_argmax(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, int n);
/* The same for each of `rows` rows of x ([rows][n]): out[r] (uint32[rows]). */
void vk_op_argmax_rows(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, int n, int rows);

/* Sampling settings of one draw, read by the sample shader from host-visible memory. */
typedef struct vk_sample_params {
    float temp;                /* > 0 */
    uint32_t top_k;            /* 1 .. VKOPS_SAMPLE_MAX_K */
    float top_p;               /* (0, 1] */
    uint32_t step;             /* index of the draw (the counter of gpt2_rng_uniform) */
    uint32_t seed_lo, seed_hi; /* 64-bit seed */
    uint32_t pad[2];           /* 32-byte size */
} vk_sample_params;
/* sample.comp reads an array of them with a 32-byte stride. */
_Static_assert(sizeof(vk_sample_params) == 32, "vk_sample_params is 32 bytes, as sample.comp reads it");
#define VKOPS_SAMPLE_MAX_K 256

/* out (uint32) = a token drawn from logits x[0..n) as core/sampler.c does for temp > 0 and
 * top_k <= VKOPS_SAMPLE_MAX_K (top-k, temperature, top-p, counter-based draw). params: a
 * vk_sample_params. */
void vk_op_sample(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, VkDeviceAddress params,
                  int n);
/* The same for each of `rows` rows of x ([rows][n]): row r draws with params[r] (an array of
 * vk_sample_params) into out[r] (uint32[rows]). */
void vk_op_sample_rows(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, VkDeviceAddress params,
                       int n, int rows);

#endif
