/* cmd_kbench.c - `vkgpt2 kbench SHADER.comp ...`: compile a compute shader at run time, run it on a
 * grid over fresh buffers, report its time (vkg_kbench in devtools.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/json.h"
#include "cli_out.h"
#include "devtools.h"
#include "vkgpt2.h"

#define MAX_BUF 16
#define MAX_WORDS 32

static const char kbench_usage[] =
    "usage: vkgpt2 kbench SHADER.comp --grid X[,Y[,Z]] [--buffer SIZE[:INIT]]... [--spec ID=VAL]...\n"
    "                     [--push VAL]... [--bytes N] [--flops N] [--repeat N] [--warmup N]\n"
    "                     [--dump I:FILE] [--force] [--device D] [--json]\n"
    "Compiles SHADER.comp (GLSL compute, self-contained: no #include) with glslang at run time,\n"
    "runs it on X x Y x Z workgroups and reports min / median / mean / max time from device\n"
    "timestamps, and with --bytes / --flops (per run) GB/s and GFLOP/s at the median.\n"
    "\n"
    "ABI: no descriptor sets. The push-constant block holds, in this order, the 64-bit device\n"
    "address of every --buffer (declare them as GL_EXT_buffer_reference types or uint64_t), then\n"
    "every --push value as one 32-bit word (std430 offsets, 128 bytes at most). Example:\n"
    "    layout(buffer_reference, std430) buffer F32 { float v[]; };\n"
    "    layout(push_constant) uniform Push { F32 x; F32 y; uint n; float a; } pc;\n"
    "    vkgpt2 kbench saxpy.comp --grid 4096 --buffer 4M:rand --buffer 4M:1.0 --push 1048576 --push 2.0f\n"
    "\n"
    "  --buffer SIZE[:INIT]  bytes (suffix K, M, G: KiB, MiB, GiB); INIT zero (default), rand\n"
    "                        (floats in [-1, 1)), a float constant (1.5, 2f) or a uint32 one (7u)\n"
    "  --spec ID=VAL         specialization constant ID (uint32; VAL may be a float like 0.5f)\n"
    "  --push VAL            push word: integer (7, -3, 0x10) or float (1.5, 2f)\n"
    "  --repeat N            timed runs (default 20), --warmup N untimed first runs (default 3)\n"
    "  --dump I:FILE         write buffer I (0-based) to FILE after the runs (raw bytes; to a\n"
    "                        temporary renamed into place when complete)\n"
    "  --force               replace existing --dump files (default: refuse before running)\n"
    "  --device D            the Vulkan device: " CLI_DEVICE_FORMS "\n"
    "                        (see vkgpt2 devices; default: the best one)\n"
    "Compile errors print glslang's messages (ERROR: 0:LINE: ...) and exit 1.\n";

/* A 32-bit word from "7", "-3", "0x10", "7u", "1.5", "2f". */
static int parse_word(const char *flag, const char *s, uint32_t *out)
{
    char *end;
    size_t n = strlen(s);
    bool is_float = strchr(s, '.') || strchr(s, 'e') ||
        (n && (s[n - 1] == 'f' || s[n - 1] == 'F') && strncmp(s, "0x", 2));
    errno = 0;
    if (is_float) {
        float f = strtof(s, &end);
        if (end == s || errno || (*end && strcmp(end, "f") && strcmp(end, "F"))) goto bad;
        memcpy(out, &f, 4);
        return 0;
    }
    long long v = strtoll(s, &end, 0);
    if (end == s || errno || (*end && strcmp(end, "u")) || v < -2147483648LL || v > 4294967295LL) goto bad;
    *out = (uint32_t)v;
    return 0;
bad:
    fprintf(stderr, "vkgpt2: %s: '%s' is not a 32-bit integer or float\n", flag, s);
    return -1;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno) return -1;
    if (*end == 'K' || *end == 'k') {
        v <<= 10;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        v <<= 20;
        end++;
    } else if (*end == 'G' || *end == 'g') {
        v <<= 30;
        end++;
    }
    if (*end && *end != ':') return -1;
    if (!v || v > ((unsigned long long)1 << 34)) return -1;
    *out = (size_t)v;
    return 0;
}

int cmd_kbench(int argc, char **argv, int first)
{
    const char *path = NULL, *dump_file[MAX_BUF] = {0};
    vkg_kbench_buffer bufs[MAX_BUF];
    uint32_t push[MAX_WORDS], spec_id[MAX_WORDS], spec_val[MAX_WORDS];
    int n_buf = 0, n_push = 0, n_spec = 0;
    vkg_kbench_params p = {.repeat = 20, .warmup = 3, .device = -1, .grid = {0, 1, 1}};
    bool json = false;
    unsigned oflags = 0;
    memset(bufs, 0, sizeof bufs);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(kbench_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (!strcmp(a, "--force")) {
            oflags |= VKG_OUT_FORCE;
            continue;
        }
        if (a[0] != '-') {
            if (path) {
                fprintf(stderr, "vkgpt2: kbench: one shader file only ('%s')\n", a);
                return 2;
            }
            path = a;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "--grid")) {
            unsigned x = 0, y = 1, z = 1;
            int got = sscanf(v, "%u,%u,%u", &x, &y, &z);
            if (got < 1 || !x || !y || !z) {
                fprintf(stderr, "vkgpt2: --grid: '%s' is not X[,Y[,Z]] (positive)\n", v);
                return 2;
            }
            p.grid[0] = x;
            p.grid[1] = y;
            p.grid[2] = z;
        } else if (!strcmp(a, "--buffer")) {
            if (n_buf == MAX_BUF) {
                fprintf(stderr, "vkgpt2: --buffer: at most %d buffers\n", MAX_BUF);
                return 2;
            }
            vkg_kbench_buffer *b = &bufs[n_buf];
            if (parse_size(v, &b->bytes)) {
                fprintf(stderr, "vkgpt2: --buffer: '%s' is not SIZE[K|M|G][:INIT]\n", v);
                return 2;
            }
            const char *init = strchr(v, ':');
            if (!init || !strcmp(init + 1, "zero"))
                b->init = 0;
            else if (!strcmp(init + 1, "rand"))
                b->init = 1;
            else {
                uint32_t w;
                if (parse_word("--buffer", init + 1, &w)) return 2;
                size_t l = strlen(init + 1);
                if (init[l] == 'u') {
                    b->init = 3;
                    b->value = w;
                } else {
                    b->init = 2;
                    b->value = strtod(init + 1, NULL);
                }
            }
            n_buf++;
        } else if (!strcmp(a, "--push")) {
            if (n_push == MAX_WORDS) {
                fprintf(stderr, "vkgpt2: --push: too many words\n");
                return 2;
            }
            if (parse_word(a, v, &push[n_push])) return 2;
            n_push++;
        } else if (!strcmp(a, "--spec")) {
            const char *eq = strchr(v, '=');
            char *end;
            unsigned long id = strtoul(v, &end, 10);
            if (!eq || end != eq || n_spec == MAX_WORDS) {
                fprintf(stderr, "vkgpt2: --spec: '%s' is not ID=VAL\n", v);
                return 2;
            }
            spec_id[n_spec] = (uint32_t)id;
            if (parse_word(a, eq + 1, &spec_val[n_spec])) return 2;
            n_spec++;
        } else if (!strcmp(a, "--dump")) {
            char *end;
            long idx = strtol(v, &end, 10);
            if (end == v || *end != ':' || idx < 0 || idx >= MAX_BUF || !end[1]) {
                fprintf(stderr, "vkgpt2: --dump: '%s' is not I:FILE\n", v);
                return 2;
            }
            dump_file[idx] = end + 1;
        } else if (!strcmp(a, "--bytes")) {
            p.bytes = strtod(v, NULL);
        } else if (!strcmp(a, "--flops")) {
            p.flops = strtod(v, NULL);
        } else if (!strcmp(a, "--repeat")) {
            if (cli_int(a, v, 1, 100000, &p.repeat)) return 2;
        } else if (!strcmp(a, "--warmup")) {
            if (cli_int(a, v, 0, 100000, &p.warmup)) return 2;
        } else if (!strcmp(a, "--device")) {
            if (cli_device(a, v, &p.device, &p.device_name)) return 2;
        } else {
            fprintf(stderr, "vkgpt2: unknown option '%s' (see vkgpt2 kbench --help)\n", a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "vkgpt2: kbench needs a shader file (see vkgpt2 kbench --help)\n");
        return 2;
    }
    if (!p.grid[0]) {
        fprintf(stderr, "vkgpt2: kbench needs --grid X[,Y[,Z]]\n");
        return 2;
    }
    for (int i = 0; i < MAX_BUF; i++)
        if (dump_file[i] && i >= n_buf) {
            fprintf(stderr, "vkgpt2: --dump: there is no buffer %d\n", i);
            return 2;
        }
    const char *inputs[2] = {path, NULL};
    for (int i = 0; i < MAX_BUF; i++)
        if (dump_file[i] && cli_check_output("--dump", dump_file[i], oflags, inputs)) return 1;
    size_t len;
    char *src = cli_read_file(path, &len);
    if (!src) return 1;
    int rc = 1;
    for (int i = 0; i < n_buf; i++)
        if (dump_file[i] && !(bufs[i].dump = malloc(bufs[i].bytes))) {
            fprintf(stderr, "vkgpt2: out of memory\n");
            goto out;
        }
    p.source = src;
    p.name = path;
    p.buffers = bufs;
    p.n_buffers = n_buf;
    p.push = push;
    p.n_push = n_push;
    p.spec_ids = spec_id;
    p.spec_values = spec_val;
    p.n_spec = n_spec;
    vkg_kbench_result r;
    char err[8192];
    if (vkg_kbench(&p, &r, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        goto out;
    }
    for (int i = 0; i < n_buf; i++) {
        if (!dump_file[i]) continue;
        vkg_output *o = vkg_output_open(dump_file[i], oflags, err, sizeof err);
        if (!o) {
            cli_output_error(-1, "--dump", dump_file[i], err);
            goto out;
        }
        fwrite(bufs[i].dump, 1, bufs[i].bytes, vkg_output_file(o)); /* errors: reported by the commit */
        int wrc = vkg_output_commit(o, err, sizeof err);
        if (wrc) {
            cli_output_error(wrc, "--dump", dump_file[i], err);
            goto out;
        }
    }
    if (json) {
        printf("{\"shader\": ");
        json_write_string(stdout, path, strlen(path));
        printf(", \"device\": ");
        json_write_string(stdout, r.device, strlen(r.device));
        printf(", \"grid\": [%u, %u, %u], \"repeat\": %d, \"min_ms\": %.6f, \"median_ms\": %.6f, "
               "\"mean_ms\": %.6f, "
               "\"max_ms\": %.6f, \"bytes\": %.0f, \"flops\": %.0f, \"gbs\": %.3f, \"gflops\": %.3f}\n",
               p.grid[0], p.grid[1], p.grid[2], p.repeat, r.min_ms, r.median_ms, r.mean_ms, r.max_ms, p.bytes,
               p.flops, r.gbs, r.gflops);
    } else {
        printf(
            "| shader | device | grid | runs | min ms | median ms | mean ms | max ms | GB/s | GFLOP/s |\n");
        printf("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        printf("| %s | %s | %ux%ux%u | %d | %.4f | %.4f | %.4f | %.4f | %.2f | %.2f |\n", path, r.device,
               p.grid[0], p.grid[1], p.grid[2], p.repeat, r.min_ms, r.median_ms, r.mean_ms, r.max_ms, r.gbs,
               r.gflops);
    }
    rc = 0;
out:
    for (int i = 0; i < n_buf; i++) free(bufs[i].dump);
    free(src);
    return rc;
}
