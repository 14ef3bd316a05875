#version 460
// gelu: x[i] = gelu(x[i]) in place; form 0 tanh approximation, 1 erf (common.glsl).
// Spec constant 0: workgroup size.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    F32 x;
    uint count;
    uint form;
} pc;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.count; i += stride)
        pc.x.v[i] = gelu(pc.x.v[i], pc.form);
}
