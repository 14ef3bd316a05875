/* argmax.c - index of the largest logit (first one on ties, NaNs skipped). */
#include "cpu_ops.h"

int cpu_argmax(const float *x, int n)
{
    int best = -1;
    float bv = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] != x[i]) continue;
        if (best < 0 || x[i] > bv) {
            best = i;
            bv = x[i];
        }
    }
    if (best < 0 && n > 0) best = 0; /* all NaN */
    return best;
}
