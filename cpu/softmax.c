/* softmax.c - row softmax, max-subtracted, sum in double. */
#include "cpu_ops.h"

#include <math.h>

void cpu_softmax(float *x, int n, int d)
{
    for (int t = 0; t < n; t++) {
        float *r = x + (size_t)t * d;
        float m = -INFINITY;
        for (int i = 0; i < d; i++) m = r[i] > m ? r[i] : m;
        if (m == -INFINITY) m = 0; /* all -inf (fully masked): avoid inf - inf */
        double s = 0;
        for (int i = 0; i < d; i++) {
            r[i] = expf(r[i] - m);
            s += r[i];
        }
        const float inv = s > 0 ? (float)(1.0 / s) : 0.0f;
        for (int i = 0; i < d; i++) r[i] *= inv;
    }
}
