/* test_layernorm.c - cpu_layernorm against a float64 two-pass reference, including rows with a
 * large mean (1e4 + noise) and in-place use. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"
#include "ref64.h"
#include "test_rng.h"

static void check(int n, int d, float offset, float spread, int in_place, uint64_t seed)
{
    rng_seed(seed);
    float *x = malloc((size_t)n * d * sizeof(float)), *y = malloc((size_t)n * d * sizeof(float));
    float *g = malloc((size_t)d * sizeof(float)), *b = malloc((size_t)d * sizeof(float));
    for (int i = 0; i < n * d; i++) x[i] = offset + rnd(-spread, spread);
    for (int i = 0; i < d; i++) {
        g[i] = rnd(0.5f, 1.5f);
        b[i] = rnd(-0.5f, 0.5f);
    }
    const float eps = 1e-5f;
    float *src = x;
    if (in_place) {
        memcpy(y, x, (size_t)n * d * sizeof(float));
        src = y;
    }
    double *want_y = malloc((size_t)n * d * sizeof *want_y), *x_hat = malloc((size_t)n * d * sizeof *x_hat);
    cr_assert(want_y && x_hat);
    ref64_layernorm(want_y, x_hat, NULL, x, d, g, b, n, d, eps);
    cpu_layernorm(y, src, g, b, n, d, eps);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < d; i++) {
            double z = x_hat[(size_t)t * d + i] * g[i];
            double want = want_y[(size_t)t * d + i];
            double tol = 1e-5 * (fabs(z) + fabs(b[i])) + 1e-12;
            double got = y[(size_t)t * d + i];
            if (!(fabs(got - want) <= tol))
                cr_assert(0, "n=%d d=%d offset=%g in_place=%d t=%d i=%d: got %.9g want %.9g", n, d, offset,
                          in_place, t, i, got, want);
        }
    }
    free(x);
    free(y);
    free(g);
    free(b);
    free(want_y);
    free(x_hat);
}

Test(layernorm, shapes)
{
    static const int ns[] = {1, 3, 7, 33}, ds[] = {1, 5, 17, 768, 769};
    uint64_t seed = 1;
    for (size_t a = 0; a < 4; a++)
        for (size_t c = 0; c < 5; c++)
            for (int ip = 0; ip < 2; ip++) check(ns[a], ds[c], 0.0f, 2.0f, ip, seed++);
}

Test(layernorm, large_mean)
{
    static const int ds[] = {5, 17, 768, 769};
    uint64_t seed = 100;
    for (size_t c = 0; c < 4; c++) {
        check(3, ds[c], 1e4f, 1.0f, 0, seed++);
        check(3, ds[c], -3e4f, 0.05f, 1, seed++);
        check(2, ds[c], 1e6f, 4.0f, 0, seed++);
    }
}
