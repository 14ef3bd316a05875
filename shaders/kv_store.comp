#version 460
// kv_store: kcache[r][e] = qkv[t][E + e], vcache[r][e] = qkv[t][2E + e], t < n, with cache row
// r = kv_base + n_past + t (or the row's slot base + position in a batched step), read from the
// step parameters at run time. Caches are f32, or packed f16 (-DKV_F16:
// each invocation converts and writes one pair; E must be even). Grid: (ceil(E[/2] / wg), n).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    U32 kcache;
    U32 vcache;
    F32 qkv;
    StepParams step;
    uint n;
    uint E;
} pc;

void main() {
    uint t = gl_WorkGroupID.y;
    if (t >= step_tokens(pc.step, pc.n)) return;
    uvec2 rp = step_row(pc.step, t);
    uint row = rp.x + rp.y;
    uint src = t * 3u * pc.E;
#ifdef KV_F16
    uint j = gl_GlobalInvocationID.x;   // pair index
    if (j >= pc.E / 2u) return;
    uint e = 2u * j;
    vec2 k = vec2(pc.qkv.v[src + pc.E + e], pc.qkv.v[src + pc.E + e + 1u]);
    vec2 v = vec2(pc.qkv.v[src + 2u * pc.E + e], pc.qkv.v[src + 2u * pc.E + e + 1u]);
    pc.kcache.v[(row * pc.E) / 2u + j] = packHalf2x16(k);
    pc.vcache.v[(row * pc.E) / 2u + j] = packHalf2x16(v);
#else
    uint e = gl_GlobalInvocationID.x;
    if (e >= pc.E) return;
    pc.kcache.v[row * pc.E + e] = floatBitsToUint(pc.qkv.v[src + pc.E + e]);
    pc.vcache.v[row * pc.E + e] = floatBitsToUint(pc.qkv.v[src + 2u * pc.E + e]);
#endif
}
