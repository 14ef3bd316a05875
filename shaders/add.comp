#version 460
// add: y[i] += x[i] for i < count (grid-stride loop, so any count fits the group-count limit).
// Spec constant 0: workgroup size.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    F32 y;
    F32 x;
    uint count;
} pc;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.count; i += stride) pc.y.v[i] += pc.x.v[i];
}
