#version 460
// argmax: out[r] = index of the largest of row r of x, x[r * n .. r * n + n) (the lowest index on
// ties), one workgroup per row (grid y = rows) looping over it, then a shared-memory reduction of
// (value, index) pairs.
// Spec constant 0: workgroup size (power of two).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    U32 out_idx;
    F32 x;
    uint n;
} pc;

shared float best_v[gl_WorkGroupSize.x];
shared uint best_i[gl_WorkGroupSize.x];

// a beats b: larger, or equal with a lower index. NaN never beats anything.
bool beats(float av, uint ai, float bv, uint bi) { return av > bv || (av == bv && ai < bi); }

void main() {
    uint t = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x, row = gl_WorkGroupID.y;
    float bv = -1.0 / 0.0;
    uint bi = 0xffffffffu;
    // Each invocation scans ascending indices, so a strict '>' keeps the lowest index of its ties.
    // NaNs are skipped (v == v is false only for NaN), as in cpu_argmax.
    for (uint i = t; i < pc.n; i += wg) {
        float v = pc.x.v[row * pc.n + i];
        if (v > bv || (bi == 0xffffffffu && v == v)) { bv = v; bi = i; }
    }
    best_v[t] = bv;
    best_i[t] = bi;
    barrier();
    for (uint s = wg >> 1; s > 0u; s >>= 1) {
        if (t < s) {
            float ov = best_v[t + s];
            uint oi = best_i[t + s];
            if (oi != 0xffffffffu && (best_i[t] == 0xffffffffu || beats(ov, oi, best_v[t], best_i[t]))) {
                best_v[t] = ov;
                best_i[t] = oi;
            }
        }
        barrier();
    }
    if (t == 0u) pc.out_idx.v[row] = best_i[0] == 0xffffffffu ? 0u : best_i[0];
}
