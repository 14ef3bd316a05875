/* gelu.c - GELU in its two forms, written so that neither loses relative accuracy for negative x:
 *   tanh form: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 *   erf form:  0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2)
 */
#include "cpu_ops.h"

#include <math.h>

float cpu_gelu1(float x, int form)
{
    if (form == 1) return 0.5f * x * erfcf(-x * 0.70710678118654752f);
    const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
}

void cpu_gelu(float *x, size_t n, int form)
{
    for (size_t i = 0; i < n; i++) x[i] = cpu_gelu1(x[i], form);
}
