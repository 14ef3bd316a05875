/* kbench.c - vkg_kbench (vkgpt2.h): a user's GLSL compute shader compiled at run time with
 * glslang's C interface, run on a grid over buffers reached by device address, timed with device
 * timestamps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devtools.h"
#include "vkgpt2.h"

#include "vkengine/vk_internal.h"

#include <glslang/Include/glslang_c_interface.h>
#include <glslang/Public/resource_limits_c.h>

/* Appends glslang's log to err after a first line naming the file; lines are kept as glslang
 * writes them ("ERROR: 0:LINE: 'what' : why"). */
static void log_err(char *err, size_t errlen, const char *name, const char *stage, const char *log)
{
    int n = snprintf(err, errlen, "kbench: %s: %s failed:", name, stage);
    if (n < 0 || (size_t)n >= errlen) return;
    const char *l = log ? log : "";
    while (*l && (size_t)n + 2 < errlen) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len) n += snprintf(err + n, errlen - (size_t)n, "\n  %.*s", (int)len, l);
        if (!e) break;
        l = e + 1;
    }
}

/* GLSL to SPIR-V; *words malloc'd. 0 or -1 with err. */
static int compile_glsl(const char *src, const char *name, uint32_t **words, size_t *n_words, char *err,
                        size_t errlen)
{
    static int initialized;
    if (!initialized) {
        glslang_initialize_process();
        initialized = 1;
    }
    glslang_input_t in = {
        .language = GLSLANG_SOURCE_GLSL,
        .stage = GLSLANG_STAGE_COMPUTE,
        .client = GLSLANG_CLIENT_VULKAN,
        .client_version = GLSLANG_TARGET_VULKAN_1_2,
        .target_language = GLSLANG_TARGET_SPV,
        .target_language_version = GLSLANG_TARGET_SPV_1_5,
        .code = src,
        .default_version = 460,
        .default_profile = GLSLANG_NO_PROFILE,
        .messages = GLSLANG_MSG_SPV_RULES_BIT | GLSLANG_MSG_VULKAN_RULES_BIT,
        .resource = glslang_default_resource(),
    };
    glslang_shader_t *sh = glslang_shader_create(&in);
    glslang_program_t *prog = NULL;
    int rc = -1;
    if (!sh) {
        snprintf(err, errlen, "kbench: %s: glslang could not create a shader", name);
        return -1;
    }
    if (!glslang_shader_preprocess(sh, &in)) {
        log_err(err, errlen, name, "preprocessing", glslang_shader_get_info_log(sh));
        goto out;
    }
    if (!glslang_shader_parse(sh, &in)) {
        log_err(err, errlen, name, "compiling", glslang_shader_get_info_log(sh));
        goto out;
    }
    prog = glslang_program_create();
    glslang_program_add_shader(prog, sh);
    if (!glslang_program_link(prog, GLSLANG_MSG_SPV_RULES_BIT | GLSLANG_MSG_VULKAN_RULES_BIT)) {
        log_err(err, errlen, name, "linking", glslang_program_get_info_log(prog));
        goto out;
    }
    glslang_program_SPIRV_generate(prog, GLSLANG_STAGE_COMPUTE);
    *n_words = glslang_program_SPIRV_get_size(prog);
    *words = malloc(*n_words * sizeof **words);
    if (!*words) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    glslang_program_SPIRV_get(prog, *words);
    rc = 0;
out:
    if (prog) glslang_program_delete(prog);
    glslang_shader_delete(sh);
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int vkg_kbench(const vkg_kbench_params *p, vkg_kbench_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    const char *name = p->name ? p->name : "shader";
    if (p->n_buffers < 0 || p->n_push < 0 || p->n_spec < 0 || p->n_spec > VKE_MAX_SPEC ||
        (size_t)p->n_buffers * 8 + (size_t)p->n_push * 4 > VKE_PUSH_BYTES) {
        snprintf(err, errlen,
                 "kbench: %d buffers and %d push words exceed the %d push-constant bytes "
                 "(8 per buffer address, 4 per word)",
                 p->n_buffers, p->n_push, VKE_PUSH_BYTES);
        return -1;
    }
    if (!p->grid[0] || !p->grid[1] || !p->grid[2]) {
        snprintf(err, errlen, "kbench: empty grid");
        return -1;
    }
    uint32_t *spv = NULL;
    size_t n_words = 0;
    if (compile_glsl(p->source, name, &spv, &n_words, err, errlen)) return -1;

    vk_engine *e = NULL;
    vk_mem *mem = calloc((size_t)(p->n_buffers > 0 ? p->n_buffers : 1), sizeof *mem);
    vk_pipeline pl = {0};
    vk_seq *s = NULL;
    double *ms = NULL;
    int rc = -1;
    if (!mem) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (vk_engine_create_sel(&e, p->device, p->device_name, err, errlen)) goto out;
    snprintf(res->device, sizeof res->device, "%s", vk_engine_caps(e)->name);
    if (vk_pipeline_from_spirv(e, spv, n_words, p->spec_ids, p->spec_values, p->n_spec, "kbench", &pl, err,
                               errlen))
        goto out;
    uint8_t push[VKE_PUSH_BYTES] = {0};
    size_t off = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < p->n_buffers; i++) {
        const vkg_kbench_buffer *b = &p->buffers[i];
        size_t bytes = (b->bytes + 3) & ~(size_t)3;
        if (!bytes) bytes = 4;
        if (vk_mem_alloc(e, &mem[i], bytes, VKE_MEM_DEVICE, err, errlen)) goto out;
        if (b->init == 0) {
            if (vk_fill_zero(e, &mem[i], 0, bytes)) {
                snprintf(err, errlen, "kbench: filling buffer %d failed", i);
                goto out;
            }
        } else {
            uint32_t *h = malloc(bytes);
            if (!h) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            for (size_t k = 0; k < bytes / 4; k++) {
                if (b->init == 1) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    float f = (float)((double)(rng >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
                    memcpy(&h[k], &f, 4);
                } else if (b->init == 2) {
                    float f = (float)b->value;
                    memcpy(&h[k], &f, 4);
                } else {
                    h[k] = (uint32_t)b->value;
                }
            }
            int up = vk_upload(e, &mem[i], 0, h, bytes);
            free(h);
            if (up) {
                snprintf(err, errlen, "kbench: uploading buffer %d failed", i);
                goto out;
            }
        }
        memcpy(push + off, &mem[i].addr, 8);
        off += 8;
    }
    if (p->n_push) memcpy(push + off, p->push, (size_t)p->n_push * 4);
    off += (size_t)p->n_push * 4;

    int repeat = p->repeat > 0 ? p->repeat : 10, warmup = p->warmup >= 0 ? p->warmup : 0;
    ms = calloc((size_t)repeat, sizeof *ms);
    s = vk_seq_create(e, 1);
    if (!ms || !s) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    vk_seq_set_timing(s, true);
    vk_seq_begin(s);
    vk_seq_dispatch(s, &pl, push, off, p->grid[0], p->grid[1], p->grid[2], "kbench");
    if (vk_seq_end(s)) {
        snprintf(err, errlen, "kbench: recording the dispatch failed (grid too large?)");
        goto out;
    }
    for (int i = 0; i < warmup + repeat; i++) {
        if (vk_seq_run(s)) {
            snprintf(err, errlen, "kbench: the dispatch failed on the device");
            goto out;
        }
        if (i < warmup) continue;
        if (vk_seq_timings(s, &ms[i - warmup], NULL, 1) != 1) {
            snprintf(err, errlen, "kbench: the device has no timestamps");
            goto out;
        }
    }
    double sum = 0;
    for (int i = 0; i < repeat; i++) sum += ms[i];
    qsort(ms, (size_t)repeat, sizeof *ms, cmp_d);
    res->min_ms = ms[0];
    res->max_ms = ms[repeat - 1];
    res->median_ms = repeat % 2 ? ms[repeat / 2] : (ms[repeat / 2 - 1] + ms[repeat / 2]) / 2;
    res->mean_ms = sum / repeat;
    if (res->median_ms > 0) {
        res->gbs = p->bytes / (res->median_ms * 1e6);
        res->gflops = p->flops / (res->median_ms * 1e6);
    }
    for (int i = 0; i < p->n_buffers; i++)
        if (p->buffers[i].dump && vk_download(e, &mem[i], 0, p->buffers[i].dump, p->buffers[i].bytes)) {
            snprintf(err, errlen, "kbench: reading buffer %d back failed", i);
            goto out;
        }
    rc = 0;
out:
    vk_seq_destroy(s);
    free(ms);
    if (e) {
        for (int i = 0; i < p->n_buffers; i++)
            if (mem[i].size) vk_mem_free(e, &mem[i]);
        vk_pipeline_release(e, &pl);
        vk_engine_destroy(e);
    }
    free(mem);
    free(spv);
    return rc;
}
