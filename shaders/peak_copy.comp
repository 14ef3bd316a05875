#version 460
// peak_copy: dst[i] = src[i] over count vec4s (grid-stride). The device's copy bandwidth for
// profiles: bytes read + bytes written over the dispatch's time. Spec constant 0: workgroup size.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    F32x4 dst;
    F32x4 src;
    uint count;
} pc;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.count; i += stride) pc.dst.v[i] = pc.src.v[i];
}
