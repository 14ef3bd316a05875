#version 460
// attn_decode: flash decoding, first pass, for one new token per row. Workgroup (x = split, y =
// head, z = row) attends to the keys [split * chunk, (split + 1) * chunk) that exist for that row
// (j <= its position; row z is token z of the step: position n_past + z of the step's slot when
// the step is not batched (then n == 1), or its own (slot, position) in a batched decode step, read
// from the step parameters at run time) and writes an unnormalised partial result O (head_dim
// floats) with its running max m and sum l to scratch; splits past the end write the empty partial
// (O = 0, m = -inf, l = 0). attn_reduce.comp combines the partials.
// With hh = z * heads + h the global head index (heads = the grid's y size) and NH = n_head (the
// push constant: heads times rows), scratch holds O at [(hh * n_splits + split) * HD], then (m, l)
// pairs at [NH * n_splits * HD + (hh * n_splits + split) * 2].
// The new token's own K and V (position kv_len - 1 of its row's sequence) are taken straight from
// qkv, and the workgroup whose split holds that position also stores them into the caches: decode
// needs no kv_store dispatch (and no barrier for it). Later steps read the stored (for f16:
// rounded) row.
// 64 invocations: one key each per pass of the chunk for the scores (reading its K row with 16-byte
// loads when `wide`: K 16-byte aligned and head_dim % 4 == 0 (f32) or % 8 == 0 (f16)), then one
// output dim each (dims d = tid + 64 i, coalesced across the workgroup) for P.V. K/V f32 or packed
// f16 (-DKV_F16). Spec constant 0: head_dim (<= 128).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "kv_load.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint HD = 64;
#include "reduce.glsl"

layout(push_constant) uniform Push {
    F32 part;
    F32 qkv;
    U32 kc;
    U32 vc;
    StepParams step;
    U32x4 kc4;   // the same address as kc, read 16 bytes at a time when wide != 0
    uint E;
    uint chunk;
    uint n_splits;
    uint n_head;
    float scale;
    uint wide;
} pc;

// The value the cache holds for x: rounded to f16 for f16 caches, so the new row counts exactly as
// it will in later steps (and as in the CPU twin, which stores before it reads).
float as_cached(float x) {
#ifdef KV_F16
    return unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x;
#else
    return x;
#endif
}

shared float qs[HD];
shared float ps[64];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint split = gl_WorkGroupID.x, h = gl_WorkGroupID.y, z = gl_WorkGroupID.z;
    if (z >= step_tokens(pc.step, gl_NumWorkGroups.z)) return;   // whole workgroup
    uvec2 rp = step_row(pc.step, z);
    uint kb = rp.x, kv_len = rp.y + 1u;
    uint jb = split * pc.chunk, je = min(jb + pc.chunk, kv_len);
    uint slot = (z * gl_NumWorkGroups.y + h) * pc.n_splits + split;
    uint ml = pc.n_head * pc.n_splits * HD + slot * 2u;
    uint E = pc.E, hc = h * HD, qb = z * 3u * E;
    if (jb >= je) {   // whole workgroup
        for (uint d = tid; d < HD; d += 64u) pc.part.v[slot * HD + d] = 0.0;
        if (tid == 0u) {
            pc.part.v[ml] = -1.0 / 0.0;
            pc.part.v[ml + 1u] = 0.0;
        }
        return;
    }
    uint cur = kv_len - 1u;   // the new token's position (cache row kb + cur)
    for (uint d = tid; d < HD; d += 64u) qs[d] = pc.qkv.v[qb + hc + d] * pc.scale;
    if (cur >= jb && cur < je) {
        // Store this head's slice of the new K/V row; nothing in this dispatch reads it back from
        // the cache (row cur comes from qkv below), so no barrier is needed here.
        uint r = kb + cur;
#ifdef KV_F16
        for (uint i = tid; i < HD / 2u; i += 64u) {
            uint c = hc + 2u * i;
            pc.kc.v[(r * E + c) >> 1] = packHalf2x16(vec2(pc.qkv.v[qb + E + c], pc.qkv.v[qb + E + c + 1u]));
            pc.vc.v[(r * E + c) >> 1] = packHalf2x16(vec2(pc.qkv.v[qb + 2u * E + c], pc.qkv.v[qb + 2u * E + c + 1u]));
        }
#else
        for (uint d = tid; d < HD; d += 64u) {
            pc.kc.v[r * E + hc + d] = floatBitsToUint(pc.qkv.v[qb + E + hc + d]);
            pc.vc.v[r * E + hc + d] = floatBitsToUint(pc.qkv.v[qb + 2u * E + hc + d]);
        }
#endif
    }
    barrier();

    float m = -1.0 / 0.0, l = 0.0;
    float o[2] = float[2](0.0, 0.0);
    for (uint c0 = jb; c0 < je; c0 += 64u) {
        uint j = c0 + tid;
        float s = -1.0 / 0.0;
        if (j == cur) {
            float acc = 0.0;
            for (uint d = 0u; d < HD; d++) acc = fma(qs[d], as_cached(pc.qkv.v[qb + E + hc + d]), acc);
            s = acc;
        } else if (j < je) {
            float acc = 0.0;
            if (pc.wide != 0u) {
#ifdef KV_F16
                uint b = ((kb + j) * E + hc) >> 3;
                for (uint d8 = 0u; d8 < HD / 8u; d8++) {
                    uvec4 u = pc.kc4.v[b + d8];
                    uint d = 8u * d8;
                    acc += dot(vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)),
                               vec4(qs[d], qs[d + 1u], qs[d + 2u], qs[d + 3u]));
                    acc += dot(vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w)),
                               vec4(qs[d + 4u], qs[d + 5u], qs[d + 6u], qs[d + 7u]));
                }
#else
                uint b = ((kb + j) * E + hc) >> 2;
                for (uint d4 = 0u; d4 < HD / 4u; d4++) {
                    vec4 k = uintBitsToFloat(pc.kc4.v[b + d4]);
                    uint d = 4u * d4;
                    acc += dot(k, vec4(qs[d], qs[d + 1u], qs[d + 2u], qs[d + 3u]));
                }
#endif
            } else {
                for (uint d = 0u; d < HD; d++) acc = fma(qs[d], kv_at(pc.kc, kb + j, E, hc + d), acc);
            }
            s = acc;
        }
        float m_new = max(m, wg_max(s));   // finite: key c0 exists
        float alpha = exp(m - m_new);
        float p = j < je ? exp(s - m_new) : 0.0;
        ps[tid] = p;
        l = l * alpha + wg_sum(p);         // its barriers also publish ps
        uint cnt = min(64u, je - c0);
        for (uint i = 0u; i < 2u; i++) {
            uint d = tid + 64u * i;
            if (d < HD) {
                float acc = o[i] * alpha;
                uint last = min(cnt, cur - c0);   // rows before the new one come from the cache
                for (uint jj = 0u; jj < last; jj++) acc = fma(ps[jj], kv_at(pc.vc, kb + c0 + jj, E, hc + d), acc);
                if (last < cnt) acc = fma(ps[last], as_cached(pc.qkv.v[qb + 2u * E + hc + d]), acc);
                o[i] = acc;
            }
        }
        m = m_new;
        barrier();   // ps is rewritten by the next pass
    }
    for (uint i = 0u; i < 2u; i++) {
        uint d = tid + 64u * i;
        if (d < HD) pc.part.v[slot * HD + d] = o[i];
    }
    if (tid == 0u) {
        pc.part.v[ml] = m;
        pc.part.v[ml + 1u] = l;
    }
}
