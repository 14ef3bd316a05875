/* perfdoc.c - vkgpt2-perfdoc: turns benchmark JSON into the generated part of docs/PERFORMANCE.md
 * and SVG charts (docs/PERFORMANCE.md lists the runs behind its figures; docs/PROFILING.md has the
 * recipe for another machine).
 *
 *     vkgpt2-perfdoc --doc docs/PERFORMANCE.md --img docs/img [--model-name TEXT] FILE...
 *
 * Each FILE is JSON lines from `vkgpt2 bench ... --json` (rows with "kind": "decode", "ctx" or
 * "kernel"; decode rows of both modes give the replay-against-re-record table), of `vkgpt2
 * selftest --json` ("selftest" and "selftest_summary": the self-test table and its failures) or the object of `vkgpt2 generate --profile --json` (its "profile"; that JSON does not
 * name the model, so --model-name TEXT names it for the files after it). Written:
 *   IMG/decode_breakdown_<backend>.svg  per-kernel share of a decode step (from profiles)
 *   IMG/ctx_sweep.svg                   decode ms/token against n_past (ctx rows), a line per model
 *   IMG/toks_vs_size.svg                decode tok/s against weight bytes (decode rows), a line per
 *                                       backend / threads / type / format, each point named by size
 * and the tables between <!-- perfdoc:begin --> and <!-- perfdoc:end --> in DOC (appended with the
 * markers when the file has none; everything outside them is left as it is). An axis whose values
 * span more than a decade is drawn on a log scale (perfdoc_axis.c), and its title says so.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/outfile.h"
#include "perfdoc_axis.h"

#define MAXF 64
static json_doc *docs[4096];
static int n_docs;
static unsigned chart_flags = GPT2_OUT_NO_REPLACE; /* --force clears it */
static const char *const *inputs;                  /* the input FILEs (NULL-terminated) */
static gpt2_out chart;                             /* the chart being written */
static int failed;                                 /* a chart could not be written */
static const json_value *profs[MAXF];              /* the "profile" objects */
static const json_value *prof_roots[MAXF];         /* the whole generate JSON each came from */
static const char *prof_names[MAXF];               /* --model-name in force for its file, or NULL */
static int n_profs;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) b = realloc(b, (cap *= 2) + 1);
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = n;
    return b;
}

static const char *str(const json_value *o, const char *k)
{
    const json_value *v = json_get(o, k);
    return v && v->type == JSON_STRING ? v->str : "";
}

static double num(const json_value *o, const char *k)
{
    double d = 0;
    json_as_num(json_get(o, k), &d);
    return d;
}

static void add_doc(json_doc *d, const char *model_name)
{
    if (n_docs == (int)(sizeof docs / sizeof *docs)) return;
    docs[n_docs++] = d;
    const json_value *p = json_get(json_root(d), "profile");
    if (p && p->type == JSON_OBJECT && n_profs < MAXF) {
        prof_roots[n_profs] = json_root(d);
        prof_names[n_profs] = model_name;
        profs[n_profs++] = p;
    }
}

/* ---- naming the model of a row ---- */

/* A bench row's model size from its GPT-2 parameter count ("124M", "3.4M"); rows of older JSON
 * without "params": their weights in MiB. */
static void size_name(const json_value *r, char *buf, size_t n)
{
    double p = num(r, "params");
    if (p >= 9.95e6)
        snprintf(buf, n, "%.0fM", p / 1e6);
    else if (p > 0)
        snprintf(buf, n, "%.2gM", p / 1e6);
    else
        snprintf(buf, n, "%.0f MiB", num(r, "weights_bytes") / 1048576.0);
}

/* "f16 hf": the weight type and format of a row (older JSON: the type alone). */
static void type_desc(const json_value *r, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s", str(r, "weight_type"), *str(r, "format") ? " " : "", str(r, "format"));
}

/* ", vocab 50257" when the row has its vocabulary size, else "". */
static void vocab_desc(const json_value *r, char *buf, size_t n)
{
    if (num(r, "n_vocab") > 0)
        snprintf(buf, n, ", vocab %.0f", num(r, "n_vocab"));
    else if (n)
        buf[0] = 0;
}

/* "cpu, 2 threads" or "vulkan on llvmpipe (...)": where a row ran. */
static void where_desc(const json_value *r, char *buf, size_t n)
{
    if (!strcmp(str(r, "backend"), "vulkan"))
        snprintf(buf, n, "vulkan on %s", str(r, "device"));
    else
        snprintf(buf, n, "%s, %.0f threads", str(r, "backend"), num(r, "threads"));
}

/* ---- SVG ---- */

static const char *colors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                               "#59a14f", "#edc948", "#b07aa1", "#ff9da7"};

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

/* Puts the chart being written in place. */
static void svg_close(void)
{
    char err[1200];
    if (gpt2_out_close(&chart, err, sizeof err) != 0) {
        fprintf(stderr, "vkgpt2-perfdoc: %s\n", err);
        failed = 1;
    }
}

/* Opens DIR/NAME with a white w x h canvas, the title (15 px) at y 20 and, if given, a subtitle
 * (12 px) at y 38. */
static FILE *svg_open(const char *dir, const char *name, int w, int h, const char *title,
                      const char *subtitle)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char err[1200];
    int rc = gpt2_out_check(path, chart_flags, inputs, err, sizeof err);
    if (rc == 0) rc = gpt2_out_open(&chart, path, chart_flags, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "vkgpt2-perfdoc: %s%s\n", err, rc == GPT2_OUT_EXISTS ? " (--force replaces it)" : "");
        failed = 1;
        return NULL;
    }
    FILE *f = chart.f;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n",
            w, h);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">", w / 2);
    xml_text(f, title);
    fputs("</text>\n", f);
    if (subtitle) {
        fprintf(f, "<text x=\"%d\" y=\"38\" text-anchor=\"middle\" fill=\"#444\">", w / 2);
        xml_text(f, subtitle);
        fputs("</text>\n", f);
    }
    return f;
}

/* Horizontal bars: the decode kernels of one profile, by share of the step, scaled so the largest
 * share spans the bar area; the canvas is as wide as the longest label needs. */
static void chart_breakdown(const char *dir, int pi)
{
    const json_value *prof = profs[pi], *ph = json_get(prof, "phases"), *dec = NULL;
    for (size_t i = 0; ph && i < ph->len; i++)
        if (!strcmp(str(ph->items[i], "phase"), "decode")) dec = ph->items[i];
    if (!dec) return;
    const json_value *ks = json_get(dec, "kernels");
    int n = ks ? (int)ks->len : 0, T = 52, h = T + 20 + 24 * n;
    double steps = num(dec, "steps"), maxshare = 0;
    int name_w = 0, note_w = 0;
    char note[160];
    for (int i = 0; i < n; i++) {
        const json_value *k = ks->items[i];
        double sh = num(k, "share");
        if (sh > maxshare) maxshare = sh;
        int w = pd_text_width(str(k, "name"), 12);
        if (w > name_w) name_w = w;
        snprintf(note, sizeof note, "%.1f%% (%.3f ms/step, %.2f GB/s)", 100 * sh,
                 steps > 0 ? num(k, "total_ms") / steps : 0, num(k, "gbs"));
        w = pd_text_width(note, 12);
        if (w > note_w) note_w = w;
    }
    if (maxshare <= 0) maxshare = 1;
    char name[128], title[512], sub[512];
    snprintf(name, sizeof name, "decode_breakdown_%s.svg", str(prof, "backend"));
    snprintf(title, sizeof title, "Decode step by kernel: %s on %s", str(prof, "backend"),
             str(prof, "device"));
    const json_value *mem = json_get(prof_roots[pi], "memory");
    snprintf(sub, sizeof sub, "%s%s%.1f MiB of weights, %.3g ms/step of kernels over %.0f steps",
             prof_names[pi] ? prof_names[pi] : "", prof_names[pi] ? ", " : "",
             num(mem, "weights_bytes") / 1048576.0, steps > 0 ? num(dec, "kernel_ms") / steps : 0, steps);
    int left = 16 + name_w, bar_max = 360, w = left + 6 + bar_max + 6 + note_w + 16;
    int tw = pd_text_width(title, 15) + 40, sw = pd_text_width(sub, 12) + 40;
    if (w < tw) w = tw;
    if (w < sw) w = sw;
    FILE *f = svg_open(dir, name, w, h, title, sub);
    if (!f) return;
    for (int i = 0; i < n; i++) {
        const json_value *k = ks->items[i];
        double share = num(k, "share");
        int y = T + 24 * i, bw = (int)(share / maxshare * bar_max);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left, y + 14);
        xml_text(f, str(k, "name"));
        fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"18\" fill=\"%s\"/>\n", left + 6, y,
                bw > 1 ? bw : 1, colors[i % 8]);
        fprintf(f, "<text x=\"%d\" y=\"%d\">%.1f%% (%.3f ms/step, %.2f GB/s)</text>\n",
                left + 12 + (bw > 1 ? bw : 1), y + 14, 100 * share,
                steps > 0 ? num(k, "total_ms") / steps : 0, num(k, "gbs"));
    }
    fputs("</svg>\n", f);
    svg_close();
}

/* Series of (x, y) points drawn as a line, one per key (the legend text), each point with an
 * optional label drawn beside it. */
typedef struct series {
    char key[512];         /* legend text */
    double x[512], y[512]; /* points */
    char label[512][32];   /* a point's label, "" for none */
    int n;                 /* points used */
} series;

/* Orders a series' points by x, so that its line runs left to right. */
static void series_sort(series *s)
{
    for (int i = 1; i < s->n; i++)
        for (int j = i; j > 0 && s->x[j] < s->x[j - 1]; j--) {
            double tx = s->x[j], ty = s->y[j];
            char tl[32];
            memcpy(tl, s->label[j], sizeof tl);
            s->x[j] = s->x[j - 1], s->y[j] = s->y[j - 1];
            memcpy(s->label[j], s->label[j - 1], sizeof tl);
            s->x[j - 1] = tx, s->y[j - 1] = ty;
            memcpy(s->label[j - 1], tl, sizeof tl);
        }
}

/* A line chart: both axes chosen by pd_axis_pick (log where the values span more than a decade,
 * which the axis title then says), tick labels thinned so that none overlap, the y title clear of
 * the widest y tick label, and the legend below the plot, one line per series. */
static void chart_lines(const char *dir, const char *file, const char *title, const char *subtitle,
                        const char *xl, const char *yl, series *s, int ns)
{
    int total = 0;
    for (int i = 0; i < ns; i++) total += s[i].n;
    if (!ns || !total) return;
    double *xs = malloc((size_t)total * sizeof *xs), *ys = malloc((size_t)total * sizeof *ys);
    if (!xs || !ys) {
        free(xs);
        free(ys);
        return;
    }
    int k = 0;
    for (int i = 0; i < ns; i++) {
        series_sort(&s[i]);
        for (int j = 0; j < s[i].n; j++, k++) xs[k] = s[i].x[j], ys[k] = s[i].y[j];
    }
    pd_axis xa = pd_axis_pick(xs, total), ya = pd_axis_pick(ys, total);
    free(xs);
    free(ys);
    double xt[64], yt[64];
    int nxt = pd_axis_ticks(&xa, xt, 64), nyt = pd_axis_ticks(&ya, yt, 64);
    char lab[32], xtitle[256], ytitle[256];
    snprintf(xtitle, sizeof xtitle, "%s%s", xl, xa.log ? " (log scale)" : "");
    snprintf(ytitle, sizeof ytitle, "%s%s", yl, ya.log ? " (log scale)" : "");
    int ylab_w = 0, plab_w = 0, leg_w = 0;
    for (int i = 0; i < nyt; i++) {
        pd_tick_label(yt[i], lab, sizeof lab);
        if (pd_text_width(lab, 12) > ylab_w) ylab_w = pd_text_width(lab, 12);
    }
    for (int i = 0; i < ns; i++) {
        if (pd_text_width(s[i].key, 12) > leg_w) leg_w = pd_text_width(s[i].key, 12);
        for (int j = 0; j < s[i].n; j++)
            if (pd_text_width(s[i].label[j], 11) > plab_w) plab_w = pd_text_width(s[i].label[j], 11);
    }
    int W = 760, T = subtitle ? 56 : 40, PH = 300;
    if (W < leg_w + 60) W = leg_w + 60;
    if (W < pd_text_width(title, 15) + 40) W = pd_text_width(title, 15) + 40;
    if (subtitle && W < pd_text_width(subtitle, 12) + 40) W = pd_text_width(subtitle, 12) + 40;
    /* the rotated y title occupies x 4..20; the y tick labels end 6 px left of the axis */
    int L = 30 + ylab_w, R = 20 + (plab_w > 20 ? plab_w : 20), PW = W - L - R;
    int H = T + PH + 52 + 18 * ns + 8;
    FILE *f = svg_open(dir, file, W, H, title, subtitle);
    if (!f) return;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T + PH, L + PW,
            T + PH);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, T + PH);
    int xs_stride = pd_tick_stride(&xa, xt, nxt, PW, 12);
    for (int i = 0; i < nxt; i++) {
        double px = L + PW * pd_axis_pos(&xa, xt[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", px, T, px, T + PH,
                i % xs_stride ? "#f0f0f0" : "#ddd");
        if (i % xs_stride) continue;
        pd_tick_label(xt[i], lab, sizeof lab);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px, T + PH + 16, lab);
    }
    /* y labels: every stride-th, at least 16 px apart (12 px text) */
    int ys_stride = 1;
    for (bool fits = false; !fits && ys_stride < nyt; ys_stride += fits ? 0 : 1) {
        fits = true;
        for (int i = 0; i + ys_stride < nyt; i += ys_stride)
            if ((pd_axis_pos(&ya, yt[i + ys_stride]) - pd_axis_pos(&ya, yt[i])) * PH < 16) fits = false;
    }
    for (int i = 0; i < nyt; i++) {
        double py = T + PH - PH * pd_axis_pos(&ya, yt[i]);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n", L, py, L + PW, py,
                i % ys_stride ? "#f0f0f0" : "#ddd");
        if (i % ys_stride) continue;
        pd_tick_label(yt[i], lab, sizeof lab);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 6, py + 4, lab);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", L + PW / 2, T + PH + 36);
    xml_text(f, xtitle);
    fprintf(f, "</text>\n<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">",
            T + PH / 2, T + PH / 2);
    xml_text(f, ytitle);
    fputs("</text>\n", f);
    for (int i = 0; i < ns; i++) {
        const char *c = colors[i % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int j = 0; j < s[i].n; j++)
            fprintf(f, "%.1f,%.1f ", L + PW * pd_axis_pos(&xa, s[i].x[j]),
                    T + PH - PH * pd_axis_pos(&ya, s[i].y[j]));
        fputs("\"/>\n", f);
        for (int j = 0; j < s[i].n; j++) {
            double px = L + PW * pd_axis_pos(&xa, s[i].x[j]), py = T + PH - PH * pd_axis_pos(&ya, s[i].y[j]);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py, c);
            if (s[i].label[j][0]) {
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\">", px + 5, py - 5, c);
                xml_text(f, s[i].label[j]);
                fputs("</text>\n", f);
            }
        }
        int ly = T + PH + 52 + 18 * i;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
                24, ly - 10, c, 42, ly);
        xml_text(f, s[i].key);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    svg_close();
}

static int series_for(series *s, int *ns, const char *key)
{
    for (int i = 0; i < *ns; i++)
        if (!strcmp(s[i].key, key)) return i;
    if (*ns == 16) return -1;
    memset(&s[*ns], 0, sizeof s[*ns]);
    snprintf(s[*ns].key, sizeof s[*ns].key, "%s", key);
    return (*ns)++;
}

static void add_point(series *s, double x, double y, const char *label)
{
    if (s->n < 512) {
        s->x[s->n] = x;
        s->y[s->n] = y;
        snprintf(s->label[s->n], sizeof s->label[s->n], "%s", label ? label : "");
        s->n++;
    }
}

/* A decode row that the size chart plots: a replayed (Vulkan) or direct (CPU) run; re-record
 * rows repeat the model beside its replay row, and so does a Vulkan row at one token per submit
 * beside the default's. */
static bool plotted_decode(const json_value *r)
{
    return !strcmp(str(r, "kind"), "decode") && strcmp(str(r, "mode"), "re-record") &&
        (strcmp(str(r, "backend"), "vulkan") || num(r, "tokens_per_submit") != 1);
}

/* ---- the markdown section ---- */

static void write_section(FILE *f, const char *img_rel)
{
    fputs("<!-- perfdoc:begin -->\n<!-- Generated by vkgpt2-perfdoc from benchmark JSON; edits here are "
          "overwritten. -->\n\n",
          f);
    if (n_profs) {
        fputs("### Decode step by kernel\n\n", f);
        for (int i = 0; i < n_profs; i++) {
            const json_value *p = profs[i], *ph = json_get(p, "phases");
            fprintf(f, "![decode breakdown, %s](%s/decode_breakdown_%s.svg)\n\n", str(p, "backend"), img_rel,
                    str(p, "backend"));
            for (size_t k = 0; ph && k < ph->len; k++) {
                const json_value *q = ph->items[k];
                if (strcmp(str(q, "phase"), "decode")) continue;
                double steps = num(q, "steps");
                fprintf(f,
                        "%s on %s%s%s, %.1f MiB of weights, %.0f decode steps: kernels %.3f ms/step (peaks "
                        "%.1f GB/s, %.1f GFLOP/s)\n\n",
                        str(p, "backend"), str(p, "device"), prof_names[i] ? ", " : "",
                        prof_names[i] ? prof_names[i] : "",
                        num(json_get(prof_roots[i], "memory"), "weights_bytes") / 1048576.0, steps,
                        steps > 0 ? num(q, "kernel_ms") / steps : 0, num(p, "peak_gbs"),
                        num(p, "peak_gflops"));
                fputs("| kernel | calls/step | ms/step | share | GB/s | GFLOP/s | % peak BW |\n| --- | ---: "
                      "| ---: | ---: | ---: | ---: | ---: |\n",
                      f);
                const json_value *ks = json_get(q, "kernels");
                for (size_t j = 0; ks && j < ks->len; j++) {
                    const json_value *r = ks->items[j];
                    fprintf(f, "| %s | %.0f | %.3f | %.1f%% | %.2f | %.2f | %.1f |\n", str(r, "name"),
                            steps > 0 ? num(r, "calls") / steps : 0,
                            steps > 0 ? num(r, "total_ms") / steps : 0, 100 * num(r, "share"), num(r, "gbs"),
                            num(r, "gflops"), 100 * num(r, "peak_bw_share"));
                }
                fputs("\n", f);
            }
        }
    }
    bool any = false;
    char sz[32];
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "decode")) continue;
        if (!any) {
            fprintf(f, "### Decode and prompt speed\n\n![tok/s against model size](%s/toks_vs_size.svg)\n\n",
                    img_rel);
            fputs("| model | size | type | format | vocab | backend | device | threads | mode | weights MiB "
                  "| decode ms/token (median, min-max) | tok/s | prompt tok/s | weights GB/s |\n"
                  "| --- | ---: | --- | --- | ---: | --- | --- | ---: | --- | ---: | --- | ---: | ---: | "
                  "---: |\n",
                  f);
            any = true;
        }
        const json_value *dm = json_get(r, "decode_ms_per_token");
        double med = num(dm, "median");
        size_name(r, sz, sizeof sz);
        fprintf(f,
                "| %s | %s | %s | %s | %.0f | %s | %s | %.0f | %s | %.1f | %.2f (%.2f-%.2f) | %.1f | %.1f | "
                "%.2f |\n",
                str(r, "model"), sz, str(r, "weight_type"), str(r, "format"), num(r, "n_vocab"),
                str(r, "backend"), str(r, "device"), num(r, "threads"), str(r, "mode"),
                num(r, "weights_bytes") / 1048576.0, med, num(dm, "min"), num(dm, "max"),
                med > 0 ? 1e3 / med : 0, num(r, "prompt_tok_s"), num(r, "weights_gbs"));
    }
    if (any) fputs("\n", f);
    any = false;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "ctx")) continue;
        if (!any) {
            fprintf(f,
                    "### Decode against context length\n\n![ms/token against n_past](%s/ctx_sweep.svg)\n\n",
                    img_rel);
            fputs("| model | size | type | vocab | backend | device | threads | n_past | decode ms/token |\n"
                  "| --- | ---: | --- | ---: | --- | --- | ---: | ---: | ---: |\n",
                  f);
            any = true;
        }
        size_name(r, sz, sizeof sz);
        fprintf(f, "| %s | %s | %s | %.0f | %s | %s | %.0f | %.0f | %.3f |\n", str(r, "model"), sz,
                str(r, "weight_type"), num(r, "n_vocab"), str(r, "backend"), str(r, "device"),
                num(r, "threads"), num(r, "n_past"), num(r, "decode_ms_per_token"));
    }
    if (any) fputs("\n", f);
    any = false;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "kernel")) continue;
        if (!any) {
            fputs("### Kernels at GPT-2 shapes\n\n| backend | size | type | op | median ms | spread | GB/s | "
                  "GFLOP/s | % peak BW | % peak FLOP/s |\n"
                  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
                  f);
            any = true;
        }
        double med = num(r, "median_ms"), pb = num(r, "peak_gbs"), pf = num(r, "peak_gflops");
        fprintf(f, "| %s | %s | %s | %s | %.4f | %.0f%% | %.2f | %.2f | %.1f | %.1f |\n", str(r, "backend"),
                str(r, "size"), str(r, "weight_type"), str(r, "op"), med,
                med > 0 ? 100 * (num(r, "max_ms") - num(r, "min_ms")) / med : 0, num(r, "gbs"),
                num(r, "gflops"), pb > 0 ? 100 * num(r, "gbs") / pb : 0,
                pf > 0 ? 100 * num(r, "gflops") / pf : 0);
    }
    if (any) fputs("\n", f);
    /* replay against re-record: the same model's decode rows in both modes (tools/device-run.sh) */
    any = false;
    for (int d = 0; d < n_docs; d++) {
        const json_value *rr = json_root(docs[d]);
        if (strcmp(str(rr, "kind"), "decode") || strcmp(str(rr, "mode"), "re-record")) continue;
        for (int e = 0; e < n_docs; e++) {
            const json_value *rp = json_root(docs[e]);
            if (strcmp(str(rp, "kind"), "decode") || strcmp(str(rp, "mode"), "replay") ||
                strcmp(str(rp, "model"), str(rr, "model")) || strcmp(str(rp, "device"), str(rr, "device")))
                continue;
            if (!any) {
                fputs("### Replayed against re-recorded steps\n\n| model | device | replay host ms/token | "
                      "re-record host ms/token | "
                      "replay decode ms/token | re-record decode ms/token |\n| --- | --- | ---: | ---: | "
                      "---: | ---: |\n",
                      f);
                any = true;
            }
            fprintf(f, "| %s | %s | %.3f | %.3f | %.3f | %.3f |\n", str(rp, "model"), str(rp, "device"),
                    num(rp, "host_ms_per_token"), num(rr, "host_ms_per_token"),
                    num(json_get(rp, "decode_ms_per_token"), "median"),
                    num(json_get(rr, "decode_ms_per_token"), "median"));
            break;
        }
    }
    if (any) fputs("\n", f);
    /* vkgpt2 selftest --json: the summary, and every failed case */
    any = false;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "selftest_summary")) continue;
        if (!any) {
            fputs("### Self test\n\n| device | driver | emulated | subgroup size | cases | failed | "
                  "validation messages | seed | s |\n"
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
                  f);
            any = true;
        }
        fprintf(f, "| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s | %.1f |\n", str(r, "device"),
                str(r, "driver"), str(r, "emulated")[0] ? str(r, "emulated") : "-", num(r, "subgroup_size"),
                num(r, "cases"), num(r, "failed"), num(r, "validation_messages"), str(r, "seed"),
                num(r, "total_ms") / 1e3);
    }
    bool header = false;
    for (int d = 0; any && d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        const json_value *ok = json_get(r, "pass");
        if (strcmp(str(r, "kind"), "selftest") || !ok || ok->type != JSON_BOOL || ok->b) continue;
        if (!header) {
            fputs("\nFailed cases:\n\n| op | variant | type | shape | max err | tol |\n| --- | --- | --- | "
                  "--- | ---: | ---: |\n",
                  f);
            header = true;
        }
        fprintf(f, "| %s | %s | %s | %s | %.3g | %.3g |\n", str(r, "op"), str(r, "variant"), str(r, "type"),
                str(r, "shape"), num(r, "max_err"), num(r, "tol"));
    }
    if (any) fputs("\n", f);
    fputs("<!-- perfdoc:end -->\n", f);
}

static series chart_series[16]; /* the series of the chart being built */

int main(int argc, char **argv)
{
    const char *doc = NULL, *img = NULL, *img_rel = "img", *model_name = NULL;
    const char *files[MAXF * 4 + 1], *file_names[MAXF * 4]; /* files: NULL-terminated */
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--force")) {
            chart_flags = 0;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(
                "usage: vkgpt2-perfdoc --doc docs/PERFORMANCE.md --img docs/img [--img-link img] [--force]\n"
                "                      [--model-name TEXT] FILE.json [[--model-name TEXT] FILE.json]...\n"
                "FILEs: JSON lines of `vkgpt2 bench ... --json`, or `vkgpt2 generate --profile --json` "
                "output\n"
                "(--model-name names the model of the profiles in the files after it; bench rows name "
                "theirs).\n"
                "Writes the SVG charts into --img and the tables between <!-- perfdoc:begin --> and\n"
                "<!-- perfdoc:end --> in --doc (the rest of the file is kept). Existing charts are replaced\n"
                "only with --force. Files are written to a temporary and renamed into place.");
            return 0;
        }
        if (!strcmp(a, "--doc") || !strcmp(a, "--img") || !strcmp(a, "--img-link") ||
            !strcmp(a, "--model-name")) {
            if (!has_value) {
                fprintf(stderr, "vkgpt2-perfdoc: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--doc"))
                doc = v;
            else if (!strcmp(a, "--img"))
                img = v;
            else if (!strcmp(a, "--img-link"))
                img_rel = v;
            else
                model_name = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vkgpt2-perfdoc: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (n_files == MAXF * 4) {
            fprintf(stderr, "vkgpt2-perfdoc: %s: more than %d input files\n", a, n_files);
            return 2;
        } else {
            file_names[n_files] = model_name;
            files[n_files++] = a;
        }
    }
    if (!doc || !img || !n_files) {
        fprintf(stderr, "vkgpt2-perfdoc: needs --doc FILE --img DIR and input files (see --help)\n");
        return 2;
    }
    files[n_files] = NULL;
    inputs = files;
    char cerr[1200];
    if (gpt2_out_check(doc, 0, inputs, cerr, sizeof cerr) != 0) {
        fprintf(stderr, "vkgpt2-perfdoc: %s\n", cerr);
        return 1;
    }
    for (int i = 0; i < n_files; i++) {
        size_t len;
        char *t = slurp(files[i], &len), err[256];
        if (!t) {
            fprintf(stderr, "vkgpt2-perfdoc: %s: %s\n", files[i], strerror(errno));
            return 1;
        }
        json_doc *whole = json_parse(t, len, err, sizeof err);
        if (whole) {
            add_doc(whole, file_names[i]);
        } else { /* JSON lines */
            for (char *l = t; *l;) {
                char *e = strchr(l, '\n');
                size_t ll = e ? (size_t)(e - l) : strlen(l);
                if (ll > 1) {
                    json_doc *d = json_parse(l, ll, err, sizeof err);
                    if (!d) {
                        fprintf(stderr, "vkgpt2-perfdoc: %s: %s\n", files[i], err);
                        free(t);
                        return 1;
                    }
                    add_doc(d, file_names[i]);
                }
                l = e ? e + 1 : l + ll;
            }
        }
        free(t);
    }
    /* charts */
    for (int i = 0; i < n_profs; i++) chart_breakdown(img, i);
    series *s = chart_series;
    int ns = 0;
    char key[512], ty[96], wh[160], sz[32], vo[32];
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "ctx")) continue;
        size_name(r, sz, sizeof sz);
        type_desc(r, ty, sizeof ty);
        where_desc(r, wh, sizeof wh);
        vocab_desc(r, vo, sizeof vo);
        snprintf(key, sizeof key, "%s: %s %s%s (%s)", wh, sz, ty, vo, str(r, "model"));
        int k = series_for(s, &ns, key);
        if (k >= 0) add_point(&s[k], num(r, "n_past"), num(r, "decode_ms_per_token"), NULL);
    }
    chart_lines(img, "ctx_sweep.svg", "Decode ms/token against context length",
                "a line per model and backend", "n_past (tokens in the KV cache)", "ms/token", s, ns);
    ns = 0;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (!plotted_decode(r)) continue;
        double med = num(json_get(r, "decode_ms_per_token"), "median");
        size_name(r, sz, sizeof sz);
        type_desc(r, ty, sizeof ty);
        where_desc(r, wh, sizeof wh);
        vocab_desc(r, vo, sizeof vo);
        snprintf(key, sizeof key, "%s: %s models%s", wh, ty, vo);
        int k = series_for(s, &ns, key);
        if (k >= 0 && med > 0) add_point(&s[k], num(r, "weights_bytes") / 1048576.0, 1e3 / med, sz);
    }
    chart_lines(img, "toks_vs_size.svg", "Decode tok/s against model size",
                "a line per backend and weight type; each point named by its GPT-2 size", "weights, MiB",
                "tokens/s", s, ns);
    /* the document: keep everything outside the markers */
    size_t len = 0;
    char *old = slurp(doc, &len);
    const char *b = old ? strstr(old, "<!-- perfdoc:begin -->") : NULL;
    const char *e = b ? strstr(b, "<!-- perfdoc:end -->") : NULL;
    gpt2_out out;
    char derr[1200];
    if (gpt2_out_open(&out, doc, 0, derr, sizeof derr) != 0) {
        fprintf(stderr, "vkgpt2-perfdoc: %s\n", derr);
        free(old);
        return 1;
    }
    FILE *f = out.f;
    if (old && b && e) {
        fwrite(old, 1, (size_t)(b - old), f);
        write_section(f, img_rel);
        e += strlen("<!-- perfdoc:end -->");
        if (*e == '\n') e++;
        fputs(e, f);
    } else {
        if (old) fputs(old, f);
        if (old && len && old[len - 1] != '\n') fputc('\n', f);
        if (!old) fputs("# Performance\n\n", f);
        write_section(f, img_rel);
    }
    free(old);
    if (gpt2_out_close(&out, derr, sizeof derr) != 0) {
        fprintf(stderr, "vkgpt2-perfdoc: %s\n", derr);
        return 1;
    }
    for (int i = 0; i < n_docs; i++) json_free(docs[i]);
    return failed;
}
