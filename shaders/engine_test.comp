#version 460
// engine_test: a small fill / scale / copy kernel used by the engine's own tests.
// Buffers are reached through device addresses in push constants (no descriptor sets);
// the workgroup size is specialization constant 0.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

layout(local_size_x_id = 0) in;

layout(buffer_reference, std430, buffer_reference_align = 4) buffer Words { uint v[]; };

// mode 0: dst[i] = add + i * mul                       (fill)
// mode 1: dst[i] = src[i] * mul + add                  (scale / copy with mul = 1, add = 0)
// mode 2: dst[i] = src[i] * param[0] + param[1]        (parameters read from memory at run time)
layout(push_constant) uniform Push {
    uint64_t dst;
    uint64_t src;
    uint64_t param;
    uint n;
    uint mode;
    uint mul;
    uint add;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n)
        return;
    Words dst = Words(pc.dst);
    uint value;
    if (pc.mode == 0u) {
        value = pc.add + i * pc.mul;
    } else if (pc.mode == 1u) {
        value = Words(pc.src).v[i] * pc.mul + pc.add;
    } else {
        Words p = Words(pc.param);
        value = Words(pc.src).v[i] * p.v[0] + p.v[1];
    }
    dst.v[i] = value;
}
