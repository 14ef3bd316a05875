#version 460
// peak_copy: the device's memory bandwidth for profiles. mode 0: dst[i] = src[i] over count vec4s
// (bytes read + written); mode 1: every invocation sums its vec4s of src and writes one vec4 (bytes
// read), since some devices (lavapipe) store far slower than they load and decode mostly reads.
// Grid-stride loops. Spec constant 0: workgroup size.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    F32x4 dst;
    F32x4 src;
    uint count;
    uint mode;
} pc;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (pc.mode == 0u) {
        for (uint i = gl_GlobalInvocationID.x; i < pc.count; i += stride) pc.dst.v[i] = pc.src.v[i];
        return;
    }
    vec4 acc = vec4(0.0);
    for (uint i = gl_GlobalInvocationID.x; i < pc.count; i += stride) acc += pc.src.v[i];
    pc.dst.v[gl_GlobalInvocationID.x] = acc;
}
