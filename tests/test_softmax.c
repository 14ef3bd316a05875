/* test_softmax.c - cpu_softmax against a float64 reference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "cpu/cpu_ops.h"
#include "ref64.h"
#include "test_rng.h"

static void check(int n, int d, float offset, float spread, uint64_t seed)
{
    rng_seed(seed);
    float *x = malloc((size_t)n * d * sizeof(float)), *x0 = malloc((size_t)n * d * sizeof(float));
    for (int i = 0; i < n * d; i++) x[i] = x0[i] = offset + rnd(-spread, spread);
    double *ref = malloc((size_t)n * d * sizeof *ref);
    cr_assert(ref);
    ref64_softmax(ref, x0, n, d);
    cpu_softmax(x, n, d);
    for (int t = 0; t < n; t++) {
        double tot = 0;
        for (int i = 0; i < d; i++) {
            double want = ref[(size_t)t * d + i], got = x[(size_t)t * d + i];
            tot += got;
            if (!(fabs(got - want) <= 1e-5 * want + 1e-30))
                cr_assert(0, "n=%d d=%d t=%d i=%d: got %.9g want %.9g", n, d, t, i, got, want);
        }
        cr_assert(fabs(tot - 1.0) < 1e-5, "row %d sums to %.9g", t, tot);
    }
    free(x);
    free(x0);
    free(ref);
}

Test(softmax, shapes)
{
    static const int ns[] = {1, 3, 7, 33}, ds[] = {1, 5, 17, 769};
    uint64_t seed = 1;
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 4; c++) {
            check(ns[a], ds[c], 0.0f, 1.0f, seed++);
            check(ns[a], ds[c], 0.0f, 20.0f, seed++);
            check(ns[a], ds[c], 1000.0f, 5.0f, seed++);
        }
}

Test(softmax, masked_row)
{
    float x[4] = {-INFINITY, 1.0f, -INFINITY, 1.0f};
    cpu_softmax(x, 1, 4);
    cr_assert(x[0] == 0.0f && x[2] == 0.0f && x[1] == 0.5f && x[3] == 0.5f);
}
