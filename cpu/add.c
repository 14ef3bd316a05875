/* add.c - elementwise residual add. */
#include "cpu_ops.h"

void cpu_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
