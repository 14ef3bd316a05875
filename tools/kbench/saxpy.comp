#version 460
// saxpy for `vkgpt2 kbench`: y[i] = a * x[i] + y[i] for i < n (grid-stride loop).
// Push constants (the kbench ABI): the buffers' addresses in --buffer order, then the --push words.
//   vkgpt2 kbench tools/kbench/saxpy.comp --grid 1024 --buffer 4M:rand --buffer 4M:1.0 \
//       --push 1048576 --push 2.0f --bytes 12582912 --flops 2097152
#extension GL_EXT_buffer_reference : require

layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };

layout(push_constant) uniform Push {
    F32 x;      // --buffer 0
    F32 y;      // --buffer 1
    uint n;     // --push 0
    float a;    // --push 1
} pc;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) pc.y.v[i] = pc.a * pc.x.v[i] + pc.y.v[i];
}
