#version 460
// layernorm: y[r] = (x[r] - mean) / sqrt(var + eps) * g + b, one workgroup per row of d.
// Two passes over the row (mean, then the mean of squared deviations), exact with large means.
// y may equal x: each invocation writes only the elements it read, after both reductions.
// Spec constant 0: workgroup size (power of two). -DUSE_SUBGROUP: subgroup reductions.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
#include "reduce.glsl"

layout(push_constant) uniform Push {
    F32 y;
    F32 x;
    F32 g;
    F32 b;
    uint d;
    float eps;
} pc;

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint t = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    uint base = row * pc.d;
    float s = 0.0;
    for (uint i = t; i < pc.d; i += wg) s += pc.x.v[base + i];
    float mean = wg_sum(s) / float(pc.d);
    float q = 0.0;
    for (uint i = t; i < pc.d; i += wg) {
        float dv = pc.x.v[base + i] - mean;
        q += dv * dv;
    }
    float var = wg_sum(q) / float(pc.d);
    float inv = inversesqrt(var + pc.eps);
    for (uint i = t; i < pc.d; i += wg)
        pc.y.v[base + i] = (pc.x.v[base + i] - mean) * inv * pc.g.v[i] + pc.b.v[i];
}
