#version 460
// matmul_coopmat_nv: y[t][o] = epi(sum_i x[t][i] * W[o][i]) on tensor cores through
// GL_NV_cooperative_matrix (f16 x f16 -> f32 16x16x16), for devices with VK_NV_cooperative_matrix
// (the host selects it only when vk_caps.coopmat_nv; it cannot run on lavapipe). W is packed f16,
// x is f32 and rounded to f16 when staged (so the host keeps the LM head and all-logits steps off
// this kernel, see vk_ops_set_exact_x). Workgroup = 4 subgroups of 32 computing a 64 (tokens) x
// 64 (rows) block, 32 x 32 per subgroup (2 x 2 matrices); x and W tiles of K-step 32 are staged in
// shared memory as f16 (zero outside the matrices, so any shape works); the f32 result goes
// through shared memory for the epilogue and bounds-checked stores.
// Grid: (ceil(rows / 64), ceil(n / 64)).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

#define BM 64u
#define BN 64u
#define BK 32u
#define AS 40u   // f16 row stride of the staged tiles (80 bytes: 16-byte multiple)
#define CS 68u   // f32 row stride of the result tile (272 bytes)

layout(local_size_x = 128) in;

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

shared float16_t xa[BM * AS];   // xa[token][k]
shared float16_t wb[BN * AS];   // wb[row][k]: B = W^T read column-major
shared float cs[BM * CS];       // cs[token][row]

#define MAT16 fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define MAT32 fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

void main() {
    uint tid = gl_LocalInvocationID.x;
    // The subgroup's own id: Vulkan does not promise that invocations 32i..32i+31 form subgroup i.
    // The host creates this pipeline with a required subgroup size of 32 and full subgroups where
    // the device allows it (else only where the size is fixed at 32), so there are 4 of them.
    uint sg = gl_SubgroupID;
    uint sm = (sg >> 1) * 32u, sn = (sg & 1u) * 32u;
    uint o0 = gl_WorkGroupID.x * BN, t0 = gl_WorkGroupID.y * BM;

    MAT32 c00 = MAT32(0.0), c01 = MAT32(0.0), c10 = MAT32(0.0), c11 = MAT32(0.0);
    for (uint k0 = 0u; k0 < pc.cols; k0 += BK) {
        for (uint idx = tid; idx < BM * BK; idx += 128u) {
            uint r = idx / BK, kk = idx % BK, k = k0 + kk;
            uint t = t0 + r, o = o0 + r;
            float xv = (t < pc.n && k < pc.cols) ? pc.x.v[t * pc.ldx + k] : 0.0;
            float wv = (o < pc.rows && k < pc.cols) ? half_at(pc.w, o * pc.cols + k) : 0.0;
            xa[r * AS + kk] = float16_t(xv);
            wb[r * AS + kk] = float16_t(wv);
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk += 16u) {
            MAT16 a0, a1, b0, b1;
            coopMatLoadNV(a0, xa, (sm + 0u) * AS + kk, AS, false);
            coopMatLoadNV(a1, xa, (sm + 16u) * AS + kk, AS, false);
            coopMatLoadNV(b0, wb, (sn + 0u) * AS + kk, AS, true);
            coopMatLoadNV(b1, wb, (sn + 16u) * AS + kk, AS, true);
            c00 = coopMatMulAddNV(a0, b0, c00);
            c01 = coopMatMulAddNV(a0, b1, c01);
            c10 = coopMatMulAddNV(a1, b0, c10);
            c11 = coopMatMulAddNV(a1, b1, c11);
        }
        barrier();
    }
    coopMatStoreNV(c00, cs, (sm + 0u) * CS + sn + 0u, CS, false);
    coopMatStoreNV(c01, cs, (sm + 0u) * CS + sn + 16u, CS, false);
    coopMatStoreNV(c10, cs, (sm + 16u) * CS + sn + 0u, CS, false);
    coopMatStoreNV(c11, cs, (sm + 16u) * CS + sn + 16u, CS, false);
    barrier();
    for (uint idx = tid; idx < BM * BN; idx += 128u) {
        uint r = idx / BN, c = idx % BN;
        uint t = t0 + r, o = o0 + c;
        if (t >= pc.n || o >= pc.rows) continue;
        float v = cs[r * CS + c];
        uint yi = t * pc.ldy + o;
        if ((pc.epi & EPI_BIAS) != 0u) v += pc.bias.v[o];
        if ((pc.epi & EPI_GELU) != 0u) v = gelu(v, pc.form);
        if ((pc.epi & EPI_RESIDUAL) != 0u) v += pc.y.v[yi];
        pc.y.v[yi] = v;
    }
}
