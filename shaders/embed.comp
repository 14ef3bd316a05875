#version 460
// embed: x[t][i] = wte[ids[t]][i] + wpe[n_past + t][i], t < n, i < d.
// n_past (and the step's token count) are read from the step parameters at run time.
// wte / wpe are f32 or packed f16 (flags in push constants). Grid: (ceil(d / wg), n).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    F32 x;
    U32 wte;
    U32 wpe;
    I32 ids;
    StepParams step;
    uint n;
    uint d;
    uint wte_f16;
    uint wpe_f16;
} pc;

float load_row(U32 p, uint f16, uint row, uint i) {
    uint idx = row * pc.d + i;
    return f16 != 0u ? half_at(p, idx) : uintBitsToFloat(p.v[idx]);
}

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= pc.d || t >= step_tokens(pc.step, pc.n)) return;
    uint tok = uint(pc.ids.v[t]);
    uint pos = pc.step.n_past + t;
    pc.x.v[t * pc.d + i] = load_row(pc.wte, pc.wte_f16, tok, i) + load_row(pc.wpe, pc.wpe_f16, pos, i);
}
