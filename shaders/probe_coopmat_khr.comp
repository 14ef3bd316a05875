#version 460
// Configure-time probe (shaders/meson.build): compiles and validates only where glslang and
// spirv-val support GL_KHR_cooperative_matrix; matmul_coopmat_khr is built only then. Not embedded.
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer Out { float o[]; };
shared float16_t s[16 * 16];

void main() {
    s[gl_LocalInvocationID.x] = float16_t(1.0);
    barrier();
    coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a;
    coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> b;
    coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> c =
        coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);
    coopMatLoad(a, s, 0u, 16u, gl_CooperativeMatrixLayoutRowMajor);
    coopMatLoad(b, s, 0u, 16u, gl_CooperativeMatrixLayoutColumnMajor);
    c = coopMatMulAdd(a, b, c);
    coopMatStore(c, o, 0u, 16u, gl_CooperativeMatrixLayoutRowMajor);
}
