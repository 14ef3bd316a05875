#version 460
// chain: the link between two decode steps recorded back to back in one submit (several tokens
// per submit). After step k has drawn its token into hist[base + k] (the id step k + 1 embeds),
// one invocation decides whether step k + 1 runs, live[k + 1] = 1 (conditional rendering reads
// it), or does no work: the pick was the stop id (end of sequence) or k + 1 reached the step
// limit (the tokens still wanted, the context end). It also advances the position on the device:
// step k + 1's parameters are step k's with n_past + 1. Runs only inside step k's live block.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 1) in;

// The chain's settings (vk_chain_cfg in vk_chain.h).
layout(buffer_reference, std430, buffer_reference_align = 8) buffer ChainCfg {
    uint limit;     // steps that may run (1 .. recorded K)
    uint stop;      // the id that ends the chain (0xffffffff: none)
};

layout(push_constant) uniform Push {
    U32 hist;        // recent ids; step k's pick at hist.v[base + k]
    StepParams cur;  // step k's parameters
    StepParams next; // step k + 1's, written here
    U32 live;        // live[k + 1] written here
    ChainCfg cfg;
    uint base;
    uint k;
} pc;

void main() {
    uint pick = pc.hist.v[pc.base + pc.k];
    bool go = pc.k + 1u < pc.cfg.limit && (pc.cfg.stop == 0xffffffffu || pick != pc.cfg.stop);
    pc.live.v[pc.k + 1u] = go ? 1u : 0u;
    pc.next.n_past = pc.cur.n_past + 1u;
    pc.next.n = 1u;
    pc.next.seed = pc.cur.seed;
    pc.next.kv_base = pc.cur.kv_base;
}
