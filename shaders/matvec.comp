#version 460
// matvec: y[t][o] = epi(sum_i x[t][i] * W[o][i]) for few tokens (decode). One row of W per group of
// lanes (a subgroup with -DUSE_SUBGROUP, else WG / RPW invocations reducing in shared memory), so
// each row is read once, coalesced, for up to NT tokens; workgroup y handles tokens [y*NT, y*NT+NT).
//
// Defines: W_F16   W is packed f16 (else f32)
//          WIDE    16-byte loads: vec4 of f32 weights / uvec4 = 8 f16 weights; needs cols % 4 == 0
//                  (f32) or % 8 == 0 (f16), ldx % 4 == 0 and 16-byte aligned W and x
//          USE_SUBGROUP  subgroupAdd reduction, one row per subgroup
//          LN      fused layernorm (ln_rows.glsl): x is layernorm(x; g, b) (or of the embedding),
//                  computed by every workgroup into shared memory; WIDE then concerns W only (x is
//                  read from shared memory), cols % 4 == 0. Each workgroup takes RPW * RMUL rows,
//                  so the prologue is shared by more rows.
// Spec constants: 0 workgroup size, 1 RPW rows per workgroup, 2 NT tokens per workgroup (<= 8);
//                 LN: 4 XS4 (NT * cols / 4), 5 RMUL (3 is unused).
// Epilogue (flags in common.glsl): + bias[o], gelu, + y_old.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint RPW = 4;
layout(constant_id = 2) const uint NT = 1;
#define NT_MAX 8

#ifdef LN
#include "quant.glsl"
#include "reduce.glsl"
#include "ln_rows.glsl"
layout(constant_id = 5) const uint RMUL = 1;
#define ROWS_PER_WG (RPW * RMUL)
#else
#define ROWS_PER_WG RPW
#endif

#if defined(WIDE) && !defined(LN)
#define XTYPE F32x4
#else
#define XTYPE F32
#endif
#ifdef WIDE
#ifdef W_F16
#define WTYPE U32x4
#else
#define WTYPE F32x4
#endif
#else
#ifdef W_F16
#define WTYPE U32
#else
#define WTYPE F32
#endif
#endif

layout(push_constant) uniform Push {
    F32 y;
    XTYPE x;
    WTYPE w;
    F32 bias;
#ifdef LN
    F32 g;
    F32 b;
    U32 wte;
    U32 wpe;
    I32 ids;
    StepParams step;
#endif
    uint ldy;
    uint ldx;
    uint rows;
    uint cols;
    uint n;
    uint epi;
    uint form;
#ifdef LN
    uint emb;
    float eps;
#endif
} pc;

// x of token t (0..NT) of the workgroup: vec4 j of its row, element i of its row.
#ifdef LN
#define XV4(t, j) xs[(t) * xc4 + (j)]
#define XS1(t, i) xs[(t) * xc4 + ((i) >> 2)][(i) & 3u]
#else
#define XV4(t, j) pc.x.v[(t0 + (t)) * xc4 + (j)]
#define XS1(t, i) pc.x.v[(t0 + (t)) * pc.ldx + (i)]
#endif

#ifndef USE_SUBGROUP
shared float part[NT_MAX * gl_WorkGroupSize.x];
#endif

void main() {
    uint tid = gl_LocalInvocationID.x;
#ifdef USE_SUBGROUP
    uint group = gl_SubgroupID, ngroups = gl_NumSubgroups;
    uint lane = gl_SubgroupInvocationID, tpr = gl_SubgroupSize;
#else
    uint tpr = gl_WorkGroupSize.x / RPW;
    uint group = tid / tpr, ngroups = RPW, lane = tid % tpr;
#endif
    uint t0 = gl_WorkGroupID.y * NT;
    uint nt = min(NT, pc.n - t0);
#ifdef LN
    uint xc4 = pc.cols >> 2;   // vec4s per row in xs
    ln_rows(ln_src(pc.x, pc.g, pc.b, pc.wte, pc.wpe, pc.ids, pc.step, pc.ldx, pc.cols, pc.n,
                   pc.emb, pc.eps), t0, nt);
#else
    uint xc4 = pc.ldx >> 2;    // vec4s per row of x (WIDE)
#endif

    for (uint r = group; r < ROWS_PER_WG; r += ngroups) {
        uint row = gl_WorkGroupID.x * ROWS_PER_WG + r;
        bool live = row < pc.rows;
        float acc[NT_MAX];
        for (uint t = 0u; t < NT; t++) acc[t] = 0.0;
        if (live) {
#if defined(WIDE) && defined(W_F16)
            uint c8 = pc.cols >> 3;
            uint wrow = row * c8;
            for (uint k = lane; k < c8; k += tpr) {
                uvec4 u = pc.w.v[wrow + k];
                vec4 w0 = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
                vec4 w1 = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
                for (uint t = 0u; t < NT; t++)
                    if (t < nt) acc[t] += dot(w0, XV4(t, 2u * k)) + dot(w1, XV4(t, 2u * k + 1u));
            }
#elif defined(WIDE)
            uint c4 = pc.cols >> 2;
            uint wrow = row * c4;
            for (uint k = lane; k < c4; k += tpr) {
                vec4 w = pc.w.v[wrow + k];
                for (uint t = 0u; t < NT; t++)
                    if (t < nt) acc[t] += dot(w, XV4(t, k));
            }
#else
            uint wrow = row * pc.cols;
            for (uint k = lane; k < pc.cols; k += tpr) {
#ifdef W_F16
                float w = half_at(pc.w, wrow + k);
#else
                float w = pc.w.v[wrow + k];
#endif
                for (uint t = 0u; t < NT; t++)
                    if (t < nt) acc[t] += w * XS1(t, k);
            }
#endif
        }
#ifdef USE_SUBGROUP
        for (uint t = 0u; t < NT; t++) acc[t] = subgroupAdd(acc[t]);
#else
        for (uint t = 0u; t < NT; t++) part[t * gl_WorkGroupSize.x + tid] = acc[t];
        barrier();
        for (uint s = tpr >> 1; s > 0u; s >>= 1) {
            if (lane < s)
                for (uint t = 0u; t < NT; t++)
                    part[t * gl_WorkGroupSize.x + tid] += part[t * gl_WorkGroupSize.x + tid + s];
            barrier();
        }
        for (uint t = 0u; t < NT; t++) acc[t] = part[t * gl_WorkGroupSize.x + tid];
#endif
        if (live && lane == 0u) {
            for (uint t = 0u; t < NT; t++) {
                if (t < nt) {
                    float v = acc[t];
                    uint yi = (t0 + t) * pc.ldy + row;
                    if ((pc.epi & EPI_BIAS) != 0u) v += pc.bias.v[row];
                    if ((pc.epi & EPI_GELU) != 0u) v = gelu(v, pc.form);
                    if ((pc.epi & EPI_RESIDUAL) != 0u) v += pc.y.v[yi];
                    pc.y.v[yi] = v;
                }
            }
        }
    }
}
