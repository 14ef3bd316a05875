/* test_embed.c - cpu_embed with f32 and f16 tables, odd widths and a nonzero start position. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "cpu/cpu_ops.h"
#include "test_rng.h"

static gpt2_tensor make_table(int d, int rows, gpt2_dtype type)
{
    gpt2_tensor t = {.type = type, .ne = {d, rows}};
    t.nbytes = (size_t)d * rows * gpt2_dtype_size(type);
    t.data = malloc(t.nbytes);
    for (size_t i = 0; i < (size_t)d * rows; i++) {
        float v = rnd(-1, 1);
        if (type == GPT2_F16)
            ((uint16_t *)t.data)[i] = gpt2_f32_to_f16(v);
        else
            ((float *)t.data)[i] = v;
    }
    return t;
}

Test(embed, shapes_and_types)
{
    static const int ns[] = {1, 3, 7, 33}, ds[] = {1, 5, 17, 769};
    rng_seed(11);
    const int vocab = 97, n_pos = 64;
    for (int tt = 0; tt < 4; tt++) {
        gpt2_dtype te = tt & 1 ? GPT2_F16 : GPT2_F32, pe = tt & 2 ? GPT2_F16 : GPT2_F32;
        for (int c = 0; c < 4; c++) {
            const int d = ds[c];
            gpt2_tensor wte = make_table(d, vocab, te), wpe = make_table(d, n_pos, pe);
            for (int a = 0; a < 4; a++) {
                const int n = ns[a], pos0 = a == 3 ? 0 : 5 * a;
                int32_t ids[33];
                for (int t = 0; t < n; t++) ids[t] = (int32_t)(rng_unif() * vocab);
                ids[0] = vocab - 1;
                float *x = malloc((size_t)n * d * sizeof(float));
                cpu_embed(x, &wte, &wpe, ids, n, pos0);
                for (int t = 0; t < n; t++)
                    for (int i = 0; i < d; i++) {
                        double a1 = gpt2_load(
                            (const char *)wte.data + (size_t)ids[t] * d * gpt2_dtype_size(te), te, i);
                        double b1 = gpt2_load(
                            (const char *)wpe.data + (size_t)(pos0 + t) * d * gpt2_dtype_size(pe), pe, i);
                        double want = a1 + b1, got = x[(size_t)t * d + i];
                        if (!(fabs(got - want) <= 1e-7 * (fabs(a1) + fabs(b1))))
                            cr_assert(0, "te=%d pe=%d d=%d n=%d t=%d i=%d: %.9g vs %.9g", te, pe, d, n, t, i,
                                      got, want);
                    }
                free(x);
            }
            free(wte.data);
            free(wpe.data);
        }
    }
}
