#version 460
// attn_prefill: causal flash attention of n new tokens (n > 1) over the KV cache.
// Workgroup (x = block of BQ queries, y = head), 128 invocations: 8 lanes per query, each lane
// owning the output dims d = lane + 8i. K and V go through shared memory in tiles of BK keys;
// scores of one tile live in shared memory only (BQ x BK); softmax is online (running max m and
// sum l per query), so the n x (n_past + n) score matrix is never stored.
// Token t sits at position n_past + t and sees keys 0 .. n_past + t. n_past and the step's token
// count are read from the step parameters at run time; the sequence's cache rows start at the
// step's kv_base (its slot). K/V caches [slots * n_ctx][E] are f32 or packed f16 (-DKV_F16). Spec constant 0: head_dim (<= 128).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "kv_load.glsl"

#define BQ 16u    // queries per workgroup
#define BK 32u    // keys per tile
#define LPQ 8u    // lanes per query
#define DMAX 16u  // dims per lane for head_dim 128

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint HD = 64;
const uint KS = HD + 1u;   // shared row stride of K/V tiles (odd: conflict-free score loop)

layout(push_constant) uniform Push {
    F32 out_;
    F32 qkv;
    U32 kc;
    U32 vc;
    StepParams step;
    uint n;
    uint E;
    float scale;
} pc;

shared float Qs[BQ * HD];
shared float KVs[BK * KS];
shared float Ps[BQ * BK];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint q = tid / LPQ, lane = tid % LPQ;
    uint n_eff = step_tokens(pc.step, pc.n);
    uint n_past = pc.step.n_past, kb = pc.step.kv_base;
    uint q0 = gl_WorkGroupID.x * BQ, h = gl_WorkGroupID.y;
    if (q0 >= n_eff) return;   // whole workgroup: no barrier skipped by only some
    uint E = pc.E, E3 = 3u * pc.E, hc = h * HD;
    uint kv_end = n_past + min(q0 + BQ, n_eff);   // keys any query of this block sees
    uint qa = n_past + q0 + q;                      // my query's position

    for (uint idx = tid; idx < BQ * HD; idx += 128u) {
        uint qi = idx / HD, d = idx % HD;
        uint t = q0 + qi;
        Qs[idx] = t < n_eff ? pc.qkv.v[t * E3 + hc + d] * pc.scale : 0.0;
    }

    float m = -1.0 / 0.0, l = 0.0;
    float o[DMAX];
    for (uint i = 0u; i < DMAX; i++) o[i] = 0.0;

    for (uint j0 = 0u; j0 < kv_end; j0 += BK) {
        barrier();   // the previous tile's V and P are no longer read (and Qs is written)
        for (uint idx = tid; idx < BK * HD; idx += 128u) {
            uint jj = idx / HD, d = idx % HD;
            uint j = j0 + jj;
            KVs[jj * KS + d] = j < kv_end ? kv_at(pc.kc, kb + j, E, hc + d) : 0.0;
        }
        barrier();
        float s[BK / LPQ];
        for (uint k = 0u; k < BK / LPQ; k++) {
            uint jj = lane + LPQ * k;
            float acc = 0.0;
            for (uint d = 0u; d < HD; d++) acc = fma(Qs[q * HD + d], KVs[jj * KS + d], acc);
            uint j = j0 + jj;
            s[k] = (j <= qa && j < kv_end) ? acc : -1.0 / 0.0;
            Ps[q * BK + jj] = s[k];
        }
        barrier();
        float mt = -1.0 / 0.0;
        for (uint jj = 0u; jj < BK; jj++) mt = max(mt, Ps[q * BK + jj]);
        float m_new = max(m, mt);      // finite: key 0 is in the first tile and seen by all
        float alpha = exp(m - m_new);
        barrier();   // every lane has read the scores before they become probabilities
        for (uint k = 0u; k < BK / LPQ; k++) Ps[q * BK + lane + LPQ * k] = exp(s[k] - m_new);
        for (uint idx = tid; idx < BK * HD; idx += 128u) {
            uint jj = idx / HD, d = idx % HD;
            uint j = j0 + jj;
            KVs[jj * KS + d] = j < kv_end ? kv_at(pc.vc, kb + j, E, hc + d) : 0.0;
        }
        barrier();
        float ps = 0.0;
        for (uint jj = 0u; jj < BK; jj++) ps += Ps[q * BK + jj];
        l = l * alpha + ps;
        for (uint i = 0u; i < DMAX; i++) {
            uint d = lane + LPQ * i;
            if (d < HD) {
                float acc = o[i] * alpha;
                for (uint jj = 0u; jj < BK; jj++) acc = fma(Ps[q * BK + jj], KVs[jj * KS + d], acc);
                o[i] = acc;
            }
        }
        m = m_new;
    }

    uint t = q0 + q;
    if (t < n_eff) {
        float inv = 1.0 / l;
        for (uint i = 0u; i < DMAX; i++) {
            uint d = lane + LPQ * i;
            if (d < HD) pc.out_.v[t * E + hc + d] = o[i] * inv;
        }
    }
}
