#version 460
// penalty: the repetition penalty of core/sampler.c on the device, so a draw with a penalty does
// not need the logits on the host. Row r of the logits x ([rows][n]) is penalised over its
// sequence's recent ids: the window of pen[r].window ids ending at hist[r * stride + base + k - 1]
// (ids >= n, e.g. the 0xffffffff padding of a short history, are skipped). Each distinct id is
// penalised once, however often it occurs: positive logits divided by the penalty, negative ones
// multiplied. One workgroup per row (grid y = rows); spec constant 0: workgroup size.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

// One per row (vk_penalty_params in vk_chain.h).
layout(buffer_reference, std430, buffer_reference_align = 8) buffer PenParams {
    uvec2 v[];   // (penalty as float bits, window length)
};

layout(push_constant) uniform Push {
    U32 hist;       // [rows][stride] recent ids
    F32 x;          // logits [rows][n]
    PenParams pen;  // per row
    uint n;         // vocabulary size
    uint stride;    // ids per row of hist
    uint base;      // the window of step 0 ends just before hist[row * stride + base]
    uint k;         // the step of a chain (the window slides by one id per step)
} pc;

// q = a / p rounded as IEEE division does (one Newton step on the reciprocal's quotient: the
// shader's plain division may be off by 2.5 ulp).
float div_rn(float a, float p) {
    precise float q = a / p;
    precise float r = fma(-q, p, a);
    return fma(r, 1.0 / p, q);
}

void main() {
    uint t = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x, row = gl_WorkGroupID.y;
    float p = uintBitsToFloat(pc.pen.v[row].x);
    uint w = pc.pen.v[row].y;
    if (w == 0u || p == 1.0) return;
    uint end = row * pc.stride + pc.base + pc.k; // one past the window's last id
    uint from = end - w;
    for (uint i = from + t; i < end; i += wg) {
        uint id = pc.hist.v[i];
        if (id >= pc.n) continue;
        bool seen = false;
        for (uint j = from; j < i && !seen; j++) seen = pc.hist.v[j] == id;
        if (seen) continue;
        // Distinct ids: no two invocations touch the same logit.
        float l = pc.x.v[row * pc.n + id];
        pc.x.v[row * pc.n + id] = l > 0.0 ? div_rn(l, p) : l * p;
    }
}
