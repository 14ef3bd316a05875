// common.glsl - shared declarations of the vkgpt2 compute shaders.
//
// Every tensor is reached through a device address (GL_EXT_buffer_reference) passed in push
// constants; there are no descriptor sets. f16 data (weights, KV caches) is read as packed 32-bit
// words and widened with unpackHalf2x16, so no 16-bit storage feature is needed. Accumulation is
// always f32.
#ifndef VKG_COMMON_GLSL
#define VKG_COMMON_GLSL

#extension GL_EXT_buffer_reference : require

// Scalar views (4-byte aligned: any f32 / packed-f16 address the host hands over).
layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer U32 { uint v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer I32 { int v[]; };
// Wide views (16-byte aligned; the host picks variants using them only for aligned addresses).
layout(buffer_reference, std430, buffer_reference_align = 16) buffer F32x4 { vec4 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer U32x4 { uvec4 v[]; };
// The per-step parameters (vk_step_params in vk_ops.h), written by the host before each submit.
// A step feeds either one sequence (token t at position n_past + t, its cache rows starting at row
// kv_base) or, in a batched decode step (kv_base == 0xffffffff), one token of a different sequence
// per row (row t at rows[t] = (first cache row of its slot, position)).
layout(buffer_reference, std430, buffer_reference_align = 16) buffer StepParams {
    uint n_past;
    uint n;
    uint seed;
    uint kv_base;
    uvec2 rows[];
};

// (first cache row of the sequence, position) of token / row t of this step.
uvec2 step_row(StepParams sp, uint t) {
    return sp.kv_base == 0xffffffffu ? sp.rows[t] : uvec2(sp.kv_base, sp.n_past + t);
}

// Tokens of this step: the recorded n, or fewer when the step says so (step.n == 0: all of them).
uint step_tokens(StepParams sp, uint recorded_n) {
    uint sn = sp.n;
    return (sn == 0u || sn > recorded_n) ? recorded_n : sn;
}

// Element i of a packed f16 array.
float half_at(U32 p, uint i) {
    vec2 h = unpackHalf2x16(p.v[i >> 1]);
    return (i & 1u) == 0u ? h.x : h.y;
}

// GELU. form 0: tanh approximation (GPT-2's "gelu_new"); form 1: exact, with erf.
// tanh is written through exp with a clamped argument: some drivers return NaN from tanh() of large
// arguments, and |u| > 10 already gives +-1 to f32 precision.
float gelu_tanh(float x) {
    const float k0 = 0.7978845608028654;   // sqrt(2 / pi)
    const float k1 = 0.044715;
    float u = clamp(k0 * (x + k1 * x * x * x), -10.0, 10.0);
    float e = exp(2.0 * u);
    float th = (e - 1.0) / (e + 1.0);
    return 0.5 * x * (1.0 + th);
}

// erfc(z) for z >= 0 with relative error about 1e-7 (Chebyshev-fitted exponent, Numerical Recipes'
// erfcc formula), good where 1 - erf(z) is tiny.
float erfc_pos(float z) {
    float t = 1.0 / (1.0 + 0.5 * z);
    float p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
              t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
              t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-z * z + p);
}

float gelu_erf(float x) {
    float z = abs(x) * 0.7071067811865476;   // |x| / sqrt(2)
    float c = erfc_pos(z);                   // 1 - erf(|x|/sqrt 2)
    float one_plus_erf = x >= 0.0 ? 2.0 - c : c;
    return 0.5 * x * one_plus_erf;
}

float gelu(float x, uint form) { return form == 0u ? gelu_tanh(x) : gelu_erf(x); }

// Matmul epilogue flags: the C side's own definitions (core/epilogue.h), as uints.
#include "../core/epilogue.h"
#define EPI_BIAS uint(GPT2_EPI_BIAS)
#define EPI_GELU uint(GPT2_EPI_GELU)
#define EPI_RESIDUAL uint(GPT2_EPI_RESIDUAL)

#endif
