#version 460
// matmul_tiled_q: y[t][o] = epi(sum_i x[t][i] * W[o][i]) for prompt batches, W in a ggml block format
// (quant.glsl) dequantized into shared memory as it is staged; f32 accumulation. The twin of
// matmul_tiled.comp: a 16x16 workgroup computes a 64 (tokens) x 64 (rows of W) block, 4x4 outputs
// per invocation in registers, but K advances one block (32) at a time: each invocation stages one
// unit (8 weights, quant.glsl) of one row of W and the matching 8 values of one row of x.
// Rows and tokens outside the matrices read zero, stores outside are skipped; cols must be a
// multiple of 32. Spec constant 0: QT, the weight type (gpt2_dtype code 3..7).
// Grid: (ceil(rows / 64), ceil(n / 64)).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "quant.glsl"

#define BM 64u   // tokens per workgroup
#define BN 64u   // rows of W per workgroup
#define BK 32u   // K step: one block
#define PAD 65u  // shared row stride

layout(local_size_x = 16, local_size_y = 16) in;
layout(constant_id = 0) const uint QT = 7;

layout(push_constant) uniform Push {
    F32 y;
    F32 x;
    U32 w;
    F32 bias;
    uint ldy;
    uint ldx;
    uint rows;
    uint cols;
    uint n;
    uint epi;
    uint form;
} pc;

shared float xs[BK * PAD];   // xs[k][token]
shared float ws[BK * PAD];   // ws[k][row]

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint o0 = gl_WorkGroupID.x * BN, t0 = gl_WorkGroupID.y * BM;
    uint nb = pc.cols >> 5;
    float acc[4][4];
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

    // What this invocation stages: row r of the tile (a token for x, a row of W), unit u.
    uint r = tid >> 2, u = tid & 3u;
    uint t = t0 + r, o = o0 + r;
    for (uint b = 0u; b < nb; b++) {
        vec4 xl = vec4(0.0), xh = vec4(0.0), wl = vec4(0.0), wh = vec4(0.0);
        if (t < pc.n) {
            uint xb = t * pc.ldx + b * 32u + 4u * u;
            xl = vec4(pc.x.v[xb], pc.x.v[xb + 1u], pc.x.v[xb + 2u], pc.x.v[xb + 3u]);
            xh = vec4(pc.x.v[xb + 16u], pc.x.v[xb + 17u], pc.x.v[xb + 18u], pc.x.v[xb + 19u]);
        }
        if (o < pc.rows) q_unit(pc.w, QT, o * nb + b, u, wl, wh);
        for (uint i = 0u; i < 4u; i++) {
            xs[(4u * u + i) * PAD + r] = xl[i];
            xs[(16u + 4u * u + i) * PAD + r] = xh[i];
            ws[(4u * u + i) * PAD + r] = wl[i];
            ws[(16u + 4u * u + i) * PAD + r] = wh[i];
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float a[4], c[4];
            for (uint i = 0u; i < 4u; i++) a[i] = xs[kk * PAD + ty + 16u * i];
            for (uint j = 0u; j < 4u; j++) c[j] = ws[kk * PAD + tx + 16u * j];
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) acc[i][j] = fma(a[i], c[j], acc[i][j]);
        }
        barrier();
    }

    for (uint i = 0u; i < 4u; i++) {
        uint tt = t0 + ty + 16u * i;
        if (tt >= pc.n) continue;
        for (uint j = 0u; j < 4u; j++) {
            uint oo = o0 + tx + 16u * j;
            if (oo >= pc.rows) continue;
            float v = acc[i][j];
            uint yi = tt * pc.ldy + oo;
            if ((pc.epi & EPI_BIAS) != 0u) v += pc.bias.v[oo];
            if ((pc.epi & EPI_GELU) != 0u) v = gelu(v, pc.form);
            if ((pc.epi & EPI_RESIDUAL) != 0u) v += pc.y.v[yi];
            pc.y.v[yi] = v;
        }
    }
}
