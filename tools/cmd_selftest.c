/* cmd_selftest.c - `vkgpt2 selftest`: every kernel variant of a Vulkan device against a float64
 * reference, then synthetic models end to end against the CPU backend (vkg_selftest), as a
 * markdown table or JSON lines; exit 1 when any case fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/json.h"
#include "devtools.h"
#include "vkgpt2.h"

typedef struct out_ctx {
    bool json;    /* JSON lines instead of the table */
    bool verbose; /* -v: every row (the table shows failures and a per-op summary otherwise) */
    int shown;    /* rows printed */
} out_ctx;

/* A markdown table cell: '|' escaped. */
static void cell(const char *s)
{
    for (; *s; s++) {
        if (*s == '|') putchar('\\');
        putchar(*s);
    }
    fputs(" | ", stdout);
}

static void row(void *user, const vkg_selftest_row *r)
{
    out_ctx *o = user;
    if (o->json) {
        printf("{\"kind\": \"selftest\", \"op\": \"%s\", \"variant\": \"%s\", \"type\": \"%s\", \"shape\": ",
               r->op, r->variant, r->type);
        json_write_string(stdout, r->shape, strlen(r->shape));
        printf(", \"max_err\": %.4g, \"tol\": %.4g, \"basis\": ", r->max_err > 1e300 ? 1e300 : r->max_err,
               r->tol);
        json_write_string(stdout, r->basis, strlen(r->basis));
        printf(", \"pass\": %s, \"ms\": %.2f}\n", r->pass ? "true" : "false", r->ms);
    } else {
        printf("| %s | %s | %s | ", r->op, r->variant, r->type);
        cell(r->shape);
        printf("%.3g | %.3g | ", r->max_err, r->tol);
        cell(r->basis);
        printf("%s | %.1f |\n", r->pass ? "pass" : "**FAIL**", r->ms);
    }
    o->shown++;
    fflush(stdout);
}

int cmd_selftest(int argc, char **argv, int first)
{
    vkg_selftest_params p = {0};
    out_ctx o = {0};
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(
                "usage: vkgpt2 selftest [--device D] [--quick] [--json] [--seed S]\n"
                "Checks the Vulkan device's kernels before you trust it. On fresh random inputs (never "
                "zeros),\n"
                "at GPT-2 shapes (124M..1558M) and odd ones, each variant the device can run is compared "
                "with a\n"
                "float64 reference computed on the CPU:\n"
                "  matmul: matvec (with and without subgroup arithmetic), tiled, cooperative matrix (NV, "
                "KHR),\n"
                "          for f32, f16 and the block formats q8_0 q5_1 q5_0 q4_1 q4_0, with bias, gelu and\n"
                "          residual epilogues; layernorm and softmax (subgroup and shared-memory "
                "reductions),\n"
                "          gelu, add, embed, attention prefill and decode (+ reduction) at several n_past "
                "for\n"
                "          f32 and f16 KV caches, argmax, GPU sampling against the CPU sampler;\n"
                "  the kernel-variant guard's own checks (each guarded variant against the plain path);\n"
                "  synthetic models end to end: logits against the CPU backend, greedy ids identical.\n"
                "Tolerances follow each variant's arithmetic, and each row says what its error is relative\n"
                "to: a dot product's error against sum |x*w| (1e-5 in f32 arithmetic; 1e-3 where the\n"
                "cooperative-matrix kernels round x to f16), f16 KV attention 1e-3 of sum p*|v|, f32 1e-5,\n"
                "exact for argmax, at most 1 in 40 draws unlike the CPU sampler's.\n"
                "Prints a table (op, variant, type, shape, max error, tolerance, basis, pass, ms) and exits "
                "1\n"
                "when any case fails, 2 on bad arguments.\n"
                "  --device D   the Vulkan device: " CLI_DEVICE_FORMS "\n"
                "               (see vkgpt2 devices; default: the best one, a CPU device such as\n"
                "               lavapipe included)\n"
                "  --quick      fewer shapes and types (under a minute on a GPU)\n"
                "  --json       one JSON object per case, then a summary object (kind \"selftest_summary\")\n"
                "  --seed S     seed of the random inputs (default: drawn; printed to repeat a run)\n"
                "VKGPT2_EMULATE=... runs it in an emulated device shape (see docs/RELIABILITY.md).");
            return 0;
        }
        if (!strcmp(a, "--json")) {
            o.json = true;
            continue;
        }
        if (!strcmp(a, "--quick")) {
            p.quick = true;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "--device")) {
            /* checked as every command checks it; the engine takes an index as a string too */
            int index = -1;
            const char *name = NULL;
            if (cli_device(a, v, &index, &name)) return 2;
            p.device = v;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || s == 0) {
                fprintf(stderr, "vkgpt2: --seed: '%s' is not a positive whole number\n", v);
                return 2;
            }
            p.seed = s;
        } else {
            fprintf(stderr, "vkgpt2: unknown option '%s' (see vkgpt2 selftest --help)\n", a);
            return 2;
        }
    }
    if (!o.json) {
        printf("| op | variant | type | shape | max err | tol | relative to | result | ms |\n");
        printf("| --- | --- | --- | --- | ---: | ---: | --- | --- | ---: |\n");
    }
    vkg_selftest_summary s;
    char err[1024];
    if (vkg_selftest(&p, row, &o, &s, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: selftest: %s\n", err);
        return 1;
    }
    bool ok = s.n_failed == 0 && s.validation_messages == 0;
    if (o.json) {
        printf("{\"kind\": \"selftest_summary\", \"device\": ");
        json_write_string(stdout, s.device, strlen(s.device));
        printf(", \"driver\": ");
        json_write_string(stdout, s.driver, strlen(s.driver));
        printf(", \"emulated\": \"%s\", \"subgroup_size\": %d, \"seed\": \"%llu\", \"cases\": %d, "
               "\"failed\": %d, "
               "\"validation_messages\": %d, \"total_ms\": %.1f, \"pass\": %s}\n",
               s.emulated, s.subgroup_size, (unsigned long long)s.seed, s.n_cases, s.n_failed,
               s.validation_messages, s.total_ms, ok ? "true" : "false");
    } else {
        printf("\n%s: %d cases on %s (%s%s%s), subgroup size %d, seed %llu, %.1f s\n", ok ? "PASS" : "FAIL",
               s.n_cases, s.device, s.driver, s.emulated[0] ? ", emulating " : "", s.emulated,
               s.subgroup_size, (unsigned long long)s.seed, s.total_ms / 1000);
        if (s.n_failed) printf("%d of them failed\n", s.n_failed);
        if (s.validation_messages) printf("%d Vulkan validation messages\n", s.validation_messages);
    }
    return ok ? 0 : 1;
}
