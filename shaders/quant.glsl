// quant.glsl - reading ggml's block formats (q4_0, q4_1, q5_0, q5_1, q8_0) in a shader.
//
// Blocks are 18, 20, 22, 24 or 34 bytes (tensor.h, cpu/quant.h), so a block starts on a
// 2-byte boundary only. They are read through the plain 4-byte U32 view of common.glsl, which
// needs no 8- or 16-bit storage feature: every field sits at an even byte offset, and a 32-bit
// field at offset o (o even) is one word when o % 4 == 0, else the high half of word o/4 and the
// low half of the next. Only words that hold bytes of the field are read, so nothing past the end
// of the tensor is touched. f16 scales are widened with unpackHalf2x16.
//
// Type codes are gpt2_dtype's (tensor.h): 3 q4_0, 4 q4_1, 5 q5_0, 6 q5_1, 7 q8_0. The functions
// take the code as an argument; the matmul shaders pass a specialization constant, so the driver
// folds the type's offsets and branches away.
//
// A block of 32 weights is read in four "units" of 8: unit u (0..3) is elements 4u..4u+3 ("lo")
// and 16+4u..16+4u+3 ("hi"). For the 4- and 5-bit formats those are the low and high nibbles of
// qs[4u..4u+3], one 32-bit word; for q8_0 the bytes qs[4u..4u+3] and qs[16+4u..16+4u+3].
#ifndef VKG_QUANT_GLSL
#define VKG_QUANT_GLSL

#define QT_Q4_0 3u
#define QT_Q4_1 4u
#define QT_Q5_0 5u
#define QT_Q5_1 6u
#define QT_Q8_0 7u

uint q_block_bytes(uint qt) {
    return qt == QT_Q4_0 ? 18u : qt == QT_Q4_1 ? 20u : qt == QT_Q5_0 ? 22u : qt == QT_Q5_1 ? 24u : 34u;
}

// The 32 bits at byte offset off (even) of p.
uint q_ld32(U32 p, uint off) {
    uint i = off >> 2;
    uint a = p.v[i];
    if ((off & 2u) == 0u) return a;
    return (a >> 16) | (p.v[i + 1u] << 16);
}

// The 16 bits at byte offset off (even) of p.
uint q_ld16(U32 p, uint off) {
    return (p.v[off >> 2] >> ((off & 2u) << 3)) & 0xffffu;
}

// Unit u of block blk (blocks counted from p): lo = elements 4u..4u+3, hi = 16+4u..16+4u+3.
void q_unit(U32 p, uint qt, uint blk, uint u, out vec4 lo, out vec4 hi) {
    uint bo = blk * q_block_bytes(qt);
    if (qt == QT_Q8_0) {
        float d = unpackHalf2x16(q_ld16(p, bo)).x;
        int a = int(q_ld32(p, bo + 2u + 4u * u));
        int b = int(q_ld32(p, bo + 18u + 4u * u));
        lo = vec4(bitfieldExtract(a, 0, 8), bitfieldExtract(a, 8, 8), bitfieldExtract(a, 16, 8),
                  bitfieldExtract(a, 24, 8)) * d;
        hi = vec4(bitfieldExtract(b, 0, 8), bitfieldExtract(b, 8, 8), bitfieldExtract(b, 16, 8),
                  bitfieldExtract(b, 24, 8)) * d;
        return;
    }
    bool has_min = qt == QT_Q4_1 || qt == QT_Q5_1;
    bool five = qt == QT_Q5_0 || qt == QT_Q5_1;
    uint qs_off = qt == QT_Q4_0 ? 2u : qt == QT_Q4_1 ? 4u : qt == QT_Q5_0 ? 6u : 8u;
    uint qs = q_ld32(p, bo + qs_off + 4u * u);
    uvec4 l = uvec4(qs, qs >> 8, qs >> 16, qs >> 24) & 0xfu;
    uvec4 h = uvec4(qs >> 4, qs >> 12, qs >> 20, qs >> 28) & 0xfu;
    if (five) {
        uint qh = q_ld32(p, bo + (has_min ? 4u : 2u));
        uint bl = qh >> (4u * u), bh = qh >> (16u + 4u * u);
        l |= (uvec4(bl, bl >> 1, bl >> 2, bl >> 3) & 1u) << 4;
        h |= (uvec4(bh, bh >> 1, bh >> 2, bh >> 3) & 1u) << 4;
    }
    if (has_min) {
        vec2 dm = unpackHalf2x16(q_ld32(p, bo));   // d, m
        lo = vec4(l) * dm.x + dm.y;
        hi = vec4(h) * dm.x + dm.y;
    } else {
        float d = unpackHalf2x16(q_ld16(p, bo)).x;
        float off = five ? 16.0 : 8.0;
        lo = (vec4(l) - off) * d;
        hi = (vec4(h) - off) * d;
    }
}

// Element j (0..31) of block blk.
float q_elem(U32 p, uint qt, uint blk, uint j) {
    vec4 lo, hi;
    q_unit(p, qt, blk, (j & 15u) >> 2, lo, hi);
    return j < 16u ? lo[j & 3u] : hi[j & 3u];
}

#endif
