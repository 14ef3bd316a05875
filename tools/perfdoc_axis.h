/* perfdoc_axis.h - chart axes of vkgpt2-perfdoc (tools/perfdoc.c): log or linear scale, ticks,
 * tick labels and the spacing that keeps labels from overlapping. Plain functions, unit-tested in
 * tests/test_perfdoc.c. */
#ifndef VKG_PERFDOC_AXIS_H
#define VKG_PERFDOC_AXIS_H

#include <stdbool.h>
#include <stddef.h>

/* One axis: its scale and the range it draws. */
typedef struct pd_axis {
    bool log;      /* log10 scale (the data span more than a decade) */
    double lo, hi; /* range drawn: whole decades on a log axis, multiples of step on a linear one */
    double step;   /* linear: distance between ticks (1, 2 or 5 x 10^k); log: 0 */
} pd_axis;

/* The axis for values v[0..n): log when every value is > 0 and max / min > 10 (more than a decade),
 * from the decade at or below the minimum to the one at or above the maximum; else linear from 0
 * (or below, for negative values) to the first tick at or above the maximum. n == 0: linear 0..1. */
pd_axis pd_axis_pick(const double *v, int n);

/* Where v lies along the axis: 0 at lo, 1 at hi (log axes: by log10). */
double pd_axis_pos(const pd_axis *a, double v);

/* Tick values in ascending order, at most max of them; returns the count. Log: every decade, with
 * 2 and 5 between them when the axis spans at most two decades; linear: lo, lo + step, ... hi. */
int pd_axis_ticks(const pd_axis *a, double *t, int max);

/* A short tick label into buf: "0", "0.05", "20", "1.5k", "10k", "2M". */
void pd_tick_label(double v, char *buf, size_t n);

/* Estimated width in pixels of s in a sans-serif font of px pixels (0.6 em per character: wide
 * enough for digits and lower case, so estimates err on the side of more room). */
int pd_text_width(const char *s, int px);

/* Label every stride-th tick (starting with the first) so that neighbouring labels of a
 * horizontal axis of len_px pixels keep at least 8 px apart at font size font_px; returns the
 * smallest such stride (>= 1; on a log axis with 2 and 5 between the decades, 1 or a multiple of
 * 3, so that the labels left are the decades). */
int pd_tick_stride(const pd_axis *a, const double *t, int n, double len_px, int font_px);

#endif
