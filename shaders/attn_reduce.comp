#version 460
// attn_reduce: flash decoding, second pass: combines the n_splits partials of each head (layout in
// attn_decode.comp) into out[h * HD + d] = sum_s O_s[d] e^(m_s - M) / sum_s l_s e^(m_s - M),
// M = max_s m_s. One workgroup per head; in a batched decode step n_head counts the heads of every
// row (row z's head h is hh = z * heads + h, and out[hh * HD + d] is row z's out[z * E + h * HD + d]).
// Spec constant 0: head_dim.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint HD = 64;

layout(push_constant) uniform Push {
    F32 out_;
    F32 part;
    uint n_splits;
    uint n_head;
} pc;

void main() {
    uint tid = gl_LocalInvocationID.x, h = gl_WorkGroupID.x;
    uint ns = pc.n_splits;
    uint ml = pc.n_head * ns * HD + h * ns * 2u;
    float M = -1.0 / 0.0;
    for (uint s = 0u; s < ns; s++) M = max(M, pc.part.v[ml + 2u * s]);
    float L = 0.0;
    for (uint s = 0u; s < ns; s++) L += pc.part.v[ml + 2u * s + 1u] * exp(pc.part.v[ml + 2u * s] - M);
    float inv = 1.0 / L;
    for (uint d = tid; d < HD; d += 64u) {
        float acc = 0.0;
        for (uint s = 0u; s < ns; s++)
            acc += pc.part.v[(h * ns + s) * HD + d] * exp(pc.part.v[ml + 2u * s] - M);
        pc.out_.v[h * HD + d] = acc * inv;
    }
}
