// kv_load.glsl - element c of cache row j (row stride E), f32 or packed f16 (-DKV_F16).
#ifndef VKG_KV_LOAD_GLSL
#define VKG_KV_LOAD_GLSL
float kv_at(U32 cache, uint j, uint E, uint c) {
#ifdef KV_F16
    return half_at(cache, j * E + c);
#else
    return uintBitsToFloat(cache.v[j * E + c]);
#endif
}
#endif
