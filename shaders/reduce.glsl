// reduce.glsl - workgroup-wide sum and max of one float per invocation.
//
// The including shader declares its workgroup size with local_size_x_id (a power of two for the
// shared-memory tree). With USE_SUBGROUP (devices with subgroup arithmetic) each subgroup reduces
// with one instruction and the per-subgroup results are combined in shared memory; otherwise a
// shared-memory tree does it all. Every invocation of the workgroup must call these (they contain
// barriers) and every invocation gets the result.
#ifndef VKG_REDUCE_GLSL
#define VKG_REDUCE_GLSL

#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

shared float red_buf[gl_WorkGroupSize.x];

float wg_sum(float v) {
#ifdef USE_SUBGROUP
    v = subgroupAdd(v);
    if (subgroupElect()) red_buf[gl_SubgroupID] = v;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) r += red_buf[i];
    barrier();
    return r;
#else
    uint t = gl_LocalInvocationID.x;
    red_buf[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x >> 1; s > 0u; s >>= 1) {
        if (t < s) red_buf[t] += red_buf[t + s];
        barrier();
    }
    float r = red_buf[0];
    barrier();
    return r;
#endif
}

float wg_max(float v) {
#ifdef USE_SUBGROUP
    v = subgroupMax(v);
    if (subgroupElect()) red_buf[gl_SubgroupID] = v;
    barrier();
    float r = red_buf[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++) r = max(r, red_buf[i]);
    barrier();
    return r;
#else
    uint t = gl_LocalInvocationID.x;
    red_buf[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x >> 1; s > 0u; s >>= 1) {
        if (t < s) red_buf[t] = max(red_buf[t], red_buf[t + s]);
        barrier();
    }
    float r = red_buf[0];
    barrier();
    return r;
#endif
}

#endif
