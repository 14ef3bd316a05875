#version 460
// embed: x[t][i] = wte[ids[t]][i] + wpe[pos(t)][i], t < n, i < d, pos(t) = n_past + t (or the
// row's own position in a batched step). Positions and the step's token count are read from the
// step parameters at run time.
// wte / wpe are f32, packed f16 or a ggml block format (quant.glsl; d a multiple of 32): their
// gpt2_dtype codes are in push constants, and a quantized row is dequantized element by element.
// Grid: (ceil(d / wg), n).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "quant.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    F32 x;
    U32 wte;
    U32 wpe;
    I32 ids;
    StepParams step;
    uint n;
    uint d;
    uint wte_type;   // gpt2_dtype: 0 f32, 1 f16, 3..7 block formats
    uint wpe_type;
} pc;

float load_row(U32 p, uint type, uint row, uint i) {
    if (type >= QT_Q4_0) return q_elem(p, type, row * (pc.d >> 5) + (i >> 5), i & 31u);
    uint idx = row * pc.d + i;
    return type == 1u ? half_at(p, idx) : uintBitsToFloat(p.v[idx]);
}

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= pc.d || t >= step_tokens(pc.step, pc.n)) return;
    uint tok = uint(pc.ids.v[t]);
    uint pos = step_row(pc.step, t).y;
    pc.x.v[t * pc.d + i] = load_row(pc.wte, pc.wte_type, tok, i) + load_row(pc.wpe, pc.wpe_type, pos, i);
}
