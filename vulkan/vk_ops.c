/* vk_ops.c - recording wrappers of the GPT-2 compute shaders (the .comp files in shaders/).
 *
 * Each function fills the push constants of one shader variant (layouts mirror the `Push` blocks
 * of the shaders: 64-bit device addresses first, then 32-bit values, std430 offsets) and records
 * its dispatches. Variant choice depends on the device (subgroup arithmetic, cooperative matrix)
 * and on the problem (decode-sized matmuls use matvec, batches the tiled kernel; 16-byte aligned
 * operands use the wide-load matvec).
 */
#include "vk_ops.h"
#include "vkengine/vk_fault.h"
#include "vkengine/vk_select.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/epilogue.h"
#include "core/notice.h"

struct vk_ops {
    vk_engine *e;
    const vk_caps *caps;
    bool subgroup;                      /* use subgroup-arithmetic variants */
    uint32_t sg_size;                   /* subgroup size of the device */
    const char *force_mm;               /* tests: force a matmul variant (NULL: automatic) */
    bool exact_x;                       /* later matmuls read x as f32 (no coopmat): vk_ops_set_exact_x */
    bool fuse;                          /* decode attention combines its splits itself: vk_ops_set_fuse */
    bool nv_ok, khr_ok;                 /* the coopmat kernels can run (vk_coopmat_gate) */
    vk_pipeline_opts nv_opts, khr_opts; /* how their pipelines are created (subgroup size 32) */
};

#ifdef VKG_HAVE_COOPMAT_KHR
#define KHR_BUILT true
#else
#define KHR_BUILT false
#endif

vk_ops *vk_ops_create(vk_engine *e, char *err, size_t errlen)
{
    if (!e) {
        snprintf(err, errlen, "vk_ops_create: no engine");
        return NULL;
    }
    vk_ops *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "vk_ops_create: out of host memory");
        return NULL;
    }
    o->e = e;
    o->caps = vk_engine_caps(e);
    o->sg_size = o->caps->subgroup_size;
    /* A subgroup must fit the 128-invocation workgroups the reductions use, and be a power of 2. */
    o->subgroup = o->caps->subgroup_arith && o->sg_size >= 4 && o->sg_size <= 128 &&
        (o->sg_size & (o->sg_size - 1)) == 0;
    /* The coopmat kernels tile a workgroup as 4 subgroups of 32: their pipelines require that
     * size (and full subgroups) where the device can, and they run nowhere else. */
    vk_subgroup_plan pn, pk;
    o->nv_ok = vk_coopmat_gate(o->caps, false, KHR_BUILT, &pn);
    o->khr_ok = vk_coopmat_gate(o->caps, true, KHR_BUILT, &pk);
    o->nv_opts = (vk_pipeline_opts){pn.required_size, pn.full_subgroups};
    o->khr_opts = (vk_pipeline_opts){pk.required_size, pk.full_subgroups};
    return o;
}

void vk_ops_set_exact_x(vk_ops *o, bool on) { o->exact_x = on; }

void vk_ops_set_fuse(vk_ops *o, bool on) { o->fuse = on; }

bool vk_ops_fused_attention(const vk_ops *o) { return o->fuse && o->caps->memory_model; }

void vk_ops_destroy(vk_ops *o) { free(o); }

void vk_ops_set_subgroup(vk_ops *o, int on)
{
    if (on < 0) on = o->caps->subgroup_arith;
    o->subgroup = on && o->caps->subgroup_arith && o->sg_size >= 4 && o->sg_size <= 128 &&
        (o->sg_size & (o->sg_size - 1)) == 0;
}

bool vk_ops_subgroup(const vk_ops *o) { return o->subgroup; }

void vk_ops_force_matmul(vk_ops *o, const char *variant) { o->force_mm = variant; }

bool vk_ops_variant_runs(const vk_ops *o, const char *variant)
{
    if (strcmp(variant, "subgroup") == 0)
        return o->caps->subgroup_arith && o->sg_size >= 4 && o->sg_size <= 128 &&
            (o->sg_size & (o->sg_size - 1)) == 0;
    if (strcmp(variant, "coopmat_nv") == 0) return vk_coopmat_gate(o->caps, false, KHR_BUILT, NULL);
    if (strcmp(variant, "coopmat_khr") == 0) return vk_coopmat_gate(o->caps, true, KHR_BUILT, NULL);
    return false;
}

void vk_ops_variant_enable(vk_ops *o, const char *variant, bool on)
{
    bool can = vk_ops_variant_runs(o, variant);
    if (strcmp(variant, "subgroup") == 0)
        vk_ops_set_subgroup(o, on && can);
    else if (strcmp(variant, "coopmat_nv") == 0)
        o->nv_ok = on && can;
    else if (strcmp(variant, "coopmat_khr") == 0)
        o->khr_ok = on && can;
}

bool vk_ops_variant_on(const vk_ops *o, const char *variant)
{
    if (strcmp(variant, "subgroup") == 0) return o->subgroup;
    if (strcmp(variant, "coopmat_nv") == 0) return o->nv_ok;
    if (strcmp(variant, "coopmat_khr") == 0) return o->khr_ok;
    return false;
}

/* ---- helpers ---- */

/* Records one dispatch of the pipeline (name, spec, opts: NULL for none). */
static void dispatch_opts(vk_ops *o, vk_seq *s, const char *name, const uint32_t *spec, int n_spec,
                          const vk_pipeline_opts *opts, const void *push, size_t push_bytes, uint32_t gx,
                          uint32_t gy, uint32_t gz, const char *label)
{
    if (gx == 0 || gy == 0 || gz == 0) return;
    vk_pipeline *p = vk_pipeline_get_opts(o->e, name, spec, n_spec, opts);
    if (!p) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_ops: pipeline '%s' unavailable, dispatch '%s' skipped", name,
                    label);
        return;
    }
    vk_seq_dispatch(s, p, push, push_bytes, gx, gy, gz, label);
}

static void dispatch(vk_ops *o, vk_seq *s, const char *name, const uint32_t *spec, int n_spec,
                     const void *push, size_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz,
                     const char *label)
{
    dispatch_opts(o, s, name, spec, n_spec, NULL, push, push_bytes, gx, gy, gz, label);
}

static uint32_t ceil_div(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

static uint32_t grid_stride_groups(size_t count, uint32_t wg);

/* The fault hook (VKGPT2_FAULT=variant:NAME, vk_fault.h): the output the variant just wrote, count
 * floats at y, goes through gelu, as a miscompiled kernel's wrong result would. */
static void fault_perturb(vk_ops *o, vk_seq *s, const char *variant, VkDeviceAddress y, size_t count)
{
    if (!vk_fault_variant(variant) || count == 0) return;
    /* Barrier: the perturbation reads what the variant's dispatch wrote. */
    vk_seq_barrier(s);
    uint32_t spec[1] = {256};
    struct {
        VkDeviceAddress x;
        uint32_t count, form;
    } pc = {y, (uint32_t)count, 0};
    dispatch(o, s, "gelu", spec, 1, &pc, sizeof pc, grid_stride_groups(count, 256), 1, 1, "fault");
}

/* Profiling: bytes and flops of the dispatch just recorded (vk_seq_set_cost). Bytes count each
 * operand read or written once (the compulsory traffic); flops count multiply-adds as 2. */
static void cost(vk_seq *s, double bytes, double flops) { vk_seq_set_cost(s, bytes, flops, 0, 0); }
static double esz(gpt2_dtype t)
{
    return gpt2_dtype_is_quant(t) ? (double)gpt2_dtype_block_bytes(t) / GPT2_QBLOCK
                                  : (double)gpt2_dtype_size(t);
}

/* ---- embed ---- */

typedef struct {
    VkDeviceAddress x, wte, wpe, ids, step;
    uint32_t n, d, wte_type, wpe_type; /* gpt2_dtype codes (f32, f16, block formats) */
} pc_embed;

void vk_op_embed(vk_ops *o, vk_seq *s, VkDeviceAddress x, VkDeviceAddress wte, gpt2_dtype wte_type,
                 VkDeviceAddress wpe, gpt2_dtype wpe_type, VkDeviceAddress ids, VkDeviceAddress step, int n,
                 int d)
{
    pc_embed pc = {x, wte, wpe, ids, step, (uint32_t)n, (uint32_t)d, (uint32_t)wte_type, (uint32_t)wpe_type};
    uint32_t spec[1] = {128};
    dispatch(o, s, "embed", spec, 1, &pc, sizeof pc, ceil_div((uint32_t)d, 128), (uint32_t)n, 1, "embed");
    cost(s, (double)n * d * (esz(wte_type) + esz(wpe_type) + 4.0), (double)n * d);
}

/* ---- layernorm, softmax ---- */

typedef struct {
    VkDeviceAddress y, x, g, b;
    uint32_t d;
    float eps;
} pc_layernorm;

void vk_op_layernorm(vk_ops *o, vk_seq *s, VkDeviceAddress y, VkDeviceAddress x, VkDeviceAddress g,
                     VkDeviceAddress b, int n, int d, float eps)
{
    pc_layernorm pc = {y, x, g, b, (uint32_t)d, eps};
    uint32_t spec[1] = {256};
    dispatch(o, s, o->subgroup ? "layernorm_sg" : "layernorm", spec, 1, &pc, sizeof pc, (uint32_t)n, 1, 1,
             "layernorm");
    if (o->subgroup) fault_perturb(o, s, "subgroup", y, (size_t)n * (size_t)d);
    cost(s, (double)n * d * 8.0 + d * 8.0, (double)n * d * 8.0);
}

typedef struct {
    VkDeviceAddress x;
    uint32_t d, pad;
} pc_softmax;

void vk_op_softmax(vk_ops *o, vk_seq *s, VkDeviceAddress x, int n, int d)
{
    pc_softmax pc = {x, (uint32_t)d, 0};
    uint32_t spec[1] = {256};
    dispatch(o, s, o->subgroup ? "softmax_sg" : "softmax", spec, 1, &pc, sizeof pc, (uint32_t)n, 1, 1,
             "softmax");
    if (o->subgroup) fault_perturb(o, s, "subgroup", x, (size_t)n * (size_t)d);
    cost(s, (double)n * d * 8.0, (double)n * d * 5.0);
}

/* ---- elementwise ---- */

static uint32_t grid_stride_groups(size_t count, uint32_t wg)
{
    uint64_t g = (count + wg - 1) / wg;
    return (uint32_t)(g > 65535 ? 65535 : g);
}

typedef struct {
    VkDeviceAddress x;
    uint32_t count, form;
} pc_gelu;

void vk_op_gelu(vk_ops *o, vk_seq *s, VkDeviceAddress x, size_t count, int form)
{
    pc_gelu pc = {x, (uint32_t)count, (uint32_t)form};
    uint32_t spec[1] = {256};
    dispatch(o, s, "gelu", spec, 1, &pc, sizeof pc, grid_stride_groups(count, 256), 1, 1, "gelu");
    cost(s, (double)count * 8.0, (double)count * 15.0);
}

typedef struct {
    VkDeviceAddress y, x;
    uint32_t count, pad;
} pc_add;

void vk_op_add(vk_ops *o, vk_seq *s, VkDeviceAddress y, VkDeviceAddress x, size_t count)
{
    pc_add pc = {y, x, (uint32_t)count, 0};
    uint32_t spec[1] = {256};
    dispatch(o, s, "add", spec, 1, &pc, sizeof pc, grid_stride_groups(count, 256), 1, 1, "add");
    cost(s, (double)count * 12.0, (double)count);
}

/* ---- argmax ---- */

typedef struct {
    VkDeviceAddress out, x;
    uint32_t n, pad;
} pc_argmax;

void vk_op_argmax(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, int n)
{
    vk_op_argmax_rows(o, s, out, x, n, 1);
}

void vk_op_argmax_rows(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, int n, int rows)
{
    pc_argmax pc = {out, x, (uint32_t)n, 0};
    uint32_t spec[1] = {vk_argmax_wg(o->caps->max_wg_invocations, o->caps->max_wg_size[0])};
    dispatch(o, s, "argmax", spec, 1, &pc, sizeof pc, 1, (uint32_t)rows, 1, "argmax");
    cost(s, rows * ((double)n * 4.0 + 4.0), rows * (double)n);
}

typedef struct {
    VkDeviceAddress out, x, params;
    uint32_t n, pad;
} pc_sample;

void vk_op_sample(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, VkDeviceAddress params, int n)
{
    vk_op_sample_rows(o, s, out, x, params, n, 1);
}

void vk_op_sample_rows(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress x, VkDeviceAddress params,
                       int n, int rows)
{
    pc_sample pc = {out, x, params, (uint32_t)n, 0};
    uint32_t spec[1] = {VKOPS_SAMPLE_MAX_K};
    dispatch(o, s, "sample", spec, 1, &pc, sizeof pc, 1, (uint32_t)rows, 1, "sample");
    cost(s, rows * ((double)n * 4.0 + 4.0), rows * (double)n * 4.0);
}

/* ---- matmul ---- */

typedef struct {
    VkDeviceAddress y, x, w, bias;
    uint32_t ldy, ldx, rows, cols, n, epi, form, pad;
} pc_matmul;

#define MATVEC_MAX_N VKE_MATVEC_MAX_N /* matvec handles up to this many tokens per weight pass */

const char *vk_ops_matmul_variant(const vk_ops *o, int n, gpt2_dtype wtype)
{
    /* matmul_coopmat_khr exists only where the configure step's glslang accepted
     * GL_KHR_cooperative_matrix (VKG_HAVE_COOPMAT_KHR); both gates are vk_coopmat_gate's. */
    return vk_pick_matmul(n, wtype, o->exact_x, o->nv_ok, o->khr_ok, o->force_mm);
}

/* Rows per workgroup (rpw) and workgroup size (wg) of the matvec kernels: one row per subgroup in
 * 128 invocations (or one subgroup), else 4 rows of 32 invocations reducing in shared memory. */
static void matvec_shape(const vk_ops *o, uint32_t *rpw, uint32_t *wg)
{
    if (o->subgroup) {
        *rpw = o->sg_size >= 128 ? 1 : 128 / o->sg_size;
        *wg = *rpw * o->sg_size;
    } else {
        *rpw = 4;
        *wg = 128;
    }
}

void vk_op_matmul(vk_ops *o, vk_seq *s, VkDeviceAddress y, int ldy, VkDeviceAddress x, int ldx,
                  VkDeviceAddress W, gpt2_dtype wtype, int rows, int cols, VkDeviceAddress bias, int n,
                  int epilogue, int gelu_form)
{
    if (n <= 0 || rows <= 0) return;
    pc_matmul pc = {y,
                    x,
                    W,
                    bias,
                    (uint32_t)ldy,
                    (uint32_t)ldx,
                    (uint32_t)rows,
                    (uint32_t)cols,
                    (uint32_t)n,
                    (uint32_t)epilogue,
                    (uint32_t)gelu_form,
                    0};
    const char *v = vk_ops_matmul_variant(o, n, wtype);
    bool f16 = wtype == GPT2_F16;
    /* W once, x in, y out (and in again for the residual), the bias. */
    double mm_bytes = (double)rows * cols * esz(wtype) + (double)n * cols * 4.0 +
        (double)n * rows * ((epilogue & GPT2_EPI_RESIDUAL) ? 8.0 : 4.0) +
        ((epilogue & GPT2_EPI_BIAS) ? rows * 4.0 : 0);
    double mm_flops = 2.0 * n * rows * cols;
    if (gpt2_dtype_is_quant(wtype)) {
        /* Block formats (cols a multiple of 32): matvec_q for decode, matmul_tiled_q otherwise
         * (the cooperative-matrix kernels take f16 only); the type is a specialization constant. */
        if (strcmp(v, "matvec") == 0) {
            bool x4 = ldx % 4 == 0 && x % 16 == 0;
            char name[32];
            snprintf(name, sizeof name, "matvec_q%s%s", x4 ? "_x4" : "", o->subgroup ? "_sg" : "");
            uint32_t nt = (uint32_t)(n < MATVEC_MAX_N ? n : MATVEC_MAX_N);
            uint32_t rpw, wg;
            matvec_shape(o, &rpw, &wg);
            uint32_t spec[4] = {wg, rpw, nt, (uint32_t)wtype};
            dispatch(o, s, name, spec, 4, &pc, sizeof pc, ceil_div((uint32_t)rows, rpw),
                     ceil_div((uint32_t)n, nt), 1, "matvec");
        } else {
            uint32_t spec[1] = {(uint32_t)wtype};
            dispatch(o, s, "matmul_tiled_q", spec, 1, &pc, sizeof pc, ceil_div((uint32_t)rows, 64),
                     ceil_div((uint32_t)n, 64), 1, "matmul_tiled");
        }
        cost(s, mm_bytes, mm_flops);
    } else if (strcmp(v, "matvec") == 0) {
        uint32_t vec = f16 ? 8 : 4;
        bool wide = cols % vec == 0 && ldx % 4 == 0 && W % 16 == 0 && x % 16 == 0;
        char name[32];
        snprintf(name, sizeof name, "matvec_%s%s%s", f16 ? "f16" : "f32", wide ? "_wide" : "",
                 o->subgroup ? "_sg" : "");
        uint32_t nt = (uint32_t)(n < MATVEC_MAX_N ? n : MATVEC_MAX_N);
        uint32_t rpw, wg;
        matvec_shape(o, &rpw, &wg);
        uint32_t spec[3] = {wg, rpw, nt};
        dispatch(o, s, name, spec, 3, &pc, sizeof pc, ceil_div((uint32_t)rows, rpw),
                 ceil_div((uint32_t)n, nt), 1, "matvec");
        cost(s, mm_bytes, mm_flops);
    } else if (strcmp(v, "coopmat_khr") == 0) {
        dispatch_opts(o, s, "matmul_coopmat_khr", NULL, 0, &o->khr_opts, &pc, sizeof pc,
                      ceil_div((uint32_t)rows, 64), ceil_div((uint32_t)n, 64), 1, "matmul_coopmat");
        cost(s, mm_bytes, mm_flops);
    } else if (strcmp(v, "coopmat_nv") == 0) {
        dispatch_opts(o, s, "matmul_coopmat_nv", NULL, 0, &o->nv_opts, &pc, sizeof pc,
                      ceil_div((uint32_t)rows, 64), ceil_div((uint32_t)n, 64), 1, "matmul_coopmat");
        cost(s, mm_bytes, mm_flops);
    } else {
        dispatch(o, s, f16 ? "matmul_tiled_f16" : "matmul_tiled_f32", NULL, 0, &pc, sizeof pc,
                 ceil_div((uint32_t)rows, 64), ceil_div((uint32_t)n, 64), 1, "matmul_tiled");
        cost(s, mm_bytes, mm_flops);
    }
    /* y's rows and what lies between them (ldy >= rows) */
    size_t y_count = (size_t)(n - 1) * (size_t)ldy + (size_t)rows;
    if (strncmp(v, "coopmat", 7) == 0)
        fault_perturb(o, s, v, y, y_count);
    else if (strcmp(v, "matvec") == 0 && o->subgroup)
        fault_perturb(o, s, "subgroup", y, y_count);
}

/* ---- KV cache and attention ---- */

typedef struct {
    VkDeviceAddress kc, vc, qkv, step;
    uint32_t n, E;
} pc_kv_store;

void vk_op_kv_store(vk_ops *o, vk_seq *s, VkDeviceAddress kcache, VkDeviceAddress vcache, gpt2_dtype kv_type,
                    VkDeviceAddress qkv, VkDeviceAddress step, int n, int E)
{
    pc_kv_store pc = {kcache, vcache, qkv, step, (uint32_t)n, (uint32_t)E};
    bool f16 = kv_type == GPT2_F16;
    uint32_t per_token = f16 ? (uint32_t)E / 2 : (uint32_t)E; /* f16: one pair each (E even) */
    uint32_t spec[1] = {128};
    dispatch(o, s, f16 ? "kv_store_f16" : "kv_store_f32", spec, 1, &pc, sizeof pc, ceil_div(per_token, 128),
             (uint32_t)n, 1, "kv_store");
    cost(s, (double)n * E * 2.0 * (4.0 + esz(kv_type)), 0);
}

/* Flash decoding splits the KV length [0, n_ctx) into chunks of about 64 keys, at most 32. */
static int attn_splits(int n_ctx)
{
    int s = (n_ctx + 63) / 64;
    return s < 1 ? 1 : s > 32 ? 32 : s;
}

/* Scratch: the partials (O, then the (m, l) pairs), then one counter per head (the fused decode). */
size_t vk_attention_scratch_bytes(int n_head, int head_dim, int n_ctx)
{
    return ((size_t)n_head * (size_t)attn_splits(n_ctx) * (size_t)(head_dim + 2) + (size_t)n_head) *
        sizeof(float);
}

typedef struct {
    VkDeviceAddress out, qkv, kc, vc, step;
    uint32_t n, E;
    float scale;
    uint32_t pad;
} pc_attn_prefill;

typedef struct {
    VkDeviceAddress part, qkv, kc, vc, step, kc4, out, cnt;
    uint32_t E, chunk, n_splits, n_head;
    float scale;
    uint32_t wide;
} pc_attn_decode;

typedef struct {
    VkDeviceAddress out, part;
    uint32_t n_splits, n_head;
} pc_attn_reduce;

void vk_op_attention(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress qkv, VkDeviceAddress kcache,
                     VkDeviceAddress vcache, gpt2_dtype kv_type, VkDeviceAddress step, int n, int n_head,
                     int head_dim, int n_ctx, VkDeviceAddress scratch)
{
    if (head_dim <= 0 || head_dim > 128 || n <= 0) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_op_attention: unsupported n %d / head_dim %d (1..128)", n,
                    head_dim);
        return;
    }
    bool f16 = kv_type == GPT2_F16;
    uint32_t E = (uint32_t)(n_head * head_dim);
    float scale = 1.0f / sqrtf((float)head_dim);
    uint32_t spec[1] = {(uint32_t)head_dim};
    if (n > 1) {
        pc_attn_prefill pc = {out, qkv, kcache, vcache, step, (uint32_t)n, E, scale, 0};
        dispatch(o, s, f16 ? "attn_prefill_f16" : "attn_prefill_f32", spec, 1, &pc, sizeof pc,
                 ceil_div((uint32_t)n, 16), (uint32_t)n_head, 1, "attn_prefill");
        /* Token t attends to n_past + t + 1 keys: 4 flops per key and dimension (q.k, p.v). Each
         * block of 16 queries streams the K/V rows it needs. */
        double kvb = 2.0 * E * esz(kv_type), blocks = ceil_div((uint32_t)n, 16);
        vk_seq_set_cost(s, (double)n * E * 8.0 + kvb * (blocks * n / 2.0),
                        4.0 * E * ((double)n * (n + 1) / 2.0), kvb * blocks, 4.0 * E * n);
        return;
    }
    vk_op_attention_rows(o, s, out, qkv, kcache, vcache, kv_type, step, 1, n_head, head_dim, n_ctx, scratch);
}

void vk_op_attention_rows(vk_ops *o, vk_seq *s, VkDeviceAddress out, VkDeviceAddress qkv,
                          VkDeviceAddress kcache, VkDeviceAddress vcache, gpt2_dtype kv_type,
                          VkDeviceAddress step, int n, int n_head, int head_dim, int n_ctx,
                          VkDeviceAddress scratch)
{
    if (head_dim <= 0 || head_dim > 128 || n <= 0) {
        gpt2_notice(VKG_NOTICE_ERROR, "vk_op_attention_rows: unsupported n %d / head_dim %d (1..128)", n,
                    head_dim);
        return;
    }
    bool f16 = kv_type == GPT2_F16;
    uint32_t E = (uint32_t)(n_head * head_dim);
    float scale = 1.0f / sqrtf((float)head_dim);
    uint32_t spec[1] = {(uint32_t)head_dim};
    uint32_t ns = (uint32_t)attn_splits(n_ctx);
    uint32_t chunk = ceil_div((uint32_t)n_ctx, ns);
    uint32_t wide = kcache % 16 == 0 && head_dim % (f16 ? 8 : 4) == 0;
    /* n_head in the push constants counts the heads of every row: the partials' layout. */
    uint32_t heads = (uint32_t)n_head * (uint32_t)n;
    VkDeviceAddress cnt = scratch + (VkDeviceAddress)heads * ns * (uint32_t)(head_dim + 2) * 4u;
    pc_attn_decode pd = {scratch, qkv, kcache, vcache, step,  kcache, out,
                         cnt,     E,   chunk,  ns,     heads, scale,  wide};
    bool fused = vk_ops_fused_attention(o);
    char name[40];
    snprintf(name, sizeof name, "attn_decode_%s%s%s", f16 ? "f16" : "f32", fused ? "_fused" : "",
             o->subgroup ? "_sg" : "");
    dispatch(o, s, name, spec, 1, &pd, sizeof pd, ns, (uint32_t)n_head, (uint32_t)n, "attn_decode");
    double part = (double)heads * ns * (head_dim + 2) * 4.0, kvb = 2.0 * E * esz(kv_type) * n;
    vk_seq_set_cost(s, E * 4.0 * n + part + kvb, 4.0 * E * n, kvb, 4.0 * E * n);
    if (fused) return; /* the last split of each head combined the partials into out */
    /* The reduction reads the partials every decode workgroup wrote to scratch: those writes must
     * be complete and visible first, and the caller's barriers only separate whole ops. */
    vk_seq_barrier(s);
    pc_attn_reduce pr = {out, scratch, ns, heads};
    dispatch(o, s, "attn_reduce", spec, 1, &pr, sizeof pr, heads, 1, 1, "attn_reduce");
    cost(s, part + E * 4.0 * n, part);
}

/* ---- fused layernorm + matvec ---- */

typedef struct {
    VkDeviceAddress y, x, w, bias, g, b, wte, wpe, ids, step;
    uint32_t ldy, ldx, rows, cols, n, epi, form, emb;
    float eps;
    uint32_t pad;
} pc_ln_matmul;

/* Shared memory the fused kernels use besides the normalised rows: the partial sums of the
 * shared-memory reduction (8 tokens x 128 floats), reduce.glsl's 128 floats, and a margin. */
#define LN_SHARED_OTHER (8 * 128 * 4 + 128 * 4 + 256)

/* Tokens per workgroup of the fused kernel for n rows of cols (0: the rows do not fit). */
static uint32_t ln_tokens(const vk_ops *o, int n, int cols)
{
    uint32_t budget = o->caps->max_shared > LN_SHARED_OTHER ? o->caps->max_shared - LN_SHARED_OTHER : 0;
    uint32_t fit = budget / ((uint32_t)cols * 4u);
    uint32_t nt = (uint32_t)(n < MATVEC_MAX_N ? n : MATVEC_MAX_N);
    return nt < fit ? nt : fit;
}

bool vk_op_ln_matmul_fits(const vk_ops *o, int n, int cols, gpt2_dtype wtype)
{
    if (n <= 0 || cols <= 0 || cols % 4 != 0 || (gpt2_dtype_is_quant(wtype) && cols % 32 != 0)) return false;
    if (wtype != GPT2_F32 && wtype != GPT2_F16 && !gpt2_dtype_is_quant(wtype)) return false;
    return strcmp(vk_ops_matmul_variant(o, n, wtype), "matvec") == 0 && ln_tokens(o, n, cols) > 0;
}

void vk_op_ln_matmul(vk_ops *o, vk_seq *s, VkDeviceAddress y, int ldy, VkDeviceAddress x, int ldx,
                     VkDeviceAddress g, VkDeviceAddress b, float eps, VkDeviceAddress W, gpt2_dtype wtype,
                     int rows, int cols, VkDeviceAddress bias, int n, int epilogue, int gelu_form,
                     const vk_embed_src *emb)
{
    if (n <= 0 || rows <= 0) return;
    if (!vk_op_ln_matmul_fits(o, n, cols, wtype)) {
        gpt2_notice(VKG_NOTICE_ERROR,
                    "vk_op_ln_matmul: %d rows of %d (%s) do not fit the fused "
                    "kernel, dispatch skipped",
                    n, cols, gpt2_dtype_name(wtype));
        return;
    }
    uint32_t code = emb ? 1u + (uint32_t)emb->wte_type + 256u * (uint32_t)emb->wpe_type : 0;
    pc_ln_matmul pc = {y,
                       x,
                       W,
                       bias,
                       g,
                       b,
                       emb ? emb->wte : 0,
                       emb ? emb->wpe : 0,
                       emb ? emb->ids : 0,
                       emb ? emb->step : 0,
                       (uint32_t)ldy,
                       (uint32_t)ldx,
                       (uint32_t)rows,
                       (uint32_t)cols,
                       (uint32_t)n,
                       (uint32_t)epilogue,
                       (uint32_t)gelu_form,
                       code,
                       eps,
                       0};
    uint32_t nt = ln_tokens(o, n, cols), rpw, wg;
    matvec_shape(o, &rpw, &wg);
    /* More rows per workgroup share one prologue (the two reductions over the row), while at
     * least 512 workgroups keep a large GPU's memory busy. */
    uint32_t rmul = (uint32_t)rows / (rpw * 512u);
    rmul = rmul < 1 ? 1 : rmul > 8 ? 8 : rmul;
    uint32_t xs4 = nt * (uint32_t)cols / 4u;
    char name[40];
    bool quant = gpt2_dtype_is_quant(wtype), f16 = wtype == GPT2_F16;
    if (quant) {
        snprintf(name, sizeof name, "matvec_q_ln%s", o->subgroup ? "_sg" : "");
    } else {
        bool wide = cols % (f16 ? 8 : 4) == 0 && W % 16 == 0;
        snprintf(name, sizeof name, "matvec_ln_%s%s%s", f16 ? "f16" : "f32", wide ? "_wide" : "",
                 o->subgroup ? "_sg" : "");
    }
    uint32_t spec[6] = {wg, rpw, nt, quant ? (uint32_t)wtype : 0, xs4, rmul};
    dispatch(o, s, name, spec, 6, &pc, sizeof pc, ceil_div((uint32_t)rows, rpw * rmul),
             ceil_div((uint32_t)n, nt), 1, emb ? "embed_ln_matvec" : "ln_matvec");
    /* W once, x (or the embedding rows) in, y out (and in for the residual), gamma, beta, bias. */
    double xin =
        emb ? (double)n * cols * (esz(emb->wte_type) + esz(emb->wpe_type) + 4.0) : (double)n * cols * 4.0;
    cost(s,
         (double)rows * cols * esz(wtype) + xin + (double)n * rows * ((epilogue & 4) ? 8.0 : 4.0) +
             (double)cols * 8.0 + ((epilogue & 1) ? rows * 4.0 : 0),
         2.0 * n * rows * cols + (double)n * cols * 8.0);
}
