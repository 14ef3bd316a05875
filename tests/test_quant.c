/* test_quant.c - ggml block formats: byte layouts against hand-computed blocks, quantize/dequantize
 * round trips within each format's error bound, the integer dot products (every ISA) and
 * cpu_matmul / cpu_embed on quantized weights against float64 references. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"
#include "cpu/quant.h"
#include "test_isa.h"
#include "test_rng.h"

static const gpt2_dtype QT[] = {GPT2_Q4_0, GPT2_Q4_1, GPT2_Q5_0, GPT2_Q5_1, GPT2_Q8_0};
#define NQT 5

/* Quantizes x, compares the bytes with want, and checks the dequantized values equal deq. */
static void check_block(gpt2_dtype t, const float *x, const unsigned char *want, size_t nbytes,
                        const float *deq)
{
    unsigned char got[64];
    cr_assert_eq(gpt2_row_bytes(t, 32 * (nbytes / gpt2_dtype_block_bytes(t))), nbytes);
    memset(got, 0xAA, sizeof got);
    gpt2_quantize_row(t, x, got, 32 * (nbytes / gpt2_dtype_block_bytes(t)));
    for (size_t i = 0; i < nbytes; i++)
        cr_assert_eq(got[i], want[i], "%s: byte %zu is 0x%02x, expected 0x%02x", gpt2_dtype_name(t), i,
                     got[i], want[i]);
    cr_assert_eq(got[nbytes], 0xAA, "%s wrote past its block", gpt2_dtype_name(t));
    if (deq) {
        float y[64];
        gpt2_dequantize_row(t, want, y, 32 * (nbytes / gpt2_dtype_block_bytes(t)));
        for (size_t j = 0; j < 32 * (nbytes / gpt2_dtype_block_bytes(t)); j++) {
            cr_assert_eq(y[j], deq[j], "%s: element %zu dequantizes to %g, expected %g", gpt2_dtype_name(t),
                         j, y[j], deq[j]);
            cr_assert_eq(gpt2_load_any(want, t, j), deq[j]);
        }
    }
}

/* Bytes computed by hand (and cross-checked with an independent script) from ggml's layouts. */
Test(quant, layout_q8_0)
{
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 10);
    x[0] = -127.0f;
    x[5] = 2.5f; /* roundf: half away from zero */
    x[6] = -2.5f;
    static const unsigned char want[34] = {
        0x00, 0x3c, 0x81, 0xf7, 0xf8, 0xf9, 0xfa, 0x03, 0xfd, 0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04,
        0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15};
    float deq[32];
    memcpy(deq, x, sizeof deq);
    deq[5] = 3.0f;
    deq[6] = -3.0f;
    check_block(GPT2_Q8_0, x, want, sizeof want, deq);
}

Test(quant, layout_q4_0)
{
    /* block A: the largest magnitude is -8 (first of two), so d = 1; element j -> j - 8,
     * element 16 + j -> 7 - j. Block B: largest is +8, d = -1; 0.5 -> 8, 0.6 -> 7, -7.4 -> 15. */
    float x[64];
    for (int j = 0; j < 16; j++) {
        x[j] = (float)(j - 8);
        x[16 + j] = (float)(7 - j);
        x[32 + j] = (float)(8 - j);
        x[48 + j] = 0.4f;
    }
    x[49] = 0.5f;
    x[50] = 0.6f;
    x[51] = -7.4f;
    static const unsigned char want[36] = {0x00, 0x3c, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96,
                                           0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f, /* block B */
                                           0x00, 0xbc, 0x80, 0x81, 0x72, 0xf3, 0x84, 0x85, 0x86,
                                           0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f};
    float deq[64];
    memcpy(deq, x, 32 * sizeof(float));
    for (int j = 0; j < 16; j++) deq[32 + j] = x[32 + j];
    for (int j = 16; j < 32; j++) deq[32 + j] = 0.0f; /* (8 - 8) * -1 */
    deq[50] = 1.0f;                                   /* q 7 */
    deq[51] = -7.0f;                                  /* q 15 */
    check_block(GPT2_Q4_0, x, want, sizeof want, deq);
}

Test(quant, layout_q4_1)
{
    float x[32];
    for (int j = 0; j < 16; j++) {
        x[j] = (float)(j - 1);
        x[16 + j] = (float)(14 - j);
    }
    x[21] = 3.4f; /* (3.4 + 1) + 0.5 truncates to 4 */
    x[22] = 3.5f; /* to 5 */
    static const unsigned char want[20] = {0x00, 0x3c, 0x00, 0xbc, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0x45,
                                           0x56, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f};
    float deq[32];
    memcpy(deq, x, sizeof deq);
    deq[21] = 3.0f;
    deq[22] = 4.0f;
    check_block(GPT2_Q4_1, x, want, sizeof want, deq);
}

Test(quant, layout_q5_0)
{
    /* element e has 5-bit code (7e mod 32), value code - 16; code 0 (-16) sets d = 1 */
    float x[32];
    for (int e = 0; e < 32; e++) x[e] = (float)((e * 7) % 32 - 16);
    static const unsigned char want[22] = {0x00, 0x3c, 0x98, 0x33, 0x67, 0xcc, 0x00, 0x77, 0xee, 0x55, 0xcc,
                                           0x33, 0xaa, 0x11, 0x88, 0xff, 0x66, 0xdd, 0x44, 0xbb, 0x22, 0x99};
    check_block(GPT2_Q5_0, x, want, sizeof want, x);
}

Test(quant, layout_q5_1)
{
    /* element e has code (11e + 3) mod 32, value code / 2 - 2: min -2, d = 0.5 */
    float x[32];
    for (int e = 0; e < 32; e++) x[e] = (float)((e * 11 + 3) % 32) * 0.5f - 2.0f;
    static const unsigned char want[24] = {0x00, 0x38, 0x00, 0xc0, 0xa4, 0x6d, 0x5b, 0x92,
                                           0x33, 0xee, 0x99, 0x44, 0xff, 0xaa, 0x55, 0x00,
                                           0xbb, 0x66, 0x11, 0xcc, 0x77, 0x22, 0xdd, 0x88};
    check_block(GPT2_Q5_1, x, want, sizeof want, x);
}

Test(quant, zero_and_constant_blocks)
{
    float x[32] = {0}, y[32];
    unsigned char b[34];
    for (int k = 0; k < NQT; k++) {
        gpt2_quantize_row(QT[k], x, b, 32);
        gpt2_dequantize_row(QT[k], b, y, 32);
        for (int j = 0; j < 32; j++) cr_assert_eq(y[j], 0.0f, "%s", gpt2_dtype_name(QT[k]));
    }
    for (int j = 0; j < 32; j++) x[j] = 0.75f; /* min == max: d = 0, m carries the value */
    for (int k = 0; k < NQT; k++) {
        gpt2_quantize_row(QT[k], x, b, 32);
        gpt2_dequantize_row(QT[k], b, y, 32);
        for (int j = 0; j < 32; j++) cr_assert_float_eq(y[j], 0.75f, 1e-3, "%s", gpt2_dtype_name(QT[k]));
    }
}

/* Largest error a value of block x may get: the rounding step of the format (a full step where
 * ggml's symmetric formats clamp the positive extreme) plus the f16 rounding of d and m. */
static double block_bound(gpt2_dtype t, const float *x)
{
    double mn = x[0], mx = x[0], amax = 0;
    for (int j = 0; j < 32; j++) {
        mn = fmin(mn, x[j]);
        mx = fmax(mx, x[j]);
        amax = fmax(amax, fabs(x[j]));
    }
    /* f16 rounding of a scale or min: relative 2^-11, or half the subnormal spacing 2^-25 */
#define F16ERR(v) fmax(fabs(v) / 2048, 1.0 / 33554432)
    double b;
    switch (t) {
    case GPT2_Q4_0: b = amax / 8 + 8 * F16ERR(amax / 8); break;
    case GPT2_Q5_0: b = amax / 16 + 16 * F16ERR(amax / 16); break;
    case GPT2_Q4_1: b = (mx - mn) / 30 + 15 * F16ERR((mx - mn) / 15) + F16ERR(mn); break;
    case GPT2_Q5_1: b = (mx - mn) / 62 + 31 * F16ERR((mx - mn) / 31) + F16ERR(mn); break;
    default: b = amax / 254 + 127 * F16ERR(amax / 127); break;
    }
#undef F16ERR
    return b * (1 + 1e-5) + amax * 1e-6;
}

Test(quant, round_trip_bounds)
{
    const size_t n = 32 * 257;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    unsigned char *b = malloc(n / 32 * 34);
    double rms[NQT];
    for (int k = 0; k < NQT; k++) {
        rng_seed(100 + k);
        for (size_t i = 0; i < n; i++) {
            /* mixed scales and offsets per block, some blocks all one sign */
            size_t blk = i / 32;
            float scale = (float)pow(10.0, (double)(blk % 7) - 3.0);
            float off = blk % 5 == 0 ? 2.0f * scale : 0.0f;
            x[i] = rnd(-scale, scale) + off;
        }
        gpt2_quantize_row(QT[k], x, b, n);
        gpt2_dequantize_row(QT[k], b, y, n);
        double se = 0, sx = 0;
        for (size_t i = 0; i < n; i++) {
            double bound = block_bound(QT[k], x + i / 32 * 32);
            double e = fabs((double)y[i] - x[i]);
            cr_assert(e <= bound, "%s: element %zu: |%g - %g| = %g > bound %g", gpt2_dtype_name(QT[k]), i,
                      y[i], x[i], e, bound);
            if (i / 32 % 7 == 3) { /* unit-scale blocks for the RMS comparison */
                se += e * e;
                sx += 1;
            }
        }
        rms[k] = sqrt(se / sx);
    }
    /* q4_0 > q4_1 > q5_0 > q5_1 > q8_0 on uniform data */
    cr_expect(rms[4] < rms[3] && rms[3] < rms[2] && rms[2] < rms[1] && rms[1] < rms[0],
              "rms q4_0 %g q4_1 %g q5_0 %g q5_1 %g q8_0 %g", rms[0], rms[1], rms[2], rms[3], rms[4]);
    free(x);
    free(y);
    free(b);
}

Test(quant, act_quantizer_twins)
{
    cpu_isa isas[4];
    int ni = isa_list(isas);
    const size_t n = 32 * 40;
    float *x = malloc(n * sizeof *x);
    cpu_q8a *a = malloc(n / 32 * sizeof *a), *b = malloc(n / 32 * sizeof *b);
    rng_seed(7);
    for (size_t i = 0; i < n; i++) x[i] = rnd(-3, 3) * (float)(i / 32 % 3);
    cpu_quantize_act_scalar(x, a, n);
    for (size_t k = 0; k < n / 32; k++) {
        double amax = 0;
        for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(x[k * 32 + j]));
        cr_assert_float_eq(a[k].d, amax / 127, 1e-7 * (amax + 1e-30));
        int s = 0;
        for (int j = 0; j < 32; j++) {
            s += a[k].qs[j];
            cr_assert_leq(fabs(a[k].qs[j] * (double)a[k].d - x[k * 32 + j]), a[k].d * 0.5001 + 1e-30);
        }
        cr_assert_float_eq(a[k].s, a[k].d * (float)s, 1e-6 * fabs(a[k].s) + 1e-30);
    }
    for (int ii = 0; ii < ni; ii++) {
        cpu_isa_force(isas[ii]);
        cpu_quantize_act(x, b, n);
        cr_assert(memcmp(a, b, n / 32 * sizeof *a) == 0, "%s activation quantizer differs from scalar",
                  cpu_isa_name(isas[ii]));
    }
    cpu_isa_force(cpu_isa_detect());
    free(x);
    free(a);
    free(b);
}

/* One quantized matmul against float64 on the dequantized weights; the allowed error is what the
 * int8 activations can cost (half a step per element times |w|) plus f32 summation slack. */
static void check_qmm(gpt2_dtype t, int n, int in, int out, int epi, cpu_pool *pool, uint64_t seed)
{
    rng_seed(seed);
    const int ldx = in + 3, ldy = out + 5;
    const size_t rb = gpt2_row_bytes(t, (size_t)in);
    float *wsrc = malloc((size_t)in * sizeof(float));
    double *wd = malloc((size_t)in * out * sizeof(double));
    float *wf = malloc((size_t)in * sizeof(float));
    gpt2_tensor W = {.type = t, .ne = {in, out}, .nbytes = rb * out};
    W.data = malloc(W.nbytes);
    for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) wsrc[i] = rnd(-1, 1) + (o % 3 == 0 ? 0.5f : 0.0f);
        gpt2_quantize_row(t, wsrc, (char *)W.data + o * rb, (size_t)in);
        gpt2_dequantize_row(t, (char *)W.data + o * rb, wf, (size_t)in);
        for (int i = 0; i < in; i++) wd[(size_t)o * in + i] = wf[i];
    }
    float *x = malloc((size_t)n * ldx * sizeof(float));
    float *bias = malloc((size_t)out * sizeof(float));
    float *y = malloc((size_t)n * ldy * sizeof(float));
    float *y0 = malloc((size_t)n * ldy * sizeof(float));
    for (int k = 0; k < n * ldx; k++) x[k] = rnd(-2, 2) * (k % 7 == 0 ? 3.0f : 1.0f);
    for (int o = 0; o < out; o++) bias[o] = rnd(-1, 1);
    for (int k = 0; k < n * ldy; k++) y[k] = y0[k] = rnd(-1, 1);
    cpu_matmul(y, ldy, x, ldx, &W, bias, n, epi, 0, pool);
    for (int tk = 0; tk < n; tk++) {
        const float *xr = x + (size_t)tk * ldx;
        for (int o = 0; o < out; o++) {
            double s = 0, mag = 0, qerr = 0;
            for (int b = 0; b < in / 32; b++) {
                double amax = 0, wabs = 0;
                for (int j = 0; j < 32; j++) {
                    amax = fmax(amax, fabs(xr[b * 32 + j]));
                    wabs += fabs(wd[(size_t)o * in + b * 32 + j]);
                }
                qerr += amax / 127 * 0.5 * wabs;
            }
            for (int i = 0; i < in; i++) {
                s += wd[(size_t)o * in + i] * xr[i];
                mag += fabs(wd[(size_t)o * in + i] * xr[i]);
            }
            double tol = qerr * 1.001 + 2e-6 * mag + 1e-6;
            if (epi & CPU_EPI_BIAS) s += bias[o];
            if (epi & CPU_EPI_RESIDUAL) s += y0[(size_t)tk * ldy + o];
            double got = y[(size_t)tk * ldy + o];
            cr_assert(fabs(got - s) <= tol, "%s %s n=%d in=%d out=%d: y[%d][%d] = %.7g, want %.7g (tol %.3g)",
                      gpt2_dtype_name(t), cpu_isa_name(cpu_isa_active()), n, in, out, tk, o, got, s, tol);
        }
        for (int o = out; o < ldy; o++) /* the stride gap stays untouched */
            cr_assert_eq(y[(size_t)tk * ldy + o], y0[(size_t)tk * ldy + o]);
    }
    free(wsrc);
    free(wd);
    free(wf);
    free(W.data);
    free(x);
    free(bias);
    free(y);
    free(y0);
}

Test(quant, matmul_every_isa)
{
    cpu_isa isas[4];
    int ni = isa_list(isas);
    static const int shapes[][3] = {{1, 32, 1}, {1, 96, 37}, {3, 64, 9}, {5, 160, 67}, {8, 256, 33}};
    for (int ii = 0; ii < ni; ii++) {
        cpu_isa_force(isas[ii]);
        for (int k = 0; k < NQT; k++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_qmm(QT[k], shapes[s][0], shapes[s][1], shapes[s][2],
                          s % 2 ? CPU_EPI_BIAS | CPU_EPI_RESIDUAL : CPU_EPI_NONE, NULL, 1000 + 17 * k + s);
    }
    cpu_isa_force(cpu_isa_detect());
}

Test(quant, matmul_threaded)
{
    cpu_pool *p = cpu_pool_create(3);
    for (int k = 0; k < NQT; k++) {
        check_qmm(QT[k], 1, 512, 301, CPU_EPI_BIAS, p, 50 + k);
        check_qmm(QT[k], 7, 384, 129, CPU_EPI_BIAS | CPU_EPI_RESIDUAL, p, 60 + k);
    }
    cpu_pool_destroy(p);
}

Test(quant, qdot_twins_agree)
{
    /* the SIMD dot of every format equals the scalar twin up to f32 summation order */
    cpu_isa isas[4];
    int ni = isa_list(isas);
    const int nb = 24;
    float xf[4 * 24 * 32], wsrc[24 * 32];
    cpu_q8a xq[4 * 24];
    unsigned char w[24 * 34];
    rng_seed(99);
    for (int i = 0; i < 4 * nb * 32; i++) xf[i] = rnd(-1, 1);
    cpu_quantize_act_scalar(xf, xq, 4 * nb * 32);
    for (int k = 0; k < NQT; k++) {
        for (int i = 0; i < nb * 32; i++) wsrc[i] = rnd(-1, 1.5f);
        gpt2_quantize_row(QT[k], wsrc, w, nb * 32);
        for (int nt = 1; nt <= 4; nt++) {
            float ref[4], got[4] = {0};
            cpu_qdot_scalar(ref, w, QT[k], xq, nb, nt, nb);
            for (int ii = 0; ii < ni; ii++) {
                cpu_isa_force(isas[ii]);
                cpu_qdot_pick()(got, w, QT[k], xq, nb, nt, nb);
                for (int t = 0; t < nt; t++)
                    cr_assert_float_eq(got[t], ref[t], 1e-4 * (1 + fabsf(ref[t])), "%s %s nt %d",
                                       gpt2_dtype_name(QT[k]), cpu_isa_name(isas[ii]), nt);
            }
        }
    }
    cpu_isa_force(cpu_isa_detect());
}

Test(quant, embed_quantized_wte)
{
    const int d = 96, rows = 11, ctx = 6;
    rng_seed(5);
    float *src = malloc((size_t)d * sizeof(float)), *row = malloc((size_t)d * sizeof(float));
    float *pe = malloc((size_t)d * ctx * sizeof(float));
    for (int i = 0; i < d * ctx; i++) pe[i] = rnd(-1, 1);
    gpt2_tensor wpe = {.type = GPT2_F32, .ne = {d, ctx}, .data = pe, .nbytes = (size_t)d * ctx * 4};
    for (int k = 0; k < NQT; k++) {
        size_t rb = gpt2_row_bytes(QT[k], (size_t)d);
        gpt2_tensor wte = {.type = QT[k], .ne = {d, rows}, .nbytes = rb * rows};
        wte.data = malloc(wte.nbytes);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < d; i++) src[i] = rnd(-1, 1);
            gpt2_quantize_row(QT[k], src, (char *)wte.data + r * rb, (size_t)d);
        }
        int32_t ids[4] = {10, 0, 3, 10};
        float *x = malloc(4 * (size_t)d * sizeof(float));
        cpu_embed(x, &wte, &wpe, ids, 4, 2);
        for (int t = 0; t < 4; t++) {
            gpt2_dequantize_row(QT[k], (char *)wte.data + ids[t] * rb, row, (size_t)d);
            for (int i = 0; i < d; i++) {
                double want = (double)row[i] + pe[(size_t)(2 + t) * d + i];
                cr_assert_float_eq(x[(size_t)t * d + i], want, 1e-6, "%s", gpt2_dtype_name(QT[k]));
            }
        }
        free(x);
        free(wte.data);
    }
    free(src);
    free(row);
    free(pe);
}

/* The VNNI rows kernel directly (where the CPU has it): every format, odd and even block counts,
 * 1..4 tokens, several rows, against the scalar twin and against float64 on the dequantized
 * weights and activations (which is exact up to f32 summation). */
Test(quant, vnni_rows_kernel)
{
    if (!cpu_has_vnni()) {
        cr_log_info("no AVX-512 VNNI on this CPU: the VNNI kernel is not run");
        return;
    }
#if defined(__x86_64__)
    static const int nbs[] = {1, 2, 3, 7, 24};
    enum { NR = 5, MAXNB = 24 };
    float xf[4 * MAXNB * 32], wsrc[MAXNB * 32], wf[MAXNB * 32];
    cpu_q8a xq[4 * MAXNB];
    cpu_q8p *xp = aligned_alloc(64, 4 * (MAXNB / 2) * sizeof *xp);
    unsigned char w[NR * MAXNB * 34];
    rng_seed(123);
    for (int k = 0; k < NQT; k++) {
        for (size_t s = 0; s < sizeof nbs / sizeof nbs[0]; s++) {
            const int nb = nbs[s], pairs = (nb + 1) / 2;
            const size_t rb = gpt2_row_bytes(QT[k], (size_t)nb * 32);
            for (int i = 0; i < 4 * nb * 32; i++) xf[i] = rnd(-2, 2) * (i % 5 == 0 ? 4.0f : 1.0f);
            for (int t = 0; t < 4; t++) {
                cpu_quantize_act_scalar(xf + t * nb * 32, xq + t * nb, (size_t)nb * 32);
                cpu_prepare_act_vnni(QT[k], xq + t * nb, xp + t * pairs, nb);
            }
            for (int r = 0; r < NR; r++) {
                for (int i = 0; i < nb * 32; i++) wsrc[i] = rnd(-1, 1) + (r % 2 ? 0.7f : 0.0f);
                gpt2_quantize_row(QT[k], wsrc, w + r * rb, (size_t)nb * 32);
            }
            for (int nt = 1; nt <= 4; nt++) {
                float got[4 * NR];
                cpu_qdot_rows_vnni(got, NR, w, rb, NR, QT[k], xp, (size_t)pairs, nt, nb);
                for (int r = 0; r < NR; r++) {
                    float ref[4];
                    cpu_qdot_scalar(ref, w + r * rb, QT[k], xq, (size_t)nb, nt, nb);
                    gpt2_dequantize_row(QT[k], w + r * rb, wf, (size_t)nb * 32);
                    for (int t = 0; t < nt; t++) {
                        double want = 0, mag = 0;
                        for (int b = 0; b < nb; b++)
                            for (int j = 0; j < 32; j++) {
                                double p = (double)wf[b * 32 + j] * xq[t * nb + b].qs[j] * xq[t * nb + b].d;
                                want += p;
                                mag += fabs(p);
                            }
                        const float g = got[t * NR + r];
                        cr_assert(fabs(g - want) <= 1e-5 * mag + 1e-6,
                                  "%s nb %d nt %d row %d token %d: %.7g, float64 %.7g",
                                  gpt2_dtype_name(QT[k]), nb, nt, r, t, g, want);
                        cr_assert_float_eq(g, ref[t], 1e-5 * (mag + 1), "%s nb %d: vnni %g scalar %g",
                                           gpt2_dtype_name(QT[k]), nb, g, ref[t]);
                    }
                }
            }
        }
    }
    free(xp);
#endif
}

/* cpu_matmul reports an allocation it cannot make (its quantized activations) with -1 instead of
 * aborting: the address space is capped just above what the test holds, then a matmul needs
 * ~19 MB more. (Not under ASan, whose shadow memory ignores such a cap.) */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#include <sys/resource.h>
Test(quant, matmul_out_of_memory_fails)
{
#ifdef UNDER_ASAN
    cr_skip_test("the address-space cap does not apply under ASan");
#else
    const int in = 32, out = 2, n = 1 << 19;
    const size_t rb = gpt2_row_bytes(GPT2_Q8_0, (size_t)in);
    gpt2_tensor W = {.type = GPT2_Q8_0, .ne = {in, out}, .nbytes = rb * out};
    W.data = calloc(1, W.nbytes);
    float *x = malloc((size_t)n * in * sizeof(float)), *y = malloc((size_t)n * out * sizeof(float));
    cr_assert(W.data && x && y);
    for (size_t k = 0; k < (size_t)n * in; k++) x[k] = (float)(k % 13) - 6.0f;
    FILE *f = fopen("/proc/self/statm", "r");
    cr_assert(f);
    unsigned long pages = 0;
    cr_assert_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    struct rlimit lim = {.rlim_cur = pages * 4096ul + (8ul << 20), .rlim_max = RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
    int r = cpu_matmul(y, out, x, in, &W, NULL, n, CPU_EPI_NONE, 0, NULL);
    lim.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_AS, &lim);
    cr_expect_eq(r, -1, "cpu_matmul returned %d without the memory for its activations", r);
    free(x);
    free(y);
    free(W.data);
#endif
}
