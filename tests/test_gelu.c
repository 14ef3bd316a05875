/* test_gelu.c - cpu_gelu (tanh and erf forms) and cpu_add against float64 references. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "cpu/cpu_ops.h"
#include "ref64.h"
#include "test_rng.h"

Test(gelu, both_forms)
{
    static const size_t ns[] = {1, 3, 7, 33, 769, 5000};
    rng_seed(3);
    for (int form = 0; form < 2; form++) {
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            size_t n = ns[k];
            float *x = malloc(n * sizeof(float)), *x0 = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++) {
                float r = rnd(0, 1);
                /* mostly the interesting range, some far tails */
                x0[i] = r < 0.8f ? rnd(-6, 6) : rnd(-30, 30);
                if (i == 0 && n > 1) x0[i] = 0.0f;
            }
            for (size_t i = 0; i < n; i++) x[i] = x0[i];
            cpu_gelu(x, n, form);
            for (size_t i = 0; i < n; i++) {
                double want = ref64_gelu(x0[i], form);
                double tol = 1e-5 * fabs(want) + 1e-7;
                if (!(fabs(x[i] - want) <= tol))
                    cr_assert(0, "form %d x=%.9g: got %.9g want %.9g", form, x0[i], x[i], want);
                cr_assert(x[i] == cpu_gelu1(x0[i], form));
            }
            free(x);
            free(x0);
        }
    }
}

Test(gelu, forms_differ_slightly)
{
    /* the two forms are distinct functions: they differ by ~1e-4 around |x| ~ 2 */
    float a = cpu_gelu1(2.0f, 0), b = cpu_gelu1(2.0f, 1);
    cr_assert(a != b);
    cr_assert(fabsf(a - b) < 1e-3f);
}

Test(add, shapes)
{
    static const size_t ns[] = {1, 3, 7, 33, 769};
    rng_seed(9);
    for (size_t k = 0; k < 5; k++) {
        size_t n = ns[k];
        float y[769], y0[769], x[769];
        for (size_t i = 0; i < n; i++) {
            y[i] = y0[i] = rnd(-5, 5);
            x[i] = rnd(-5, 5);
        }
        cpu_add(y, x, n);
        for (size_t i = 0; i < n; i++) cr_assert(y[i] == (float)((double)y0[i] + x[i]));
    }
}
