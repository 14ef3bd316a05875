#version 460
// softmax: in place over each row of d, max-subtracted; one workgroup per row.
// Spec constant 0: workgroup size (power of two). -DUSE_SUBGROUP: subgroup reductions.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
#include "reduce.glsl"

layout(push_constant) uniform Push {
    F32 x;
    uint d;
} pc;

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint t = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    uint base = row * pc.d;
    float m = -1.0 / 0.0;
    for (uint i = t; i < pc.d; i += wg) m = max(m, pc.x.v[base + i]);
    m = wg_max(m);
    float s = 0.0;
    for (uint i = t; i < pc.d; i += wg) s += exp(pc.x.v[base + i] - m);
    float inv = 1.0 / wg_sum(s);
    for (uint i = t; i < pc.d; i += wg) pc.x.v[base + i] = exp(pc.x.v[base + i] - m) * inv;
}
