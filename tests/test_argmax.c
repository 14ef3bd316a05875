/* test_argmax.c - cpu_argmax: random rows, ties (lowest index), NaNs, all-negative rows. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "cpu/cpu_ops.h"
#include "ref64.h"
#include "test_rng.h"

Test(argmax, random)
{
    static const int ns[] = {1, 3, 7, 33, 769, 50257};
    rng_seed(5);
    float *x = malloc(50257 * sizeof(float));
    for (int k = 0; k < 6; k++) {
        const int n = ns[k];
        for (int rep = 0; rep < 5; rep++) {
            for (int i = 0; i < n; i++) x[i] = rnd(-10, 10) - (rep == 1 ? 1000.0f : 0.0f);
            if (rep == 2 && n > 2) { /* a tie: the lower index wins */
                int a = (int)(rng_unif() * n), b = (int)(rng_unif() * n);
                x[a] = x[b] = 50.0f;
            }
            if (rep == 3)
                for (int i = 0; i < n; i += 3) x[i] = NAN;
            if (rep == 4) x[n - 1] = INFINITY;
            cr_assert_eq(cpu_argmax(x, n), ref64_argmax(x, n), "n=%d rep=%d", n, rep);
        }
    }
    free(x);
}

Test(argmax, edge)
{
    float x[3] = {-INFINITY, -INFINITY, -INFINITY};
    cr_assert_eq(cpu_argmax(x, 3), 0);
    float y[4] = {1, 2, 2, 1};
    cr_assert_eq(cpu_argmax(y, 4), 1);
    cr_assert_eq(cpu_argmax(y, 0), -1);
}
