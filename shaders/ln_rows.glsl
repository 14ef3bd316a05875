// ln_rows.glsl - the layernorm prologue of the fused layernorm + matvec kernels (matvec.comp and
// matvec_q.comp built with -DLN): the workgroup normalises its tokens' rows of x into shared memory
// before the matvec reads them, so the layernorm needs no dispatch (and no barrier) of its own.
//
// Each workgroup computes every row's mean and variance itself, in two passes as layernorm.comp
// does (the mean, then the mean of squared deviations: exact with large means), from the raw row
// it first copies into xs; then it applies gamma / beta in place. With `emb` set the raw row is not
// read from x but built as the embedding wte[ids[t]] + wpe[pos(t)] (embed.comp's arithmetic, types
// f32 / f16 / block formats by gpt2_dtype code), and the workgroups of column 0 also write it to x
// (the residual stream the rest of the layer adds to).
//
// The including shader declares its workgroup size (local_size_x_id), includes reduce.glsl and
// quant.glsl, and sizes xs with specialization constant 4 (XS4: vec4s, NT rows of cols / 4).
// cols % 4 == 0. Every invocation of the workgroup must call ln_rows (it contains barriers).
#ifndef VKG_LN_ROWS_GLSL
#define VKG_LN_ROWS_GLSL

layout(constant_id = 4) const uint XS4 = 1;
shared vec4 xs[XS4];

// Element i of row `row` of an embedding table of gpt2_dtype `type` with d columns.
float ln_emb_at(U32 p, uint type, uint row, uint i, uint d) {
    if (type >= QT_Q4_0) return q_elem(p, type, row * (d >> 5) + (i >> 5), i & 31u);
    uint idx = row * d + i;
    return type == 1u ? half_at(p, idx) : uintBitsToFloat(p.v[idx]);
}

// The layernorm's parameters and where the raw rows come from.
struct ln_src {
    F32 x;            // raw rows (ldx floats apart), or where embedded rows are written
    F32 g;            // gamma [cols]
    F32 b;            // beta [cols]
    U32 wte;          // emb: token embeddings
    U32 wpe;          // emb: position embeddings
    I32 ids;          // emb: token ids of the step
    StepParams step;  // emb: positions and the step's token count
    uint ldx;         // row stride of x
    uint cols;        // row length (% 4 == 0)
    uint n;           // recorded rows
    uint emb;         // 0: read x; else 1 + wte type + 256 * wpe type (gpt2_dtype codes)
    float eps;        // layernorm epsilon
};

// Normalises rows t0 .. t0 + nt - 1 into xs[(t - t0) * cols / 4 ...]. Ends with a barrier: xs is
// complete for every invocation.
void ln_rows(ln_src s, uint t0, uint nt) {
    uint tid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    uint c4 = s.cols >> 2;
    uint ntok = s.emb != 0u ? step_tokens(s.step, s.n) : s.n;
    for (uint t = 0u; t < nt; t++) {
        uint r = t0 + t, xb = t * c4;
        // Pass 1: the raw row into xs (each invocation its own vec4s) and its sum.
        float sum = 0.0;
        if (s.emb == 0u) {
            for (uint k = tid; k < c4; k += wg) {
                uint i = r * s.ldx + 4u * k;
                vec4 v = vec4(s.x.v[i], s.x.v[i + 1u], s.x.v[i + 2u], s.x.v[i + 3u]);
                xs[xb + k] = v;
                sum += (v.x + v.y) + (v.z + v.w);
            }
        } else if (r < ntok) {
            uint te = (s.emb - 1u) & 255u, tp = (s.emb - 1u) >> 8;
            uint tok = uint(s.ids.v[r]), pos = step_row(s.step, r).y;
            bool store = gl_WorkGroupID.x == 0u;
            for (uint k = tid; k < c4; k += wg) {
                vec4 v;
                for (uint j = 0u; j < 4u; j++)
                    v[j] = ln_emb_at(s.wte, te, tok, 4u * k + j, s.cols) +
                           ln_emb_at(s.wpe, tp, pos, 4u * k + j, s.cols);
                xs[xb + k] = v;
                sum += (v.x + v.y) + (v.z + v.w);
                if (store) {
                    uint i = r * s.ldx + 4u * k;
                    s.x.v[i] = v.x;
                    s.x.v[i + 1u] = v.y;
                    s.x.v[i + 2u] = v.z;
                    s.x.v[i + 3u] = v.w;
                }
            }
        } else {
            // A row past the step's tokens (its id is stale): zeros, normalised to beta, unused.
            for (uint k = tid; k < c4; k += wg) xs[xb + k] = vec4(0.0);
        }
        float mean = wg_sum(sum) / float(s.cols);
        // Pass 2: squared deviations of the invocation's own elements (no barrier needed).
        float q = 0.0;
        for (uint k = tid; k < c4; k += wg) {
            vec4 dv = xs[xb + k] - mean;
            q += dot(dv, dv);
        }
        float inv = inversesqrt(wg_sum(q) / float(s.cols) + s.eps);
        for (uint k = tid; k < c4; k += wg) {
            uint i = 4u * k;
            vec4 gv = vec4(s.g.v[i], s.g.v[i + 1u], s.g.v[i + 2u], s.g.v[i + 3u]);
            vec4 bv = vec4(s.b.v[i], s.b.v[i + 1u], s.b.v[i + 2u], s.b.v[i + 3u]);
            xs[xb + k] = (xs[xb + k] - mean) * inv * gv + bv;
        }
    }
    barrier();   // the matvec reads every invocation's elements of xs
}

#endif
