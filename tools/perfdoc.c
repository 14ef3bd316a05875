/* perfdoc.c - vkgpt2-perfdoc: turns benchmark JSON into the generated part of docs/PERFORMANCE.md
 * and SVG charts (docs/PROFILING.md has the recipe).
 *
 *     vkgpt2-perfdoc --doc docs/PERFORMANCE.md --img docs/img FILE...
 *
 * Each FILE is JSON lines from `vkgpt2 bench ... --json` (rows with "kind": "decode", "ctx" or
 * "kernel") or the object of `vkgpt2 generate --profile --json` (its "profile"). Written:
 *   IMG/decode_breakdown_<backend>.svg  per-kernel share of a decode step (from profiles)
 *   IMG/ctx_sweep.svg                   decode ms/token against n_past (ctx rows)
 *   IMG/toks_vs_size.svg                decode tok/s against weight bytes (decode rows)
 * and the tables between <!-- perfdoc:begin --> and <!-- perfdoc:end --> in DOC (appended with the
 * markers when the file has none; everything outside them is left as it is). Every file is written
 * to a temporary and renamed into place (gpt2/outfile.h); an existing chart is replaced only with
 * --force, DOC is always edited (that is its purpose), and no output may be an input FILE.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2/json.h"
#include "gpt2/outfile.h"

#define MAXF 64
static json_doc *docs[4096];
static int n_docs;
static const char *prof_src[MAXF];
static unsigned chart_flags = GPT2_OUT_NO_REPLACE; /* --force clears it */
static const char *const *inputs;                  /* the input FILEs (NULL-terminated) */
static gpt2_out chart;                             /* the chart being written */
static int failed;                                 /* a chart could not be written */
static const json_value *profs[MAXF];
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

static void add_doc(json_doc *d, const char *path)
{
    if (n_docs == (int)(sizeof docs / sizeof *docs)) return;
    docs[n_docs++] = d;
    const json_value *p = json_get(json_root(d), "profile");
    if (p && p->type == JSON_OBJECT && n_profs < MAXF) {
        prof_src[n_profs] = path;
        profs[n_profs++] = p;
    }
}

/* ---- SVG ---- */

static const char *colors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"};

static FILE *svg_open(const char *dir, const char *name, int w, int h, const char *title)
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
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", w, h);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n", w / 2, title);
    return f;
}

/* Puts the chart in place. */
static void svg_close(void)
{
    char err[1200];
    if (gpt2_out_close(&chart, err, sizeof err) != 0) {
        fprintf(stderr, "vkgpt2-perfdoc: %s\n", err);
        failed = 1;
    }
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* Horizontal bars: the decode kernels of one profile, by share of the step. */
static void chart_breakdown(const char *dir, const json_value *prof)
{
    const json_value *ph = json_get(prof, "phases"), *dec = NULL;
    for (size_t i = 0; ph && i < ph->len; i++)
        if (!strcmp(str(ph->items[i], "phase"), "decode")) dec = ph->items[i];
    if (!dec) return;
    const json_value *ks = json_get(dec, "kernels");
    int n = ks ? (int)ks->len : 0, h = 60 + 24 * n;
    char name[128], title[512];
    snprintf(name, sizeof name, "decode_breakdown_%s.svg", str(prof, "backend"));
    double step = num(dec, "steps") > 0 ? num(dec, "kernel_ms") / num(dec, "steps") : 0;
    snprintf(title, sizeof title, "Decode step by kernel: %s on %s (%.2f ms/step)", str(prof, "backend"),
             str(prof, "device"), step);
    FILE *f = svg_open(dir, name, 760, h, title);
    if (!f) return;
    for (int i = 0; i < n; i++) {
        const json_value *k = ks->items[i];
        double share = num(k, "share");
        int y = 40 + 24 * i, bw = (int)(share * 420);
        fprintf(f, "<text x=\"175\" y=\"%d\" text-anchor=\"end\">", y + 14);
        xml_text(f, str(k, "name"));
        fprintf(f, "</text>\n<rect x=\"180\" y=\"%d\" width=\"%d\" height=\"18\" fill=\"%s\"/>\n", y, bw > 1 ? bw : 1,
                colors[i % 8]);
        fprintf(f, "<text x=\"%d\" y=\"%d\">%.1f%% (%.3f ms/step, %.2f GB/s)</text>\n", 186 + bw, y + 14, 100 * share,
                num(dec, "steps") > 0 ? num(k, "total_ms") / num(dec, "steps") : 0, num(k, "gbs"));
    }
    fputs("</svg>\n", f);
    svg_close();
}

/* Series of (x, y) points drawn as lines, one per key. */
typedef struct series { char key[160]; double x[512], y[512]; int n; } series;

static void chart_lines(const char *dir, const char *file, const char *title, const char *xl, const char *yl,
                        series *s, int ns, bool logx)
{
    double x0 = 1e300, x1 = -1e300, y1 = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            double x = logx ? log10(s[i].x[j]) : s[i].x[j];
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (s[i].y[j] > y1) y1 = s[i].y[j];
        }
    if (!ns || x1 < x0) return;
    if (x1 == x0) { x0 -= 1; x1 += 1; }
    y1 *= 1.1;
    if (y1 <= 0) y1 = 1;
    int W = 760, H = 420, L = 70, R = 230, T = 40, B = 50;
    FILE *f = svg_open(dir, file, W, H, title);
    if (!f) return;
    int pw = W - L - R, phh = H - T - B;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T + phh, L + pw, T + phh);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, T + phh);
    for (int t = 0; t <= 4; t++) {
        double yv = y1 * t / 4, xv = x0 + (x1 - x0) * t / 4;
        int py = T + phh - (int)(phh * t / 4.0), px = L + (int)(pw * t / 4.0);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>\n", L - 4, py + 4, yv);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", L, py, L + pw, py);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.3g</text>\n", px, T + phh + 16,
                logx ? pow(10, xv) : xv);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, H - 12, xl);
    fprintf(f, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">%s</text>\n", T + phh / 2,
            T + phh / 2, yl);
    for (int i = 0; i < ns; i++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[i % 8]);
        for (int j = 0; j < s[i].n; j++) {
            double x = logx ? log10(s[i].x[j]) : s[i].x[j];
            fprintf(f, "%.1f,%.1f ", L + pw * (x - x0) / (x1 - x0), T + phh - phh * s[i].y[j] / y1);
        }
        fputs("\"/>\n", f);
        for (int j = 0; j < s[i].n; j++) {
            double x = logx ? log10(s[i].x[j]) : s[i].x[j];
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", L + pw * (x - x0) / (x1 - x0),
                    T + phh - phh * s[i].y[j] / y1, colors[i % 8]);
        }
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">", L + pw + 12,
                T + 18 * i, colors[i % 8], L + pw + 28, T + 18 * i + 11);
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

static void add_point(series *s, double x, double y)
{
    if (s->n < 512) { s->x[s->n] = x; s->y[s->n] = y; s->n++; }
}

/* ---- the markdown section ---- */

static void write_section(FILE *f, const char *img_rel)
{
    fputs("<!-- perfdoc:begin -->\n<!-- Generated by vkgpt2-perfdoc from benchmark JSON; edits here are overwritten. -->\n\n", f);
    if (n_profs) {
        fputs("### Decode step by kernel\n\n", f);
        for (int i = 0; i < n_profs; i++) {
            const json_value *p = profs[i], *ph = json_get(p, "phases");
            fprintf(f, "![decode breakdown, %s](%s/decode_breakdown_%s.svg)\n\n", str(p, "backend"), img_rel, str(p, "backend"));
            for (size_t k = 0; ph && k < ph->len; k++) {
                const json_value *q = ph->items[k];
                if (strcmp(str(q, "phase"), "decode")) continue;
                double steps = num(q, "steps");
                fprintf(f, "%s on %s, %.0f decode steps: kernels %.3f ms/step (peaks %.1f GB/s, %.1f GFLOP/s)\n\n",
                        str(p, "backend"), str(p, "device"), steps, steps > 0 ? num(q, "kernel_ms") / steps : 0,
                        num(p, "peak_gbs"), num(p, "peak_gflops"));
                fputs("| kernel | calls/step | ms/step | share | GB/s | GFLOP/s | % peak BW |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n", f);
                const json_value *ks = json_get(q, "kernels");
                for (size_t j = 0; ks && j < ks->len; j++) {
                    const json_value *r = ks->items[j];
                    fprintf(f, "| %s | %.0f | %.3f | %.1f%% | %.2f | %.2f | %.1f |\n", str(r, "name"),
                            steps > 0 ? num(r, "calls") / steps : 0, steps > 0 ? num(r, "total_ms") / steps : 0,
                            100 * num(r, "share"), num(r, "gbs"), num(r, "gflops"), 100 * num(r, "peak_bw_share"));
                }
                fputs("\n", f);
            }
        }
    }
    bool any = false;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "decode")) continue;
        if (!any) {
            fprintf(f, "### Decode and prompt speed\n\n![tok/s against model size](%s/toks_vs_size.svg)\n\n", img_rel);
            fputs("| model | backend | device | type | threads | weights MiB | decode ms/token (median, min-max) | tok/s | prompt tok/s | weights GB/s |\n"
                  "| --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |\n", f);
            any = true;
        }
        const json_value *dm = json_get(r, "decode_ms_per_token");
        double med = num(dm, "median");
        fprintf(f, "| %s | %s | %s | %s | %.0f | %.1f | %.2f (%.2f-%.2f) | %.1f | %.1f | %.2f |\n", str(r, "model"),
                str(r, "backend"), str(r, "device"), str(r, "weight_type"), num(r, "threads"),
                num(r, "weights_bytes") / 1048576.0, med, num(dm, "min"), num(dm, "max"), med > 0 ? 1e3 / med : 0,
                num(r, "prompt_tok_s"), num(r, "weights_gbs"));
    }
    if (any) fputs("\n", f);
    any = false;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "ctx")) continue;
        if (!any) {
            fprintf(f, "### Decode against context length\n\n![ms/token against n_past](%s/ctx_sweep.svg)\n\n", img_rel);
            fputs("| model | backend | n_past | decode ms/token |\n| --- | --- | ---: | ---: |\n", f);
            any = true;
        }
        fprintf(f, "| %s | %s | %.0f | %.3f |\n", str(r, "model"), str(r, "backend"), num(r, "n_past"),
                num(r, "decode_ms_per_token"));
    }
    if (any) fputs("\n", f);
    any = false;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        if (strcmp(str(r, "kind"), "kernel")) continue;
        if (!any) {
            fputs("### Kernels at GPT-2 shapes\n\n| backend | size | type | op | median ms | spread | GB/s | GFLOP/s | % peak BW | % peak FLOP/s |\n"
                  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n", f);
            any = true;
        }
        double med = num(r, "median_ms"), pb = num(r, "peak_gbs"), pf = num(r, "peak_gflops");
        fprintf(f, "| %s | %s | %s | %s | %.4f | %.0f%% | %.2f | %.2f | %.1f | %.1f |\n", str(r, "backend"), str(r, "size"),
                str(r, "weight_type"), str(r, "op"), med, med > 0 ? 100 * (num(r, "max_ms") - num(r, "min_ms")) / med : 0,
                num(r, "gbs"), num(r, "gflops"), pb > 0 ? 100 * num(r, "gbs") / pb : 0, pf > 0 ? 100 * num(r, "gflops") / pf : 0);
    }
    if (any) fputs("\n", f);
    fputs("<!-- perfdoc:end -->\n", f);
}

int main(int argc, char **argv)
{
    const char *doc = NULL, *img = NULL, *img_rel = "img";
    int first_file = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--doc") && i + 1 < argc) doc = argv[++i];
        else if (!strcmp(argv[i], "--img") && i + 1 < argc) img = argv[++i];
        else if (!strcmp(argv[i], "--img-link") && i + 1 < argc) img_rel = argv[++i];
        else if (!strcmp(argv[i], "--force")) chart_flags = 0;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: vkgpt2-perfdoc --doc docs/PERFORMANCE.md --img docs/img [--img-link img] [--force] FILE.json...\n"
                 "FILEs: JSON lines of `vkgpt2 bench ... --json`, or `vkgpt2 generate --profile --json` output.\n"
                 "Writes the SVG charts into --img and the tables between <!-- perfdoc:begin --> and\n"
                 "<!-- perfdoc:end --> in --doc (the rest of the file is kept). Existing charts are replaced\n"
                 "only with --force. Files are written to a temporary and renamed into place.");
            return 0;
        } else { first_file = i; break; }
    }
    if (!doc || !img || first_file >= argc) {
        fprintf(stderr, "vkgpt2-perfdoc: needs --doc FILE --img DIR and input files (see --help)\n");
        return 2;
    }
    inputs = (const char *const *)argv + first_file; /* argv[argc] is NULL */
    char cerr[1200];
    if (gpt2_out_check(doc, 0, inputs, cerr, sizeof cerr) != 0) {
        fprintf(stderr, "vkgpt2-perfdoc: %s\n", cerr);
        return 1;
    }
    for (int i = first_file; i < argc; i++) {
        size_t len;
        char *t = slurp(argv[i], &len), err[256];
        if (!t) { fprintf(stderr, "vkgpt2-perfdoc: %s: %s\n", argv[i], strerror(errno)); return 1; }
        json_doc *whole = json_parse(t, len, err, sizeof err);
        if (whole) {
            add_doc(whole, argv[i]);
        } else { /* JSON lines */
            for (char *l = t; *l;) {
                char *e = strchr(l, '\n');
                size_t ll = e ? (size_t)(e - l) : strlen(l);
                if (ll > 1) {
                    json_doc *d = json_parse(l, ll, err, sizeof err);
                    if (!d) { fprintf(stderr, "vkgpt2-perfdoc: %s: %s\n", argv[i], err); free(t); return 1; }
                    add_doc(d, argv[i]);
                }
                l = e ? e + 1 : l + ll;
            }
        }
        free(t);
    }
    /* charts */
    for (int i = 0; i < n_profs; i++) chart_breakdown(img, profs[i]);
    series s[16];
    int ns = 0;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        char key[160];
        if (!strcmp(str(r, "kind"), "ctx")) {
            snprintf(key, sizeof key, "%s, %s %s", str(r, "backend"), str(r, "model"), str(r, "weight_type"));
            int k = series_for(s, &ns, key);
            if (k >= 0) add_point(&s[k], num(r, "n_past"), num(r, "decode_ms_per_token"));
        }
    }
    chart_lines(img, "ctx_sweep.svg", "Decode ms/token against context length", "n_past (tokens in the KV cache)",
                "ms/token", s, ns, false);
    ns = 0;
    for (int d = 0; d < n_docs; d++) {
        const json_value *r = json_root(docs[d]);
        char key[160];
        if (!strcmp(str(r, "kind"), "decode") && !strcmp(str(r, "mode"), "replay")) {
            double med = num(json_get(r, "decode_ms_per_token"), "median");
            snprintf(key, sizeof key, "%s %.0f thr, %s", str(r, "backend"), num(r, "threads"), str(r, "weight_type"));
            int k = series_for(s, &ns, key);
            if (k >= 0 && med > 0) add_point(&s[k], num(r, "weights_bytes") / 1048576.0, 1e3 / med);
        }
    }
    chart_lines(img, "toks_vs_size.svg", "Decode tok/s against model size", "weights (MiB, log scale)", "tokens/s", s, ns,
                true);
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
