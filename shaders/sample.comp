#version 460
// sample: picks the next token from a row of logits on the device, so only its id (4 bytes) goes
// back to the host. The GPU twin of core/sampler.c for temp > 0 and 1 <= top_k <= CAND:
//   1. top-k: a radix select over the logits' order-preserving bit patterns (4 passes of 8 bits,
//      256-bin histograms) finds the k-th largest value; the candidates above it, plus the
//      lowest-indexed ties at it, are gathered (exactly k);
//   2. they are sorted by (value desc, index asc) with a bitonic sort in shared memory;
//   3. softmax at temperature temp, the top-p prefix, and a draw with the counter-based generator
//      of gpt2_rng_uniform (same 64-bit mixing: the CPU's uniform number for a seed and step, to
//      24 bits).
// One workgroup of CAND invocations (spec constant 0; a power of two) per row of logits (grid y =
// rows): row r draws from x[r * n ..] with the r-th SampleParams (32 bytes each) into out[r].
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

// Written by the host before each submit (vk_sample_params in vk_ops.h).
layout(buffer_reference, std430, buffer_reference_align = 16) buffer SampleParams {
    float temp;     // > 0
    uint top_k;     // 1 .. CAND
    float top_p;    // (0, 1]
    uint step;      // index of the draw
    uint seed_lo;   // 64-bit seed
    uint seed_hi;
    uint pad0, pad1;
};

layout(push_constant) uniform Push {
    U32 out_idx;        // the chosen id
    F32 x;              // logits [n]
    SampleParams sp;    // settings of this draw
    uint n;             // vocabulary size
} pc;

const uint CAND = gl_WorkGroupSize.x;

shared uint hist[256];
shared uint sel_digit, sel_rem, n_cand;
shared uint tie_base[CAND];
shared float cv[CAND];
shared uint ci[CAND];

// Order-preserving key of a float (larger float, larger key); NaN ranks lowest, like -inf.
uint key_of(float v) {
    if (v != v) return 0u;
    uint b = floatBitsToUint(v);
    return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}

uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
    return z ^ (z >> 31);
}

// gpt2_rng_uniform(seed, step) to 24 bits (no float64 needed): the same 64-bit draw, its top
// 24 bits as a float in [0, 1).
float uniform01(uint64_t seed, uint64_t step) {
    uint64_t z = mix64(seed + 0x9e3779b97f4a7c15UL * (step + 1UL));
    z = mix64(z ^ 0xd1b54a32d192ed03UL);
    return float(uint(z >> 40)) * (1.0 / 16777216.0);
}

// a comes before b: larger value, or equal with the lower index.
bool before(float av, uint ai, float bv, uint bi) { return av > bv || (av == bv && ai < bi); }

void main() {
    uint t = gl_LocalInvocationID.x, n = pc.n, row = gl_WorkGroupID.y;
    SampleParams sp = SampleParams(uint64_t(pc.sp) + 32UL * uint64_t(row));
    F32 X = F32(uint64_t(pc.x) + 4UL * uint64_t(n) * uint64_t(row));
    uint k = min(max(sp.top_k, 1u), min(CAND, n));

    // ---- 1. radix select of the k-th largest key ----
    uint prefix = 0u, mask = 0u, rem = k;
    for (int pass = 3; pass >= 0; pass--) {
        uint shift = uint(pass) * 8u;
        hist[t & 255u] = 0u;
        if (CAND < 256u) for (uint b = t + CAND; b < 256u; b += CAND) hist[b] = 0u;
        barrier();
        for (uint i = t; i < n; i += CAND) {
            uint key = key_of(X.v[i]);
            if ((key & mask) == prefix) atomicAdd(hist[(key >> shift) & 255u], 1u);
        }
        barrier();
        if (t == 0u) {
            uint cum = 0u, b = 255u;
            for (;; b--) {
                if (cum + hist[b] >= rem || b == 0u) break;
                cum += hist[b];
            }
            sel_digit = b;
            sel_rem = rem - cum;   // how many of this bin are still wanted
        }
        barrier();
        prefix |= sel_digit << shift;
        mask |= 255u << shift;
        rem = sel_rem;
        barrier();
    }
    // prefix: key of the k-th largest; rem: how many ties at it to take (lowest indices first).

    // ---- gather: everything above the threshold, then the first `rem` ties in index order ----
    if (t == 0u) n_cand = 0u;
    cv[t] = -1.0 / 0.0;
    ci[t] = 0xffffffffu;
    uint chunk = (n + CAND - 1u) / CAND, lo = min(t * chunk, n), hi = min(lo + chunk, n), ties = 0u;
    for (uint i = lo; i < hi; i++) ties += key_of(X.v[i]) == prefix ? 1u : 0u;
    tie_base[t] = ties;
    barrier();
    if (t == 0u) {
        uint run = 0u;
        for (uint j = 0u; j < CAND; j++) { uint c = tie_base[j]; tie_base[j] = run; run += c; }
    }
    barrier();
    uint rank = tie_base[t];
    for (uint i = lo; i < hi; i++) {
        float v = X.v[i];
        uint key = key_of(v);
        bool take = key > prefix;
        if (key == prefix) { take = rank < rem; rank++; }
        if (take) {
            uint slot = atomicAdd(n_cand, 1u);
            if (slot < CAND) { cv[slot] = v; ci[slot] = i; }
        }
    }
    barrier();

    // ---- 2. bitonic sort of the CAND slots by (value desc, index asc) ----
    for (uint size = 2u; size <= CAND; size <<= 1) {
        for (uint stride = size >> 1; stride > 0u; stride >>= 1) {
            uint j = t ^ stride;
            if (j > t) {
                bool up = (t & size) == 0u;   // this half sorts "before" first
                float av = cv[t], bv = cv[j];
                uint ai = ci[t], bi = ci[j];
                if (before(bv, bi, av, ai) == up) { cv[t] = bv; ci[t] = bi; cv[j] = av; ci[j] = ai; }
            }
            barrier();
        }
    }

    // ---- 3. softmax, top-p, draw (k <= CAND values: one invocation is enough) ----
    if (t == 0u) {
        float inv_t = 1.0 / sp.temp, top = cv[0], sum = 0.0;
        for (uint i = 0u; i < k; i++) { cv[i] = exp((cv[i] - top) * inv_t); sum += cv[i]; }
        uint keep = k;
        if (sp.top_p < 1.0) {   // top_p <= 0 keeps only the most likely candidate
            float acc = 0.0;
            for (uint i = 0u; i < k; i++) {
                acc += cv[i] / sum;
                if (acc >= sp.top_p) { keep = i + 1u; break; }
            }
        }
        float mass = 0.0;
        for (uint i = 0u; i < keep; i++) mass += cv[i];
        uint64_t seed = (uint64_t(sp.seed_hi) << 32) | uint64_t(sp.seed_lo);
        float u = uniform01(seed, uint64_t(sp.step)) * mass, acc = 0.0;
        uint pick = ci[keep - 1u];
        for (uint i = 0u; i < keep; i++) {
            acc += cv[i];
            if (u < acc) { pick = ci[i]; break; }
        }
        pc.out_idx.v[row] = pick;
    }
}
