#version 460
// matmul_tiled: y[t][o] = epi(sum_i x[t][i] * W[o][i]) for prompt batches. A 16x16 workgroup
// computes a 64 (tokens) x 64 (rows of W) block, 4x4 outputs per invocation held in registers;
// x and W advance through shared memory in K-steps of 16. Any shape works: loads outside the
// matrices read zero and stores outside are skipped.
// Defines: W_F16 (W packed f16, else f32). Grid: (ceil(rows / 64), ceil(n / 64)).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define BM 64u   // tokens per workgroup
#define BN 64u   // rows of W per workgroup
#define BK 16u   // K step
#define PAD 65u  // shared row stride (odd: conflict-free transposed stores)

layout(local_size_x = 16, local_size_y = 16) in;

#ifdef W_F16
#define WTYPE U32
#else
#define WTYPE F32
#endif

layout(push_constant) uniform Push {
    F32 y;
    F32 x;
    WTYPE w;
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
    float acc[4][4];
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < pc.cols; k0 += BK) {
        // 64 x 16 elements of each operand, 4 per invocation; 16 consecutive lanes read 16
        // consecutive elements of one row.
        for (uint p = 0u; p < 4u; p++) {
            uint idx = tid + 256u * p;
            uint r = idx >> 4, kk = idx & 15u;
            uint k = k0 + kk;
            uint t = t0 + r, o = o0 + r;
            float xv = 0.0, wv = 0.0;
            if (k < pc.cols) {
                if (t < pc.n) xv = pc.x.v[t * pc.ldx + k];
#ifdef W_F16
                if (o < pc.rows) wv = half_at(pc.w, o * pc.cols + k);
#else
                if (o < pc.rows) wv = pc.w.v[o * pc.cols + k];
#endif
            }
            xs[kk * PAD + r] = xv;
            ws[kk * PAD + r] = wv;
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float a[4], b[4];
            for (uint i = 0u; i < 4u; i++) a[i] = xs[kk * PAD + ty + 16u * i];
            for (uint j = 0u; j < 4u; j++) b[j] = ws[kk * PAD + tx + 16u * j];
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        barrier();
    }

    for (uint i = 0u; i < 4u; i++) {
        uint t = t0 + ty + 16u * i;
        if (t >= pc.n) continue;
        for (uint j = 0u; j < 4u; j++) {
            uint o = o0 + tx + 16u * j;
            if (o >= pc.rows) continue;
            float v = acc[i][j];
            uint yi = t * pc.ldy + o;
            if ((pc.epi & EPI_BIAS) != 0u) v += pc.bias.v[o];
            if ((pc.epi & EPI_GELU) != 0u) v = gelu(v, pc.form);
            if ((pc.epi & EPI_RESIDUAL) != 0u) v += pc.y.v[yi];
            pc.y.v[yi] = v;
        }
    }
}
