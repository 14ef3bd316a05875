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
// -DFUSED: no attn_reduce dispatch. Splits past the row's keys do nothing; when one split holds every
// key its workgroup writes the normalised result straight to out; otherwise each live split writes
// its partial and counts itself in the head's counter (scratch after the (m, l) pairs, one uint per
// global head, zero before the dispatch), and the workgroup that counts last combines the partials
// (attn_reduce.comp's arithmetic over the live splits) and sets the counter back to zero. Needs the
// Vulkan memory model with device scope: the partials are read through devicecoherent references,
// and the counter's atomic add is a device-scope release (the partials written before it) and
// acquire (the other workgroups' partials read after it).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "kv_load.glsl"
#ifdef FUSED
#extension GL_KHR_memory_scope_semantics : require
layout(buffer_reference, std430, buffer_reference_align = 4) devicecoherent buffer F32D { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) devicecoherent buffer U32D { uint v[]; };
#define PART_T F32D
#define CNT_T U32D
#else
#define PART_T F32
#define CNT_T U32
#endif

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint HD = 64;
#include "reduce.glsl"

layout(push_constant) uniform Push {
    PART_T part;
    F32 qkv;
    U32 kc;
    U32 vc;
    StepParams step;
    U32x4 kc4;   // the same address as kc, read 16 bytes at a time when wide != 0
    F32 out_;    // FUSED: the result [rows][E] (unused otherwise)
    CNT_T cnt;   // FUSED: the per-head counters (in scratch; unused otherwise)
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
#ifdef FUSED
    uint live = (kv_len + pc.chunk - 1u) / pc.chunk;   // splits that hold keys of this row
    if (split >= live) return;   // whole workgroup: nothing to attend, nothing to combine
#endif
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
#ifdef FUSED
    uint hh = z * gl_NumWorkGroups.y + h;   // global head: out[hh * HD + d], counter hh
    if (live == 1u) {
        // One split: the result is this workgroup's, normalised as attn_reduce would (e^0 = 1).
        float inv = 1.0 / l;
        for (uint i = 0u; i < 2u; i++) {
            uint d = tid + 64u * i;
            if (d < HD) pc.out_.v[hh * HD + d] = o[i] * inv;
        }
        return;
    }
#endif
    for (uint i = 0u; i < 2u; i++) {
        uint d = tid + 64u * i;
        if (d < HD) pc.part.v[slot * HD + d] = o[i];
    }
    if (tid == 0u) {
        pc.part.v[ml] = m;
        pc.part.v[ml + 1u] = l;
    }
#ifdef FUSED
    // Every invocation's partial writes are complete and available at device scope before
    // invocation 0 counts the split (the atomic's release then orders them for the reader).
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer,
                   gl_SemanticsAcquireRelease);
    if (tid == 0u) {
        uint done = atomicAdd(pc.cnt.v[hh], 1u, gl_ScopeDevice, gl_StorageSemanticsBuffer,
                              gl_SemanticsAcquireRelease);
        ps[0] = done == live - 1u ? 1.0 : 0.0;
    }
    // Publishes the verdict in ps[0], and extends invocation 0's acquire to the workgroup: the
    // other splits' partials are visible to every invocation that reads them below.
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
    if (ps[0] == 0.0) return;   // whole workgroup: another split combines
    uint ns = pc.n_splits;
    uint mlb = pc.n_head * ns * HD + hh * ns * 2u;
    float M = -1.0 / 0.0;
    for (uint s = 0u; s < live; s++) M = max(M, pc.part.v[mlb + 2u * s]);
    float L = 0.0;
    for (uint s = 0u; s < live; s++) L += pc.part.v[mlb + 2u * s + 1u] * exp(pc.part.v[mlb + 2u * s] - M);
    float inv = 1.0 / L;
    for (uint d = tid; d < HD; d += 64u) {
        float acc = 0.0;
        for (uint s = 0u; s < live; s++)
            acc += pc.part.v[(hh * ns + s) * HD + d] * exp(pc.part.v[mlb + 2u * s] - M);
        pc.out_.v[hh * HD + d] = acc * inv;
    }
    // Every split has counted (this one last): the counter is free for the next dispatch.
    if (tid == 0u) pc.cnt.v[hh] = 0u;
#endif
}
