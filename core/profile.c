/* profile.c - events, per-kernel tables, JSON and Chrome traces (see profile.h). */
#include "profile.h"
#include "clock.h"
#include "outfile.h"
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

double gpt2_prof_now_us(void) { return gpt2_clock_us(); }

gpt2_prof *gpt2_prof_create(void)
{
    gpt2_prof *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->step = -1;
    p->origin_us = gpt2_prof_now_us();
    return p;
}

void gpt2_prof_free(gpt2_prof *p)
{
    if (!p) return;
    free(p->ev);
    free(p->steps);
    free(p);
}

void gpt2_prof_add(gpt2_prof *p, gpt2_prof_track track, const char *name, double t0_us, double dur_us,
                   double bytes, double flops)
{
    if (!p) return;
    if (p->n_ev == p->cap_ev) {
        size_t cap = p->cap_ev ? p->cap_ev * 2 : 1024;
        gpt2_prof_event *e = realloc(p->ev, cap * sizeof *e);
        if (!e) return; /* a profile with holes rather than a failed run */
        p->ev = e;
        p->cap_ev = cap;
    }
    gpt2_prof_event *e = &p->ev[p->n_ev++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->track = track;
    e->step = p->step;
    e->t0_us = t0_us;
    e->dur_us = dur_us > 0 ? dur_us : 0;
    e->bytes = bytes;
    e->flops = flops;
    e->busy_us = e->dur_us;
}

void gpt2_prof_step_begin(gpt2_prof *p, int n_tokens, int n_past)
{
    if (!p) return;
    if (p->n_steps == p->cap_steps) {
        int cap = p->cap_steps ? p->cap_steps * 2 : 256;
        gpt2_prof_step *s = realloc(p->steps, (size_t)cap * sizeof *s);
        if (!s) return;
        p->steps = s;
        p->cap_steps = cap;
    }
    p->step = p->n_steps++;
    p->steps[p->step] = (gpt2_prof_step){.n_tokens = n_tokens, .n_past = n_past, .t0_us = gpt2_prof_now_us()};
}

void gpt2_prof_step_end(gpt2_prof *p)
{
    if (!p || p->step < 0) return;
    gpt2_prof_step *s = &p->steps[p->step];
    s->dur_us = gpt2_prof_now_us() - s->t0_us;
    p->step = -1;
}

/* ---- costs of graph nodes (CPU backend, CPU nodes of the Vulkan backend) ---- */

void gpt2_node_cost(const gpt2_hparams *hp, const gpt2_node *nd, int n, int n_past, gpt2_dtype kv_type,
                    double *bytes, double *flops)
{
    double E = hp->n_embd, N = n, kvs = (double)gpt2_dtype_size(kv_type);
    double b = 0, f = 0;
    switch (nd->op) {
    case GPT2_OP_EMBED:
        b = N * E * ((double)gpt2_dtype_size(nd->w->type) + (double)gpt2_dtype_size(nd->b->type) + 4);
        f = N * E;
        break;
    case GPT2_OP_LAYERNORM:
        b = N * E * 8 + E * 8;
        f = N * E * 8;
        break;
    case GPT2_OP_MATMUL: {
        double rows = (double)nd->w->ne[1], cols = (double)nd->w->ne[0];
        double r = nd->last_row_only ? 1 : N;
        b = (double)nd->w->nbytes + r * cols * 4 + r * rows * ((nd->epilogue & GPT2_EPI_RESIDUAL) ? 8 : 4) +
            ((nd->epilogue & GPT2_EPI_BIAS) ? rows * 4 : 0);
        f = 2 * r * rows * cols;
        break;
    }
    case GPT2_OP_ATTENTION: {
        /* Q, K, V in, out; K/V of the new tokens stored; every cached K/V row read once. Token t
         * attends to n_past + t + 1 keys, 4 flops per key and dimension (q.k and p.v). */
        double keys = (double)n_past + N;
        b = N * E * 16 + N * E * 2 * kvs + keys * E * 2 * kvs;
        f = 4 * E * (N * n_past + N * (N + 1) / 2);
        break;
    }
    default: break;
    }
    *bytes = b;
    *flops = f;
}

void gpt2_node_family(const gpt2_node *nd, char *out, size_t len)
{
    const char *dot = strchr(nd->label, '.');
    if (nd->op == GPT2_OP_MATMUL)
        snprintf(out, len, "matmul.%s", dot ? dot + 1 : nd->label);
    else
        snprintf(out, len, "%s", gpt2_op_name(nd->op));
}

/* ---- aggregation ---- */

static bool is_kernel(const gpt2_prof_event *e) { return e->track == PROF_GPU || e->track == PROF_CPU; }

static int phase_of(const gpt2_prof *p, int step)
{
    if (step < 0 || step >= p->n_steps) return -1;
    return p->steps[step].n_tokens == 1 ? 0 : 1;
}

void gpt2_prof_phase_sums(const gpt2_prof *p, int phase, gpt2_prof_phase *out)
{
    memset(out, 0, sizeof *out);
    out->name = phase == 0 ? "decode" : "prompt";
    double *lo = calloc((size_t)p->n_steps + 1, sizeof *lo), *hi = calloc((size_t)p->n_steps + 1, sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return;
    }
    for (size_t i = 0; i < p->n_ev; i++) {
        const gpt2_prof_event *e = &p->ev[i];
        if (!is_kernel(e) || phase_of(p, e->step) != phase) continue;
        out->kernel_us += e->dur_us;
        double a = e->t0_us, z = e->t0_us + e->dur_us;
        if (lo[e->step] == 0 || a < lo[e->step]) lo[e->step] = a;
        if (z > hi[e->step]) hi[e->step] = z;
    }
    for (int s = 0; s < p->n_steps; s++) {
        if (phase_of(p, s) != phase) continue;
        out->steps++;
        out->tokens += p->steps[s].n_tokens;
        out->wall_us += p->steps[s].dur_us;
        if (hi[s] > lo[s]) out->span_us += hi[s] - lo[s];
    }
    free(lo);
    free(hi);
}

typedef struct kstat {
    char name[32];
    gpt2_prof_track track;
    long calls;
    double us, busy, bytes, flops;
} kstat;

/* Kernel rows of one phase, largest total first. Returns the count (*out malloc'd). */
static int kernel_rows(const gpt2_prof *p, int phase, kstat **out)
{
    kstat *k = NULL;
    int n = 0, cap = 0;
    for (size_t i = 0; i < p->n_ev; i++) {
        const gpt2_prof_event *e = &p->ev[i];
        if (!is_kernel(e) || phase_of(p, e->step) != phase) continue;
        int j = 0;
        while (j < n && (k[j].track != e->track || strcmp(k[j].name, e->name))) j++;
        if (j == n) {
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                kstat *t = realloc(k, (size_t)cap * sizeof *t);
                if (!t) break;
                k = t;
            }
            memset(&k[n], 0, sizeof k[n]);
            snprintf(k[n].name, sizeof k[n].name, "%s", e->name);
            k[n].track = e->track;
            n++;
        }
        k[j].calls++;
        k[j].us += e->dur_us;
        k[j].busy += e->busy_us;
        k[j].bytes += e->bytes;
        k[j].flops += e->flops;
    }
    for (int a = 1; a < n; a++) /* insertion sort, by time descending */
        for (int b = a; b > 0 && k[b].us > k[b - 1].us; b--) {
            kstat t = k[b];
            k[b] = k[b - 1];
            k[b - 1] = t;
        }
    *out = k;
    return n;
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0; }

void gpt2_prof_print(const gpt2_prof *p, FILE *f)
{
    for (int ph = 0; ph < 2; ph++) {
        gpt2_prof_phase s;
        gpt2_prof_phase_sums(p, ph, &s);
        if (!s.steps) continue;
        kstat *k;
        int n = kernel_rows(p, ph, &k);
        fprintf(f, "\n### profile: %s, %d step%s, %d token%s (%s on %s)\n\n", s.name, s.steps,
                s.steps == 1 ? "" : "s", s.tokens, s.tokens == 1 ? "" : "s", p->backend, p->device);
        fprintf(f,
                "| kernel | where | calls | total ms | busy ms | mean us | share | GB/s | GFLOP/s | %% peak "
                "BW | %% peak FLOP/s |\n");
        fprintf(f, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (int i = 0; i < n; i++) {
            double gbs = safe_div(k[i].bytes, k[i].busy * 1e3), gfl = safe_div(k[i].flops, k[i].busy * 1e3);
            fprintf(f, "| %s | %s | %ld | %.3f | %.3f | %.1f | %.1f%% | %.2f | %.2f | %.1f | %.1f |\n",
                    k[i].name, k[i].track == PROF_GPU ? "gpu" : "cpu", k[i].calls, k[i].us / 1e3,
                    k[i].busy / 1e3, safe_div(k[i].us, (double)k[i].calls),
                    100 * safe_div(k[i].us, s.kernel_us), gbs, gfl, 100 * safe_div(gbs, p->peak_gbs),
                    100 * safe_div(gfl, p->peak_gflops));
        }
        double per = safe_div(s.kernel_us, s.steps) / 1e3;
        fprintf(f, "| **all** | | | %.3f | | | 100%% | | | | |\n\n", s.kernel_us / 1e3);
        fprintf(f,
                "per step: kernels %.3f ms, first kernel start to last kernel end %.3f ms (kernels %.1f%% of "
                "it), "
                "host wall %.3f ms\n",
                per, safe_div(s.span_us, s.steps) / 1e3, 100 * safe_div(s.kernel_us, s.span_us),
                safe_div(s.wall_us, s.steps) / 1e3);
        free(k);
    }
    fprintf(f, "peaks: %.1f GB/s, %.1f GFLOP/s (%s)\n", p->peak_gbs, p->peak_gflops,
            p->peak_note[0] ? p->peak_note : "not measured");
}

void gpt2_prof_json(const gpt2_prof *p, FILE *f)
{
    fputs("{\"backend\": ", f);
    json_write_string(f, p->backend, strlen(p->backend));
    fputs(", \"device\": ", f);
    json_write_string(f, p->device, strlen(p->device));
    fprintf(f, ", \"peak_gbs\": %.3f, \"peak_gflops\": %.3f, \"peak_note\": ", p->peak_gbs, p->peak_gflops);
    json_write_string(f, p->peak_note, strlen(p->peak_note));
    fputs(", \"phases\": [", f);
    int written = 0;
    for (int ph = 0; ph < 2; ph++) {
        gpt2_prof_phase s;
        gpt2_prof_phase_sums(p, ph, &s);
        if (!s.steps) continue;
        kstat *k;
        int n = kernel_rows(p, ph, &k);
        fprintf(
            f,
            "%s{\"phase\": \"%s\", \"steps\": %d, \"tokens\": %d, \"kernel_ms\": %.4f, \"span_ms\": %.4f, "
            "\"wall_ms\": %.4f, \"kernels\": [",
            written++ ? ", " : "", s.name, s.steps, s.tokens, s.kernel_us / 1e3, s.span_us / 1e3,
            s.wall_us / 1e3);
        for (int i = 0; i < n; i++) {
            double gbs = safe_div(k[i].bytes, k[i].busy * 1e3), gfl = safe_div(k[i].flops, k[i].busy * 1e3);
            fprintf(f, "%s{\"name\": ", i ? ", " : "");
            json_write_string(f, k[i].name, strlen(k[i].name));
            fprintf(
                f,
                ", \"where\": \"%s\", \"calls\": %ld, \"total_ms\": %.4f, \"busy_ms\": %.4f, \"mean_us\": "
                "%.3f, \"share\": %.4f, "
                "\"bytes\": %.0f, \"flops\": %.0f, \"gbs\": %.3f, \"gflops\": %.3f, \"peak_bw_share\": %.4f, "
                "\"peak_flops_share\": %.4f}",
                k[i].track == PROF_GPU ? "gpu" : "cpu", k[i].calls, k[i].us / 1e3, k[i].busy / 1e3,
                safe_div(k[i].us, (double)k[i].calls), safe_div(k[i].us, s.kernel_us), k[i].bytes, k[i].flops,
                gbs, gfl, safe_div(gbs, p->peak_gbs), safe_div(gfl, p->peak_gflops));
        }
        fputs("]}", f);
        free(k);
    }
    fputs("]}", f);
}

/* ---- Chrome trace events ---- */

int gpt2_prof_trace(const gpt2_prof *p, const char *path, unsigned oflags, char *err, size_t errlen)
{
    gpt2_out o;
    int rc = gpt2_out_open(&o, path, oflags, err, errlen);
    if (rc != 0) return rc;
    FILE *f = o.f;
    /* pid 1: the host (tid 1 the main thread: steps, sampling, tokenize; tid 2 submissions; tid 3
     * CPU nodes); pid 2: the device (tid 1 its queue). */
    fputs("{\"displayTimeUnit\": \"ms\", \"otherData\": {\"backend\": ", f);
    json_write_string(f, p->backend, strlen(p->backend));
    fputs(", \"device\": ", f);
    json_write_string(f, p->device, strlen(p->device));
    fputs("}, \"traceEvents\": [\n", f);
    fputs("{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": 1, \"tid\": 1, \"args\": {\"name\": "
          "\"host\"}},\n"
          "{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": 1, \"tid\": 1, \"args\": {\"name\": "
          "\"main\"}},\n"
          "{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": 1, \"tid\": 2, \"args\": {\"name\": "
          "\"submits\"}},\n"
          "{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": 1, \"tid\": 3, \"args\": {\"name\": \"CPU "
          "nodes\"}},\n"
          "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": 2, \"tid\": 1, \"args\": {\"name\": "
          "\"GPU\"}},\n",
          f);
    fputs("{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": 2, \"tid\": 1, \"args\": {\"name\": ", f);
    json_write_string(f, p->device, strlen(p->device));
    fputs("}}", f);
    for (int s = 0; s < p->n_steps; s++) {
        const gpt2_prof_step *st = &p->steps[s];
        fprintf(f,
                ",\n{\"ph\": \"X\", \"cat\": \"step\", \"name\": \"%s token %d\", \"pid\": 1, \"tid\": 1, "
                "\"ts\": %.3f, \"dur\": %.3f, \"args\": {\"step\": %d, \"token\": %d, \"n_tokens\": %d}}",
                st->n_tokens == 1 ? "decode" : "prompt", st->n_past, st->t0_us - p->origin_us, st->dur_us, s,
                st->n_past, st->n_tokens);
    }
    static const char *const cat[] = {"dispatch", "submit", "cpu", "host"};
    static const int pid[] = {2, 1, 1, 1}, tid[] = {1, 2, 3, 1};
    for (size_t i = 0; i < p->n_ev; i++) {
        const gpt2_prof_event *e = &p->ev[i];
        fprintf(f, ",\n{\"ph\": \"X\", \"cat\": \"%s\", \"name\": ", cat[e->track]);
        json_write_string(f, e->name, strlen(e->name));
        fprintf(f, ", \"pid\": %d, \"tid\": %d, \"ts\": %.3f, \"dur\": %.3f, \"args\": {\"step\": %d",
                pid[e->track], tid[e->track], e->t0_us - p->origin_us, e->busy_us, e->step);
        if (e->track == PROF_GPU) fprintf(f, ", \"slot_us\": %.3f", e->dur_us);
        if (e->step >= 0 && e->step < p->n_steps) fprintf(f, ", \"token\": %d", p->steps[e->step].n_past);
        if (e->bytes > 0 || e->flops > 0)
            fprintf(f, ", \"bytes\": %.0f, \"flops\": %.0f", e->bytes, e->flops);
        fputs("}}", f);
    }
    fputs("\n]}\n", f);
    return gpt2_out_close(&o, err, errlen);
}
