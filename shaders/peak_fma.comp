#version 460
// peak_fma: every invocation runs 8 independent vec4 multiply-add chains for `iters` rounds and
// writes one float, so the time is all arithmetic: 8 * 4 * 2 * iters flops per invocation.
// Spec constant 0: workgroup size.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    F32 out_;
    uint iters;
    float m;
} pc;

void main() {
    float s0 = float(gl_LocalInvocationID.x);
    vec4 a0 = vec4(s0), a1 = a0 + 1.0, a2 = a0 + 2.0, a3 = a0 + 3.0;
    vec4 a4 = a0 + 4.0, a5 = a0 + 5.0, a6 = a0 + 6.0, a7 = a0 + 7.0;
    vec4 m = vec4(pc.m), c = vec4(1e-7);
    for (uint i = 0u; i < pc.iters; i++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    vec4 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    pc.out_.v[gl_GlobalInvocationID.x] = s.x + s.y + s.z + s.w;
}
