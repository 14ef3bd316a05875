/* test_matmul.c - cpu_matmul (every ISA, f32/f16 weights, epilogues, strides, threading) and the
 * dot/axpy primitives, against float64 references. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"
#include "ref64.h"
#include "test_isa.h"
#include "test_rng.h"

typedef struct wmat {
    gpt2_tensor t;
    float *wf; /* the weights as the kernel sees them (f16 already rounded), for the reference */
} wmat;

static wmat make_w(int in, int out, gpt2_dtype type)
{
    wmat m;
    size_t n = (size_t)in * out;
    m.wf = malloc(n * sizeof(float));
    m.t.type = type;
    m.t.ne[0] = in;
    m.t.ne[1] = out;
    m.t.nbytes = n * gpt2_dtype_size(type);
    m.t.data = malloc(m.t.nbytes);
    for (size_t i = 0; i < n; i++) {
        float v = rnd(-1, 1);
        if (type == GPT2_F16) {
            uint16_t h = gpt2_f32_to_f16(v);
            ((uint16_t *)m.t.data)[i] = h;
            v = gpt2_f16_to_f32(h);
        } else {
            ((float *)m.t.data)[i] = v;
        }
        m.wf[i] = v;
    }
    return m;
}

static void free_w(wmat *m)
{
    free(m->wf);
    free(m->t.data);
}

/* Runs one matmul on a fresh random problem and checks it against the float64 reference; also
 * checks it is bitwise equal to the serial scalar... no: returns y for cross-ISA comparison. */
static void check_one(int n, int in, int out, gpt2_dtype type, int epi, int form, cpu_pool *pool,
                      uint64_t seed)
{
    rng_seed(seed);
    const int ldx = in + 3, ldy = out + 5;
    wmat w = make_w(in, out, type);
    float *x = malloc((size_t)n * ldx * sizeof(float));
    float *bias = malloc((size_t)out * sizeof(float));
    float *y0 = malloc((size_t)n * ldy * sizeof(float));
    float *y = malloc((size_t)n * ldy * sizeof(float));
    float *ys = malloc((size_t)n * ldy * sizeof(float));
    for (int i = 0; i < n * ldx; i++) x[i] = rnd(-1, 1);
    for (int o = 0; o < out; o++) bias[o] = rnd(-0.5f, 0.5f);
    for (int i = 0; i < n * ldy; i++) y0[i] = rnd(-2, 2);

    /* the float64 reference; its scale (the sum of |terms|) passes the gelu unchanged */
    double *ref = malloc((size_t)n * ldy * sizeof *ref), *scale = malloc((size_t)n * ldy * sizeof *scale);
    cr_assert(ref && scale);
    ref64_matmul(ref, scale, x, ldx, w.wf, bias, y0, ldy, n, out, in, epi, form,
                 (ref64_gelu_scale){1.0, 0.0});
    cpu_isa isas[4];
    int ni = isa_list(isas);
    for (int k = 0; k < ni; k++) {
        cpu_isa_force(isas[k]);
        memcpy(y, y0, (size_t)n * ldy * sizeof(float));
        cpu_matmul(y, ldy, x, ldx, &w.t, bias, n, epi, form, pool);
        if (k == 0) memcpy(ys, y, (size_t)n * ldy * sizeof(float));
        for (int t = 0; t < n; t++) {
            for (int o = 0; o < ldy; o++) {
                const size_t yi = (size_t)t * ldy + o;
                if (o >= out) { /* padding between rows must be untouched */
                    cr_assert(y[yi] == y0[yi], "padding overwritten at t %d col %d", t, o);
                    continue;
                }
                const double s = ref[yi], sa = scale[yi];
                const double tol = 1e-5 * (sa + fabs(s)) + 1e-30;
                const double err = fabs((double)y[yi] - s);
                if (!(err <= tol))
                    cr_assert(0,
                              "%s %s n=%d in=%d out=%d epi=%d form=%d t=%d o=%d: got %.9g want "
                              "%.9g (tol %.3g)",
                              cpu_isa_name(isas[k]), gpt2_dtype_name(type), n, in, out, epi, form, t, o,
                              y[yi], s, tol);
                const double errs = fabs((double)y[yi] - ys[yi]);
                if (!(errs <= tol))
                    cr_assert(0, "%s vs scalar: n=%d in=%d out=%d t=%d o=%d: %.9g vs %.9g",
                              cpu_isa_name(isas[k]), n, in, out, t, o, y[yi], ys[yi]);
            }
        }
        /* threading never changes the arithmetic: the serial result is bitwise the same */
        if (pool) {
            float *y2 = malloc((size_t)n * ldy * sizeof(float));
            memcpy(y2, y0, (size_t)n * ldy * sizeof(float));
            cpu_matmul(y2, ldy, x, ldx, &w.t, bias, n, epi, form, NULL);
            cr_assert(memcmp(y, y2, (size_t)n * ldy * sizeof(float)) == 0,
                      "%s pool result differs from serial (n=%d in=%d out=%d)", cpu_isa_name(isas[k]), n, in,
                      out);
            free(y2);
        }
    }
    cpu_isa_force(cpu_isa_detect());
    free_w(&w);
    free(x);
    free(bias);
    free(y0);
    free(y);
    free(ys);
    free(ref);
    free(scale);
}

Test(matmul, shapes_f32_f16)
{
    static const int ns[] = {1, 3, 7, 33}, ins[] = {1, 5, 17, 64, 769}, outs[] = {1, 3, 17, 130};
    uint64_t seed = 1;
    for (int ty = 0; ty < 2; ty++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof ins / sizeof *ins; b++)
                for (size_t c = 0; c < sizeof outs / sizeof *outs; c++)
                    check_one(ns[a], ins[b], outs[c], ty ? GPT2_F16 : GPT2_F32, CPU_EPI_NONE, 0, NULL,
                              seed++);
}

Test(matmul, epilogues)
{
    static const int epis[] = {
        CPU_EPI_BIAS,
        CPU_EPI_GELU,
        CPU_EPI_RESIDUAL,
        CPU_EPI_BIAS | CPU_EPI_GELU,
        CPU_EPI_BIAS | CPU_EPI_RESIDUAL,
        CPU_EPI_GELU | CPU_EPI_RESIDUAL,
        CPU_EPI_BIAS | CPU_EPI_GELU | CPU_EPI_RESIDUAL,
    };
    uint64_t seed = 1000;
    for (int ty = 0; ty < 2; ty++)
        for (size_t e = 0; e < sizeof epis / sizeof *epis; e++)
            for (int form = 0; form < 2; form++) {
                if (!(epis[e] & CPU_EPI_GELU) && form) continue;
                check_one(1, 17, 33, ty ? GPT2_F16 : GPT2_F32, epis[e], form, NULL, seed++);
                check_one(7, 65, 19, ty ? GPT2_F16 : GPT2_F32, epis[e], form, NULL, seed++);
            }
}

Test(matmul, threaded)
{
    cpu_pool *pool = cpu_pool_create(3);
    cr_assert(pool);
    uint64_t seed = 5000;
    for (int ty = 0; ty < 2; ty++) {
        gpt2_dtype t = ty ? GPT2_F16 : GPT2_F32;
        check_one(1, 768, 1000, t, CPU_EPI_BIAS, 0, pool, seed++);
        check_one(5, 769, 301, t, CPU_EPI_BIAS | CPU_EPI_GELU | CPU_EPI_RESIDUAL, 0, pool, seed++);
        check_one(33, 33, 257, t, CPU_EPI_RESIDUAL, 1, pool, seed++);
        check_one(3, 5, 3, t, CPU_EPI_NONE, 0, pool, seed++); /* too small to split */
    }
    cpu_pool_destroy(pool);
}

Test(matmul, dot_axpy)
{
    static const int lens[] = {0, 1, 5, 7, 8, 15, 16, 17, 33, 64, 100, 769};
    cpu_isa isas[4];
    int ni = isa_list(isas);
    rng_seed(77);
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const int n = lens[li];
        float a[800], b[800], hf[800], y0[800], y[800];
        uint16_t h[800];
        for (int i = 0; i < n; i++) {
            a[i] = rnd(-1, 1);
            b[i] = rnd(-1, 1);
            h[i] = gpt2_f32_to_f16(rnd(-1, 1));
            hf[i] = gpt2_f16_to_f32(h[i]);
            y0[i] = rnd(-1, 1);
        }
        const float alpha = rnd(-2, 2);
        double r32 = 0, r16 = 0, s32 = 0, s16 = 0;
        for (int i = 0; i < n; i++) {
            r32 += (double)a[i] * b[i];
            s32 += fabs((double)a[i] * b[i]);
            r16 += (double)a[i] * hf[i];
            s16 += fabs((double)a[i] * hf[i]);
        }
        for (int k = 0; k < ni; k++) {
            cpu_isa_force(isas[k]);
            const char *nm = cpu_isa_name(isas[k]);
            cr_assert(fabs(cpu_dot_f32(a, b, n) - r32) <= 1e-5 * s32 + 1e-30, "%s dot32 n=%d", nm, n);
            cr_assert(fabs(cpu_dot_f16(a, h, n) - r16) <= 1e-5 * s16 + 1e-30, "%s dot16 n=%d", nm, n);
            for (int f16 = 0; f16 < 2; f16++) {
                memcpy(y, y0, sizeof y);
                if (f16)
                    cpu_axpy_f16(y, alpha, h, n);
                else
                    cpu_axpy_f32(y, alpha, b, n);
                for (int i = 0; i < n; i++) {
                    double xv = f16 ? hf[i] : b[i];
                    double want = y0[i] + (double)alpha * xv;
                    double tol = 1e-6 * (fabs(y0[i]) + fabs(alpha * xv)) + 1e-30;
                    if (!(fabs(y[i] - want) <= tol))
                        cr_assert(0, "%s axpy f16=%d n=%d i=%d: %.9g vs %.9g", nm, f16, n, i, y[i], want);
                }
                cr_assert(memcmp(y + n, y0 + n, sizeof(float) * (size_t)(800 - n)) == 0,
                          "%s axpy wrote past n=%d", nm, n);
            }
        }
    }
    cpu_isa_force(cpu_isa_detect());
}

Test(isa, names_and_force)
{
    cr_assert(cpu_isa_supported(CPU_ISA_SCALAR));
    cr_assert(cpu_isa_supported(cpu_isa_detect()));
    cpu_isa_force(CPU_ISA_SCALAR);
    cr_assert_eq(cpu_isa_active(), CPU_ISA_SCALAR);
    cpu_isa_force(cpu_isa_detect());
    cr_assert_eq(cpu_isa_active(), cpu_isa_detect());
    cr_assert_str_eq(cpu_isa_name(CPU_ISA_AVX2), "avx2");
    cr_log_info("detected ISA: %s", cpu_isa_name(cpu_isa_detect()));
}
