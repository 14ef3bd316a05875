#version 460
// matmul_coopmat_khr: y[t][o] = epi(sum_i x[t][i] * W[o][i]) on tensor cores / matrix cores through
// GL_KHR_cooperative_matrix (f16 x f16 -> f32, 16x16x16 subgroup-scope matrices), for devices with
// VK_KHR_cooperative_matrix. The same kernel as matmul_coopmat_nv: the host selects it only when
// vk_caps.coopmat_khr reports a 16x16x16 f16 x f16 -> f32 shape and 32-wide subgroups can be
// required (vk_coopmat_gate); it is
// built only where the configure step found a glslang that accepts the extension, and is compiled
// for SPIR-V 1.6 (vulkan1.3), so the host also requires a Vulkan 1.3 device.
// W is packed f16, x is f32 and rounded to f16 when staged. Workgroup = 4 subgroups of 32 computing
// a 64 (tokens) x 64 (rows) block, 32 x 32 per subgroup (2 x 2 accumulators); x and W tiles of
// K-step 32 are staged in shared memory as f16, zero outside the matrices, so any shape works; the
// f32 result goes through shared memory for the epilogue (bias, GELU, residual) and bounds-checked
// stores.
// Grid: (ceil(rows / 64), ceil(n / 64)).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

#define BM 64u
#define BN 64u
#define BK 32u
#define AS 40u   // f16 row stride of the staged tiles (80 bytes: a 16-byte multiple)
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

shared float16_t xa[BM * AS];   // xa[token][k]: A, row-major
shared float16_t wb[BN * AS];   // wb[row][k]: B = W^T, i.e. B read column-major
shared float cs[BM * CS];       // cs[token][row]

#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

void main() {
    uint tid = gl_LocalInvocationID.x;
    // 0..3: the host creates this pipeline with a required subgroup size of 32 and full subgroups
    // (SPIR-V 1.6 lets the size vary otherwise) and uses it on no device that cannot.
    uint sg = gl_SubgroupID;
    uint sm = (sg >> 1) * 32u, sn = (sg & 1u) * 32u;
    uint o0 = gl_WorkGroupID.x * BN, t0 = gl_WorkGroupID.y * BM;
    const int ROW = gl_CooperativeMatrixLayoutRowMajor;
    const int COL = gl_CooperativeMatrixLayoutColumnMajor;

    MAT_C c00 = MAT_C(0.0), c01 = MAT_C(0.0), c10 = MAT_C(0.0), c11 = MAT_C(0.0);
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
            MAT_A a0, a1;
            MAT_B b0, b1;
            coopMatLoad(a0, xa, (sm + 0u) * AS + kk, AS, ROW);
            coopMatLoad(a1, xa, (sm + 16u) * AS + kk, AS, ROW);
            coopMatLoad(b0, wb, (sn + 0u) * AS + kk, AS, COL);
            coopMatLoad(b1, wb, (sn + 16u) * AS + kk, AS, COL);
            c00 = coopMatMulAdd(a0, b0, c00);
            c01 = coopMatMulAdd(a0, b1, c01);
            c10 = coopMatMulAdd(a1, b0, c10);
            c11 = coopMatMulAdd(a1, b1, c11);
        }
        barrier();
    }
    coopMatStore(c00, cs, (sm + 0u) * CS + sn + 0u, CS, ROW);
    coopMatStore(c01, cs, (sm + 0u) * CS + sn + 16u, CS, ROW);
    coopMatStore(c10, cs, (sm + 16u) * CS + sn + 0u, CS, ROW);
    coopMatStore(c11, cs, (sm + 16u) * CS + sn + 16u, CS, ROW);
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
