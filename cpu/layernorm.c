/* layernorm.c - row layer normalisation, two passes with double sums so large means cost nothing
 * in accuracy: mean first, then the variance of the centred values. */
#include "cpu_ops.h"

#include <math.h>

void cpu_layernorm(float *y, const float *x, const float *g, const float *b, int n, int d, float eps)
{
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * d;
        float *yr = y + (size_t)t * d;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= d; i += 4) {
            s0 += xr[i];
            s1 += xr[i + 1];
            s2 += xr[i + 2];
            s3 += xr[i + 3];
        }
        for (; i < d; i++) s0 += xr[i];
        const double mean = (s0 + s1 + s2 + s3) / d;
        double v0 = 0, v1 = 0;
        for (i = 0; i + 2 <= d; i += 2) {
            double c0 = xr[i] - mean, c1 = xr[i + 1] - mean;
            v0 += c0 * c0;
            v1 += c1 * c1;
        }
        for (; i < d; i++) v0 += (xr[i] - mean) * (xr[i] - mean);
        const double rstd = 1.0 / sqrt((v0 + v1) / d + (double)eps);
        for (i = 0; i < d; i++) /* x is read before y is written at each i: y may equal x */
            yr[i] = (float)((xr[i] - mean) * rstd) * g[i] + b[i];
    }
}
