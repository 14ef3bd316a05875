/* perfdoc_axis.c - chart axes of vkgpt2-perfdoc: the log-or-linear choice, ticks and labels
 * (perfdoc_axis.h). */
#include "perfdoc_axis.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

pd_axis pd_axis_pick(const double *v, int n)
{
    pd_axis a = {.log = false, .lo = 0, .hi = 1, .step = 0.25};
    if (n <= 0) return a;
    double mn = v[0], mx = v[0];
    for (int i = 1; i < n; i++) {
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
    }
    if (mn > 0 && mx / mn > 10) {
        a.log = true;
        a.lo = pow(10, floor(log10(mn) + 1e-9));
        a.hi = pow(10, ceil(log10(mx) - 1e-9));
        a.step = 0;
        return a;
    }
    double lo = mn < 0 ? mn : 0, hi = mx > lo ? mx : lo + 1;
    double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;
    a.step = mag * (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10);
    a.lo = mn < 0 ? floor(mn / a.step) * a.step : 0;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    if (a.hi <= a.lo) a.hi = a.lo + a.step;
    return a;
}

double pd_axis_pos(const pd_axis *a, double v)
{
    if (a->log) {
        if (v <= 0) return 0;
        return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    }
    return (v - a->lo) / (a->hi - a->lo);
}

int pd_axis_ticks(const pd_axis *a, double *t, int max)
{
    int n = 0;
    if (a->log) {
        int d0 = (int)lround(log10(a->lo)), d1 = (int)lround(log10(a->hi));
        bool subs = d1 - d0 <= 2;
        for (int d = d0; d <= d1 && n < max; d++) {
            double p = pow(10, d);
            t[n++] = p;
            if (subs && d < d1) {
                if (n < max) t[n++] = 2 * p;
                if (n < max) t[n++] = 5 * p;
            }
        }
        return n;
    }
    for (int i = 0; n < max; i++) {
        double v = a->lo + i * a->step;
        if (v > a->hi + a->step * 1e-6) break;
        if (fabs(v) < a->step * 1e-9) v = 0;
        t[n++] = v;
    }
    return n;
}

void pd_tick_label(double v, char *buf, size_t n)
{
    double m = fabs(v);
    if (v == 0)
        snprintf(buf, n, "0");
    else if (m >= 1e6)
        snprintf(buf, n, "%.3gM", v / 1e6);
    else if (m >= 1e3)
        snprintf(buf, n, "%.3gk", v / 1e3);
    else
        snprintf(buf, n, "%.3g", v);
}

int pd_text_width(const char *s, int px) { return (int)ceil(0.6 * px * (double)strlen(s)); }

int pd_tick_stride(const pd_axis *a, const double *t, int n, double len_px, int font_px)
{
    /* a log axis with 2 and 5 between the decades thins to the decades (every third tick) */
    int by = a->log && n > 1 && t[1] / t[0] < 9 ? 3 : 1;
    for (int stride = 1; stride < n; stride = stride == 1 ? by + (by == 1) : stride + by) {
        bool fits = true;
        for (int i = 0; i + stride < n && fits; i += stride) {
            char l0[32], l1[32];
            pd_tick_label(t[i], l0, sizeof l0);
            pd_tick_label(t[i + stride], l1, sizeof l1);
            double gap = (pd_axis_pos(a, t[i + stride]) - pd_axis_pos(a, t[i])) * len_px;
            /* labels are centred on their ticks: half of each must fit in the gap, plus 8 px */
            fits = gap >= (pd_text_width(l0, font_px) + pd_text_width(l1, font_px)) / 2.0 + 8;
        }
        if (fits) return stride;
    }
    return n > 1 ? n : 1;
}
