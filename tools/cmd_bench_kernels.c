/* cmd_bench_kernels.c - `vkgpt2 bench kernels`: every op at the shapes of GPT-2 sizes on each
 * backend (vkg_bench_kernels), as a markdown table, JSON lines (--json) or CSV (--csv). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/json.h"
#include "devtools.h"
#include "vkgpt2.h"

typedef struct out_ctx {
    int fmt;
} out_ctx; /* 0 markdown, 1 JSON lines, 2 CSV */

static void row(void *user, const vkg_bench_row *r)
{
    out_ctx *o = user;
    double spread = r->median_ms > 0 ? 100.0 * (r->max_ms - r->min_ms) / r->median_ms : 0;
    double pb = r->peak_gbs > 0 ? 100 * r->gbs / r->peak_gbs : 0,
           pf = r->peak_gflops > 0 ? 100 * r->gflops / r->peak_gflops : 0;
    if (o->fmt == 1) {
        printf("{\"kind\": \"kernel\", \"backend\": \"%s\", \"device\": ", r->backend);
        json_write_string(stdout, r->device, strlen(r->device));
        printf(", \"size\": \"%s\", \"weight_type\": \"%s\", \"op\": \"%s\", \"repeats\": %d, \"median_ms\": "
               "%.5f, "
               "\"min_ms\": %.5f, \"max_ms\": %.5f, \"bytes\": %.0f, \"flops\": %.0f, \"gbs\": %.3f, "
               "\"gflops\": %.3f, "
               "\"peak_gbs\": %.3f, \"peak_gflops\": %.3f}\n",
               r->size, r->weight_type, r->op, r->repeats, r->median_ms, r->min_ms, r->max_ms, r->bytes,
               r->flops, r->gbs, r->gflops, r->peak_gbs, r->peak_gflops);
    } else if (o->fmt == 2) {
        printf("%s,\"%s\",%s,%s,\"%s\",%d,%.5f,%.5f,%.5f,%.0f,%.0f,%.3f,%.3f,%.1f,%.1f\n", r->backend,
               r->device, r->size, r->weight_type, r->op, r->repeats, r->median_ms, r->min_ms, r->max_ms,
               r->bytes, r->flops, r->gbs, r->gflops, pb, pf);
    } else {
        printf("| %s | %s | %s | %s | %.4f | %.1f%% | %.2f | %.2f | %.1f | %.1f |\n", r->backend, r->size,
               r->weight_type, r->op, r->median_ms, spread, r->gbs, r->gflops, pb, pf);
    }
    fflush(stdout);
}

/* --backend here: one backend (bit 1 the CPU, bit 2 Vulkan) or both. */
static const cli_choice backends[] = {{"cpu", 1}, {"vulkan", 2}, {"all", 3}, {NULL, 0}};

int cmd_bench_kernels(int argc, char **argv, int first)
{
    vkg_bench_kernels_params p = {
        .backends = 3, .sizes = "124M", .weight_type = "f16", .repeat = 5, .warmup = 2, .device = -1};
    out_ctx o = {0};
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(
                "usage: vkgpt2 bench kernels [--backend cpu|vulkan|all] [--sizes 124M,355M,774M,1558M]\n"
                "                            [--type f16|f32] [-r REPEATS] [--warmup N] [-t THREADS] "
                "[--device D]\n"
                "                            [--json|--csv]\n"
                "Times every GPT-2 op at the shapes of each size (random weights): layernorm, embed, each "
                "weight\n"
                "matrix as matvec (n=1) and tiled (n=64), fc with its gelu epilogue, attention decode at "
                "n_past\n"
                "0/256/1023 and prefill (n=64), argmax, GPU sampling. Median time, spread (max-min over the\n"
                "median), GB/s and GFLOP/s at the median and their share of the backend's measured peaks.\n"
                "Defaults: 124M, f16, both backends, 2 warm-up + 5 timed runs. CPU times are host clocks,\n"
                "Vulkan times device timestamps (summed over an op's dispatches).\n"
                "  --device D   the Vulkan device: " CLI_DEVICE_FORMS "\n"
                "               (see vkgpt2 devices; default: the best one)");
            return 0;
        }
        if (!strcmp(a, "--json")) {
            o.fmt = 1;
            continue;
        }
        if (!strcmp(a, "--csv")) {
            o.fmt = 2;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        int c;
        if (!strcmp(a, "--backend")) {
            if (cli_choose(a, v, backends, &p.backends)) return 2;
        } else if (!strcmp(a, "--sizes"))
            p.sizes = v;
        else if (!strcmp(a, "--type")) {
            if (cli_choose(a, v, cli_kv_types, &c)) return 2; /* the float types: f16 or f32 */
            p.weight_type = v;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repeat")) {
            if (cli_int(a, v, 1, 10000, &p.repeat)) return 2;
        } else if (!strcmp(a, "--warmup")) {
            if (cli_int(a, v, 0, 10000, &p.warmup)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (cli_int(a, v, 1, 1024, &p.n_threads)) return 2;
        } else if (!strcmp(a, "--device")) {
            if (cli_device(a, v, &p.device, &p.device_name)) return 2;
        } else {
            fprintf(stderr, "vkgpt2: unknown option '%s' (see vkgpt2 bench kernels --help)\n", a);
            return 2;
        }
    }
    if (o.fmt == 0) {
        printf("| backend | size | type | op | median ms | spread | GB/s | GFLOP/s | %% peak BW | %% peak "
               "FLOP/s |\n");
        printf("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    } else if (o.fmt == 2) {
        printf("backend,device,size,weight_type,op,repeats,median_ms,min_ms,max_ms,bytes,flops,gbs,gflops,"
               "peak_bw_pct,peak_flops_pct\n");
    }
    char err[1024];
    if (vkg_bench_kernels(&p, row, &o, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return 1;
    }
    return 0;
}
