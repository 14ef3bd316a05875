#version 460
// matvec_q: y[t][o] = epi(sum_i x[t][i] * W[o][i]) for few tokens (decode), W in a ggml block format
// (quant.glsl) dequantized as it is read; f32 accumulation. The twin of matvec.comp: one row of W
// per group of lanes (a subgroup with -DUSE_SUBGROUP, else WG / RPW invocations reducing in shared
// memory), each row read once for up to NT tokens; workgroup y handles tokens [y*NT, y*NT+NT).
// Each lane takes units of 8 weights (quant.glsl): 4 consecutive lanes read one block.
//
// Defines: X4            x read as vec4 (needs ldx % 4 == 0 and 16-byte aligned x)
//          USE_SUBGROUP  subgroupAdd reduction, one row per subgroup
//          LN            fused layernorm (ln_rows.glsl), as in matvec.comp: x is layernorm(x; g, b)
//                        (or of the embedding) in shared memory; RPW * RMUL rows per workgroup
// Spec constants: 0 workgroup size, 1 RPW rows per workgroup, 2 NT tokens per workgroup (<= 8),
//                 3 QT weight type (gpt2_dtype code 3..7); LN: 4 XS4 (NT * cols / 4), 5 RMUL.
//                 cols must be a multiple of 32.
// Epilogue (flags in common.glsl): + bias[o], gelu, + y_old.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "quant.glsl"
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint RPW = 4;
layout(constant_id = 2) const uint NT = 1;
layout(constant_id = 3) const uint QT = 7;
#define NT_MAX 8

#ifdef LN
#include "reduce.glsl"
#include "ln_rows.glsl"
layout(constant_id = 5) const uint RMUL = 1;
#define ROWS_PER_WG (RPW * RMUL)
#else
#define ROWS_PER_WG RPW
#endif

#if defined(X4) && !defined(LN)
#define XTYPE F32x4
#else
#define XTYPE F32
#endif

layout(push_constant) uniform Push {
    F32 y;
    XTYPE x;
    U32 w;
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
    uint nb = pc.cols >> 5, nu = nb << 2;   // blocks and units per row
#ifdef LN
    uint xc4 = pc.cols >> 2;   // vec4s per row in xs
    ln_rows(ln_src(pc.x, pc.g, pc.b, pc.wte, pc.wpe, pc.ids, pc.step, pc.ldx, pc.cols, pc.n,
                   pc.emb, pc.eps), t0, nt);
#endif

    for (uint r = group; r < ROWS_PER_WG; r += ngroups) {
        uint row = gl_WorkGroupID.x * ROWS_PER_WG + r;
        bool live = row < pc.rows;
        float acc[NT_MAX];
        for (uint t = 0u; t < NT; t++) acc[t] = 0.0;
        if (live) {
            for (uint k = lane; k < nu; k += tpr) {
                uint u = k & 3u;
                vec4 lo, hi;
                q_unit(pc.w, QT, row * nb + (k >> 2), u, lo, hi);
                uint xc = (k >> 2) * 32u + 4u * u;   // column of lo[0]; hi[0] is xc + 16
                for (uint t = 0u; t < NT; t++) {
                    if (t < nt) {
#ifdef LN
                        uint xb = t * xc4 + (xc >> 2);
                        acc[t] += dot(lo, xs[xb]) + dot(hi, xs[xb + 4u]);
#elif defined(X4)
                        uint xb = ((t0 + t) * pc.ldx + xc) >> 2;
                        acc[t] += dot(lo, pc.x.v[xb]) + dot(hi, pc.x.v[xb + 4u]);
#else
                        uint xb = (t0 + t) * pc.ldx + xc;
                        vec4 xl = vec4(pc.x.v[xb], pc.x.v[xb + 1u], pc.x.v[xb + 2u], pc.x.v[xb + 3u]);
                        vec4 xh = vec4(pc.x.v[xb + 16u], pc.x.v[xb + 17u], pc.x.v[xb + 18u],
                                       pc.x.v[xb + 19u]);
                        acc[t] += dot(lo, xl) + dot(hi, xh);
#endif
                    }
                }
            }
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
