/* test_vk_engine.c - the Vulkan engine on whatever device there is (lavapipe in CI): creation, caps,
 * memory, transfers, pipelines, recorded sequences, timestamps, the pipeline cache, failures. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkengine/vk_engine.h"
#include "vkengine/vk_fault.h"

#define MiB ((VkDeviceSize)1 << 20)

/* Push constants of shaders/engine_test.comp. */
typedef struct test_push {
    uint64_t dst, src, param;
    uint32_t n, mode, mul, add;
} test_push;

enum { MODE_FILL = 0, MODE_SCALE = 1, MODE_PARAM = 2 };
#define WG 64

static char cache_dir[256];

/* Every test keeps its pipeline cache in its own temporary XDG_CACHE_HOME. */
static void use_temp_cache(void)
{
    snprintf(cache_dir, sizeof cache_dir, "/tmp/vkgpt2-test-cache-XXXXXX");
    cr_assert_not_null(mkdtemp(cache_dir));
    setenv("XDG_CACHE_HOME", cache_dir, 1);
}

static vk_engine *engine(void)
{
    use_temp_cache();
    vk_engine *e = NULL;
    char err[256] = "";
    int rc = vk_engine_create(&e, -1, err, sizeof err);
    cr_assert_eq(rc, 0, "vk_engine_create: %s", err);
    cr_assert_not_null(e);
    return e;
}

/* Every test ends here: no validation warning or error may have been reported. */
static void finish(vk_engine *e)
{
    int msgs = vk_validation_messages(e);
    vk_engine_destroy(e);
    cr_expect_eq(msgs, 0, "%d validation messages (see stderr)", msgs);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rnd();
}

static uint32_t groups(uint32_t n) { return (n + WG - 1) / WG; }

static void alloc_ok(vk_engine *e, vk_mem *m, VkDeviceSize size, vk_mem_kind kind)
{
    char err[256] = "";
    int rc = vk_mem_alloc(e, m, size, kind, err, sizeof err);
    cr_assert_eq(rc, 0, "vk_mem_alloc(%llu): %s", (unsigned long long)size, err);
    cr_assert_eq(m->addr % 256, 0);
    cr_assert_eq(m->offset % 256, 0);
    cr_assert_geq(m->size, size);
}

Test(vk_engine, create_and_caps)
{
    vk_engine *e = engine();
    const vk_caps *c = vk_engine_caps(e);
    cr_assert_not_null(vk_engine_device(e));
    cr_expect_gt(strlen(c->name), 0);
    cr_expect_gt(strlen(c->driver), 0);
    cr_expect_geq(c->api_version, VK_API_VERSION_1_2);
    cr_expect_gt(c->subgroup_size, 0);
    cr_expect_eq(c->subgroup_size & (c->subgroup_size - 1), 0, "subgroup size %u", c->subgroup_size);
    cr_expect_leq(c->subgroup_min, c->subgroup_size);
    cr_expect_geq(c->subgroup_max, c->subgroup_size);
    cr_expect_geq(c->max_storage_range, 1u << 27);
    cr_expect_geq(c->max_alloc, 128 * MiB);
    cr_expect_geq(c->max_shared, 16384u);
    cr_expect_geq(c->max_wg_invocations, 128u);
    cr_expect_geq(c->max_wg_count[0], 65535u);
    cr_expect_gt(c->device_local_bytes, 0);
    if (c->timestamps) cr_expect_gt(c->timestamp_period_ns, 0.0);
    if (c->coopmat_nv) cr_expect(c->coopmat_m && c->coopmat_n && c->coopmat_k);
    printf("device: %s (%s), subgroup %u, fp16 %d int8 %d storage16 %d, timestamps %d\n", c->name, c->driver,
           c->subgroup_size, c->fp16, c->int8, c->storage16, c->timestamps);
    finish(e);
}

Test(vk_engine, list_devices)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    char err[256] = "";
    int rc = vk_list_devices(f, err, sizeof err);
    fclose(f);
    cr_assert_eq(rc, 0, "vk_list_devices: %s", err);
    cr_expect_not_null(strstr(text, "device 0:"));
    cr_expect_not_null(strstr(text, "maxStorageBufferRange"));
    cr_expect_not_null(strstr(text, "subgroup size"));
    free(text);
}

Test(vk_engine, upload_download_round_trip)
{
    vk_engine *e = engine();
    size_t stage = vk_staging_bytes();
    const size_t sizes[] = {1, 3, 255, 256, 257, 4096 + 7, stage - 1, stage, stage + 13, 2 * stage + 1001};
    uint64_t before = vk_mem_device_bytes(e);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint8_t *src = malloc(n), *back = malloc(n);
        cr_assert(src && back);
        fill_random(src, n);
        vk_mem m;
        alloc_ok(e, &m, n + 100, VKE_MEM_DEVICE);
        cr_expect_geq(vk_mem_device_bytes(e), before + n);
        /* at offset 0 and at an odd offset */
        for (VkDeviceSize off = 0; off <= 99; off += 99) {
            memset(back, 0xab, n);
            cr_assert_eq(vk_upload(e, &m, off, src, n), 0);
            cr_assert_eq(vk_download(e, &m, off, back, n), 0);
            cr_assert_eq(memcmp(src, back, n), 0, "round trip of %zu bytes at %llu", n,
                         (unsigned long long)off);
        }
        /* zero an odd range in the middle: the rest stays */
        if (n > 10) {
            cr_assert_eq(vk_upload(e, &m, 0, src, n), 0);
            cr_assert_eq(vk_fill_zero(e, &m, 3, n - 10), 0);
            cr_assert_eq(vk_download(e, &m, 0, back, n), 0);
            cr_expect_eq(memcmp(back, src, 3), 0);
            for (size_t i = 3; i < n - 7; i++) cr_assert_eq(back[i], 0, "byte %zu of %zu not zeroed", i, n);
            cr_expect_eq(memcmp(back + n - 7, src + n - 7, 7), 0);
        }
        /* an aligned fill (the vkCmdFillBuffer path) */
        cr_assert_eq(vk_fill_zero(e, &m, 0, (n + 100) & ~(size_t)3), 0);
        cr_assert_eq(vk_download(e, &m, 0, back, n), 0);
        for (size_t i = 0; i < n; i++) cr_assert_eq(back[i], 0);
        vk_mem_free(e, &m);
        free(src);
        free(back);
    }
    cr_expect_eq(vk_mem_device_bytes(e), before);
    /* out of range transfers are refused */
    vk_mem m;
    alloc_ok(e, &m, 100, VKE_MEM_DEVICE);
    uint8_t buf[200] = {0};
    cr_expect_neq(vk_upload(e, &m, 50, buf, 51), 0);
    cr_expect_neq(vk_download(e, &m, 0, buf, 101), 0);
    vk_mem_free(e, &m);
    /* host-visible memory works through .map and through the transfer functions */
    vk_mem h;
    alloc_ok(e, &h, 1000, VKE_MEM_HOST);
    cr_assert_not_null(h.map);
    fill_random(buf, 200);
    cr_assert_eq(vk_upload(e, &h, 10, buf, 200), 0);
    cr_expect_eq(memcmp((uint8_t *)h.map + 10, buf, 200), 0);
    vk_mem_free(e, &h);
    finish(e);
}

Test(vk_engine, sub_allocation_reuses_freed_space)
{
    vk_engine *e = engine();
    vk_mem a, b, c, d;
    alloc_ok(e, &a, 1000, VKE_MEM_DEVICE);
    alloc_ok(e, &b, 5000, VKE_MEM_DEVICE);
    alloc_ok(e, &c, 300, VKE_MEM_DEVICE);
    cr_expect_eq(a.buffer, b.buffer, "small allocations share a block");
    cr_expect(a.offset + 1000 <= b.offset || b.offset + 5000 <= a.offset);
    VkDeviceSize b_off = b.offset;
    vk_mem_free(e, &b);
    alloc_ok(e, &d, 4000, VKE_MEM_DEVICE);
    cr_expect_eq(d.offset, b_off, "first fit reuses the hole");
    vk_mem_free(e, &a);
    vk_mem_free(e, &c);
    vk_mem_free(e, &d);
    cr_expect_eq(vk_mem_device_bytes(e), 0);
    finish(e);
}

/* A 160 MiB buffer, more than lavapipe's maxStorageBufferRange of 128 MiB: the test shader reads
 * and writes its far end through device addresses. */
Test(vk_engine, large_buffer_far_end, .timeout = 100)
{
    vk_engine *e = engine();
    VkDeviceSize size = 160 * MiB;
    vk_mem big;
    alloc_ok(e, &big, size, VKE_MEM_DEVICE);
    const uint32_t n = 65536;
    VkDeviceSize far_src = 150 * MiB, far_dst = size - (VkDeviceSize)n * 4;
    uint32_t *src = malloc(n * 4), *back = malloc(n * 4);
    cr_assert(src && back);
    for (uint32_t i = 0; i < n; i++) src[i] = rnd();
    cr_assert_eq(vk_upload(e, &big, far_src, src, n * 4), 0);

    vk_pipeline *p = vk_pipeline_get(e, "engine_test", (const uint32_t[]){WG}, 1);
    cr_assert_not_null(p);
    vk_seq *s = vk_seq_create(e, 4);
    cr_assert_not_null(s);
    test_push pc = {
        .dst = big.addr + far_dst, .src = big.addr + far_src, .n = n, .mode = MODE_SCALE, .mul = 3, .add = 1};
    vk_seq_begin(s);
    vk_seq_dispatch(s, p, &pc, sizeof pc, groups(n), 1, 1, "far scale");
    cr_assert_eq(vk_seq_end(s), 0);
    cr_assert_eq(vk_seq_run(s), 0);
    cr_assert_eq(vk_download(e, &big, far_dst, back, n * 4), 0);
    for (uint32_t i = 0; i < n; i++) cr_assert_eq(back[i], src[i] * 3 + 1, "word %u", i);

    /* and a fill at the very last words, read back by the transfer path */
    pc = (test_push){.dst = big.addr + size - 4096, .n = 1024, .mode = MODE_FILL, .mul = 7, .add = 5};
    vk_seq_begin(s);
    vk_seq_dispatch(s, p, &pc, sizeof pc, groups(1024), 1, 1, "far fill");
    cr_assert_eq(vk_seq_end(s), 0);
    cr_assert_eq(vk_seq_run(s), 0);
    cr_assert_eq(vk_download(e, &big, size - 4096, back, 4096), 0);
    for (uint32_t i = 0; i < 1024; i++) cr_assert_eq(back[i], 5 + 7 * i);
    vk_seq_destroy(s);
    vk_mem_free(e, &big);
    cr_expect_eq(vk_mem_device_bytes(e), 0);
    free(src);
    free(back);
    finish(e);
}

/* Recorded once, replayed three times with a host-visible parameter changed between runs. */
Test(vk_engine, replay_with_changing_parameters)
{
    vk_engine *e = engine();
    const uint32_t n = 1000;
    vk_mem in, out, param;
    alloc_ok(e, &in, n * 4, VKE_MEM_DEVICE);
    alloc_ok(e, &out, n * 4, VKE_MEM_HOST);
    alloc_ok(e, &param, 16, VKE_MEM_HOST);
    vk_pipeline *p = vk_pipeline_get(e, "engine_test", (const uint32_t[]){WG}, 1);
    cr_assert_not_null(p);
    vk_seq *s = vk_seq_create(e, 8);
    cr_assert_not_null(s);
    /* in[i] = 10 + i (a shader fill), then out[i] = in[i] * param[0] + param[1] */
    test_push fill = {.dst = in.addr, .n = n, .mode = MODE_FILL, .mul = 1, .add = 10};
    test_push scale = {.dst = out.addr, .src = in.addr, .param = param.addr, .n = n, .mode = MODE_PARAM};
    vk_seq_begin(s);
    vk_seq_dispatch(s, p, &fill, sizeof fill, groups(n), 1, 1, "fill");
    vk_seq_barrier(s);
    vk_seq_dispatch(s, p, &scale, sizeof scale, groups(n), 1, 1, "scale");
    cr_assert_eq(vk_seq_end(s), 0);
    cr_expect_eq(vk_seq_dispatches(s), 2);
    cr_expect_eq(vk_seq_barriers(s), 1);
    const uint32_t params[3][2] = {{2, 0}, {5, 7}, {1000, 3}};
    uint32_t *pm = param.map, *o = out.map;
    for (int run = 0; run < 3; run++) {
        pm[0] = params[run][0];
        pm[1] = params[run][1];
        cr_assert_eq(vk_seq_run(s), 0);
        for (uint32_t i = 0; i < n; i++)
            cr_assert_eq(o[i], (10 + i) * params[run][0] + params[run][1], "run %d word %u", run, i);
    }
    /* submit and wait separately too */
    pm[0] = 1;
    pm[1] = 1;
    cr_assert_eq(vk_seq_submit(s), 0);
    cr_assert_eq(vk_seq_wait(s), 0);
    cr_expect_eq(o[n - 1], 10 + n - 1 + 1);
    vk_seq_destroy(s);
    vk_mem_free(e, &in);
    vk_mem_free(e, &out);
    vk_mem_free(e, &param);
    finish(e);
}

/* vk_seq_copy and an indirect dispatch whose group count a shader wrote. */
Test(vk_engine, copy_and_indirect_dispatch)
{
    vk_engine *e = engine();
    const uint32_t n = 777;
    vk_mem a, b, args, res;
    alloc_ok(e, &a, n * 4, VKE_MEM_DEVICE);
    alloc_ok(e, &b, n * 4, VKE_MEM_DEVICE);
    alloc_ok(e, &args, 16, VKE_MEM_DEVICE);
    alloc_ok(e, &res, n * 4, VKE_MEM_HOST);
    vk_pipeline *p = vk_pipeline_get(e, "engine_test", (const uint32_t[]){WG}, 1);
    vk_pipeline *p1 = vk_pipeline_get(e, "engine_test", (const uint32_t[]){1}, 1);
    cr_assert(p && p1);
    vk_seq *s = vk_seq_create(e, 8);
    cr_assert_not_null(s);
    /* args = {groups(n), 1, 1}: a fill with mul 0 writes groups(n), then 1 over the next two */
    test_push wargs = {.dst = args.addr, .n = 1, .mode = MODE_FILL, .mul = 0, .add = groups(n)};
    test_push wones = {.dst = args.addr + 4, .n = 2, .mode = MODE_FILL, .mul = 0, .add = 1};
    test_push fill = {.dst = a.addr, .n = n, .mode = MODE_FILL, .mul = 3, .add = 2};
    test_push scale = {.dst = res.addr, .src = b.addr, .n = n, .mode = MODE_SCALE, .mul = 2, .add = 1};
    vk_seq_begin(s);
    vk_seq_dispatch(s, p1, &wargs, sizeof wargs, 1, 1, 1, "args");
    vk_seq_dispatch(s, p1, &wones, sizeof wones, 2, 1, 1, "ones");
    vk_seq_dispatch(s, p, &fill, sizeof fill, groups(n), 1, 1, "fill a");
    vk_seq_copy(s, &a, 0, &b, 0, n * 4);
    vk_seq_dispatch_indirect(s, p, &scale, sizeof scale, &args, 0, "indirect scale");
    cr_assert_eq(vk_seq_end(s), 0);
    cr_assert_eq(vk_seq_run(s), 0);
    const uint32_t *r = res.map;
    for (uint32_t i = 0; i < n; i++) cr_assert_eq(r[i], (2 + 3 * i) * 2 + 1, "word %u", i);
    vk_seq_destroy(s);
    finish(e);
}

Test(vk_engine, timestamps)
{
    vk_engine *e = engine();
    const vk_caps *c = vk_engine_caps(e);
    const uint32_t n = 4096;
    vk_mem a;
    alloc_ok(e, &a, n * 4, VKE_MEM_DEVICE);
    vk_pipeline *p = vk_pipeline_get(e, "engine_test", (const uint32_t[]){WG}, 1);
    cr_assert_not_null(p);
    vk_seq *s = vk_seq_create(e, 2); /* fewer slots than dispatches: the third goes untimed */
    cr_assert_not_null(s);
    vk_seq_set_timing(s, true);
    test_push pc = {.dst = a.addr, .src = a.addr, .n = n, .mode = MODE_FILL, .mul = 1};
    vk_seq_begin(s);
    vk_seq_dispatch(s, p, &pc, sizeof pc, groups(n), 1, 1, "first");
    vk_seq_barrier(s);
    pc.mode = MODE_SCALE;
    vk_seq_dispatch(s, p, &pc, sizeof pc, groups(n), 1, 1, "second");
    vk_seq_barrier(s);
    vk_seq_dispatch(s, p, &pc, sizeof pc, groups(n), 1, 1, "third");
    cr_assert_eq(vk_seq_end(s), 0);
    for (int run = 0; run < 2; run++) {
        cr_assert_eq(vk_seq_run(s), 0);
        double ms[4] = {-1, -1, -1, -1};
        const char *labels[4] = {0};
        int got = vk_seq_timings(s, ms, labels, 4);
        if (!c->timestamps) {
            cr_expect_eq(got, 0);
            continue;
        }
        cr_assert_eq(got, 2);
        cr_expect_str_eq(labels[0], "first");
        cr_expect_str_eq(labels[1], "second");
        for (int i = 0; i < got; i++) {
            cr_expect_geq(ms[i], 0.0, "dispatch %d: %f ms", i, ms[i]);
            cr_expect_lt(ms[i], 60000.0);
        }
    }
    vk_seq_destroy(s);
    finish(e);
}

Test(vk_engine, pipelines_are_cached_and_unknown_is_null)
{
    vk_engine *e = engine();
    const uint32_t *code;
    size_t bytes;
    cr_assert_eq(vk_spirv_find("engine_test", &code, &bytes), 0);
    cr_expect_gt(bytes, 20);
    cr_expect_eq(bytes % 4, 0);
    cr_expect_eq(code[0], 0x07230203u);
    cr_expect_neq(vk_spirv_find("no_such_shader", &code, &bytes), 0);

    vk_pipeline *a = vk_pipeline_get(e, "engine_test", (const uint32_t[]){64}, 1);
    vk_pipeline *b = vk_pipeline_get(e, "engine_test", (const uint32_t[]){64}, 1);
    vk_pipeline *c = vk_pipeline_get(e, "engine_test", (const uint32_t[]){32}, 1);
    cr_assert_not_null(a);
    cr_expect_eq(a, b, "same (name, spec): same pipeline");
    cr_expect_neq(a, c, "other spec: other pipeline");
    cr_expect_eq(vk_pipeline_get(e, "engine_test", (const uint32_t[]){32}, 1), c);
    cr_expect_null(vk_pipeline_get(e, "no_such_shader", NULL, 0));
    cr_expect_null(vk_pipeline_get(e, "engine_test", NULL, 99));
    finish(e);
}

Test(vk_engine, pipeline_cache_file)
{
    vk_engine *e = engine();
    char path[1024];
    snprintf(path, sizeof path, "%s", vk_pipeline_cache_path(e));
    cr_assert_eq(strncmp(path, cache_dir, strlen(cache_dir)), 0, "cache path %s", path);
    cr_assert_not_null(vk_pipeline_get(e, "engine_test", (const uint32_t[]){64}, 1));
    finish(e);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "no pipeline cache at %s", path);
    cr_expect_geq(st.st_size, 32);
    /* a second engine loads it */
    vk_engine *e2 = NULL;
    char err[256] = "";
    cr_assert_eq(vk_engine_create(&e2, -1, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(vk_pipeline_get(e2, "engine_test", (const uint32_t[]){64}, 1));
    finish(e2);
    /* a corrupt cache file is ignored */
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("this is not a pipeline cache, but it is longer than a header would be", f);
    fclose(f);
    cr_assert_eq(vk_engine_create(&e2, -1, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(vk_pipeline_get(e2, "engine_test", (const uint32_t[]){64}, 1));
    finish(e2);
}

Test(vk_engine, no_driver_fails_cleanly)
{
    setenv("VK_ICD_FILENAMES", "/nonexistent/vkgpt2-no-driver.json", 1);
    setenv("VK_DRIVER_FILES", "/nonexistent/vkgpt2-no-driver.json", 1);
    vk_engine *e = (vk_engine *)&e; /* must be reset */
    char err[256] = "";
    int rc = vk_engine_create(&e, -1, err, sizeof err);
    cr_expect_neq(rc, 0);
    cr_expect_null(e);
    cr_expect_gt(strlen(err), 10, "a reason: '%s'", err);
    printf("without a driver: %s\n", err);
}

Test(vk_engine, bad_device_index_fails_cleanly)
{
    vk_engine *e = NULL;
    char err[256] = "";
    cr_expect_neq(vk_engine_create(&e, 1000, err, sizeof err), 0);
    cr_expect_null(e);
    cr_expect_not_null(strstr(err, "1000"), "%s", err);
}

Test(vk_engine, out_of_memory_is_an_error)
{
    vk_engine *e = engine();
    vk_mem m;
    char err[256] = "";
    VkDeviceSize tib = (VkDeviceSize)1 << 40;
    cr_expect_neq(vk_mem_alloc(e, &m, tib, VKE_MEM_DEVICE, err, sizeof err), 0);
    cr_expect(strstr(err, "1099511627776") || strstr(err, "1.00 TiB"), "message: %s", err);
    printf("1 TiB: %s\n", err);
    err[0] = '\0';
    cr_expect_neq(vk_mem_alloc(e, &m, tib, VKE_MEM_HOST, err, sizeof err), 0);
    cr_expect_gt(strlen(err), 0);
    /* a size that passes the allocation limit (the smaller of maxMemoryAllocationSize and
     * maxBufferSize, so vkCreateBuffer accepts it) but not the heap (when the heap is smaller) */
    const vk_caps *c = vk_engine_caps(e);
    if (c->device_local_bytes < c->max_block) {
        err[0] = '\0';
        cr_expect_neq(vk_mem_alloc(e, &m, c->max_block, VKE_MEM_DEVICE, err, sizeof err), 0);
        cr_expect_gt(strlen(err), 0);
    }
    /* the engine still works */
    vk_mem ok;
    alloc_ok(e, &ok, 1024, VKE_MEM_DEVICE);
    vk_mem_free(e, &ok);
    finish(e);
}

/* The validation counter really counts (when the tests run with VKGPT2_VALIDATION=1). */
Test(vk_engine, validation_messages_are_counted)
{
    const char *v = getenv("VKGPT2_VALIDATION");
    if (!v || strcmp(v, "1") != 0) cr_skip_test("VKGPT2_VALIDATION is not 1");
    vk_engine *e = engine();
    cr_assert_eq(vk_validation_messages(e), 0);
    /* an undefined fence flag: harmless to the driver, an error to the validation layer */
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO, .flags = 0x80};
    VkFence fence = VK_NULL_HANDLE;
    fprintf(stderr, "(the next validation error is expected)\n");
    if (vkCreateFence(vk_engine_device(e), &fci, NULL, &fence) == VK_SUCCESS)
        vkDestroyFence(vk_engine_device(e), fence, NULL);
    cr_expect_gt(vk_validation_messages(e), 0);
    vk_engine_destroy(e);
}

/* ---- GPU readiness (vkengine/vk_select.h decisions on the real device) ---- */

/* The per-step parameter path of the backend: host-visible parameters copied into a device-local
 * mirror at the start of the recording, which the shader reads; replayed with new values. On
 * lavapipe all memory is host-visible, but the copy and its barrier run all the same. */
Test(vk_engine, replay_reads_a_device_local_mirror_of_parameters)
{
    vk_engine *e = engine();
    const uint32_t n = 1000;
    vk_mem in, out, param, mirror;
    alloc_ok(e, &in, n * 4, VKE_MEM_DEVICE);
    alloc_ok(e, &out, n * 4, VKE_MEM_HOST);
    alloc_ok(e, &param, 16, VKE_MEM_HOST);
    alloc_ok(e, &mirror, 16, VKE_MEM_DEVICE);
    vk_pipeline *p = vk_pipeline_get(e, "engine_test", (const uint32_t[]){WG}, 1);
    cr_assert_not_null(p);
    vk_seq *s = vk_seq_create(e, 8);
    test_push fill = {.dst = in.addr, .n = n, .mode = MODE_FILL, .mul = 1, .add = 10};
    test_push scale = {.dst = out.addr, .src = in.addr, .param = mirror.addr, .n = n, .mode = MODE_PARAM};
    vk_seq_begin(s);
    vk_seq_copy(s, &param, 0, &mirror, 0, 16);
    vk_seq_dispatch(s, p, &fill, sizeof fill, groups(n), 1, 1, "fill");
    vk_seq_barrier(s);
    vk_seq_dispatch(s, p, &scale, sizeof scale, groups(n), 1, 1, "scale");
    cr_assert_eq(vk_seq_end(s), 0);
    const uint32_t params[3][2] = {{2, 0}, {5, 7}, {1000, 3}};
    uint32_t *pm = param.map, *o = out.map;
    for (int run = 0; run < 3; run++) {
        pm[0] = params[run][0];
        pm[1] = params[run][1];
        cr_assert_eq(vk_seq_run(s), 0);
        for (uint32_t i = 0; i < n; i++)
            cr_assert_eq(o[i], (10 + i) * params[run][0] + params[run][1], "run %d word %u", run, i);
    }
    vk_seq_destroy(s);
    vk_mem_free(e, &in);
    vk_mem_free(e, &out);
    vk_mem_free(e, &param);
    vk_mem_free(e, &mirror);
    finish(e);
}

/* A pipeline created with a required subgroup size and full subgroups (as the coopmat ones are):
 * valid where the device has the features (lavapipe: 8..8), refused with a message outside the
 * range, kept apart from the plain pipeline of the same shader. */
Test(vk_engine, pipeline_with_required_subgroup_size)
{
    vk_engine *e = engine();
    const vk_caps *c = vk_engine_caps(e);
    printf("subgroup %u, range %u..%u, size control %d, full subgroups %d, max subgroups/wg %u\n",
           c->subgroup_size, c->subgroup_min, c->subgroup_max, c->subgroup_size_control, c->full_subgroups,
           c->max_wg_subgroups);
    if (!c->subgroup_size_control || !c->full_subgroups) {
        finish(e);
        cr_skip_test("the device has no subgroup size control with full subgroups");
    }
    vk_pipeline *plain = vk_pipeline_get(e, "engine_test", (const uint32_t[]){WG}, 1);
    vk_pipeline_opts o = {.required_subgroup_size = c->subgroup_max, .full_subgroups = true};
    vk_pipeline *sized = vk_pipeline_get_opts(e, "engine_test", (const uint32_t[]){WG}, 1, &o);
    cr_assert(plain && sized && plain != sized);
    cr_assert_eq(vk_pipeline_get_opts(e, "engine_test", (const uint32_t[]){WG}, 1, &o), sized);
    vk_pipeline_opts bad = {.required_subgroup_size = c->subgroup_max * 2};
    fprintf(stderr, "(the next message about subgroups is expected)\n");
    cr_assert_null(vk_pipeline_get_opts(e, "engine_test", (const uint32_t[]){WG}, 1, &bad));
    const uint32_t n = 4096;
    vk_mem out;
    alloc_ok(e, &out, n * 4, VKE_MEM_HOST);
    vk_seq *s = vk_seq_create(e, 2);
    test_push fill = {.dst = out.addr, .n = n, .mode = MODE_FILL, .mul = 3, .add = 1};
    vk_seq_begin(s);
    vk_seq_dispatch(s, sized, &fill, sizeof fill, groups(n), 1, 1, "fill");
    cr_assert_eq(vk_seq_end(s), 0);
    cr_assert_eq(vk_seq_run(s), 0);
    for (uint32_t i = 0; i < n; i++) cr_assert_eq(((uint32_t *)out.map)[i], 1 + 3 * i);
    vk_seq_destroy(s);
    vk_mem_free(e, &out);
    finish(e);
}

/* Allocations are limited by min(maxMemoryAllocationSize, maxBufferSize): one byte more than the
 * block limit is refused with the limit's name, before vkCreateBuffer could see it. */
Test(vk_engine, allocation_limit_is_the_block_limit)
{
    vk_engine *e = engine();
    const vk_caps *c = vk_engine_caps(e);
    cr_assert_eq(c->max_block, c->max_buffer && c->max_buffer < c->max_alloc ? c->max_buffer : c->max_alloc);
    vk_mem m;
    char err[256] = "";
    cr_assert_neq(vk_mem_alloc(e, &m, c->max_block + 1, VKE_MEM_DEVICE, err, sizeof err), 0);
    cr_assert(strstr(err, c->max_block < c->max_alloc ? "maxBufferSize" : "maxMemoryAllocationSize"), "%s",
              err);
    finish(e);
}

/* --device as a string: index, name substring, deviceUUID prefix; a bad name is one line. */
Test(vk_engine, device_by_index_name_or_uuid)
{
    use_temp_cache();
    vk_engine *e = NULL;
    char err[256] = "";
    cr_assert_eq(vk_engine_create_named(&e, NULL, err, sizeof err), 0, "%s", err);
    vk_caps best = *vk_engine_caps(e);
    vk_engine_destroy(e);
    char uuid[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", best.device_uuid[i]);
    uuid[12] = '\0';
    char part[8];
    snprintf(part, sizeof part, "%.5s", best.name);
    const char *sels[] = {uuid, part};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(vk_engine_create_named(&e, sels[k], err, sizeof err), 0, "'%s': %s", sels[k], err);
        cr_assert_str_eq(vk_engine_caps(e)->name, best.name, "'%s'", sels[k]);
        finish(e);
    }
    e = (vk_engine *)&e;
    cr_assert_neq(vk_engine_create_named(&e, "no-such-gpu-anywhere", err, sizeof err), 0);
    cr_assert_null(e);
    cr_assert(strstr(err, "no-such-gpu-anywhere") && !strchr(err, '\n'), "%s", err);
}

/* VKGPT2_FAULT=create:1: the first vkCreateDevice fails; with one device that is the error, with
 * more the next candidate is created (vk_try_candidates). */
Test(vk_engine, failed_device_creation_names_the_error)
{
    use_temp_cache();
    setenv("VKGPT2_FAULT", "create:1", 1);
    vk_engine *e = NULL;
    char err[256] = "";
    int rc = vk_engine_create(&e, -1, err, sizeof err);
    char list[4096] = "";
    FILE *f = fmemopen(list, sizeof list, "w");
    vk_list_devices(f, err + 128, 128);
    fclose(f);
    int n_usable = 0;
    for (const char *p = list; (p = strstr(p, "usable by vkgpt2         yes")); p++) n_usable++;
    if (n_usable > 1) {
        cr_assert_eq(rc, 0, "the next device was not tried: %s", err);
        finish(e);
    } else {
        cr_assert_neq(rc, 0);
        cr_assert(strstr(err, "vkCreateDevice") && strstr(err, "VK_ERROR_INITIALIZATION_FAILED"), "%s", err);
    }
    /* the count restarts when the variable changes: create:2 lets this one through */
    setenv("VKGPT2_FAULT", "create:2", 1);
    cr_assert_eq(vk_engine_create(&e, -1, err, sizeof err), 0, "%s", err);
    finish(e);
    unsetenv("VKGPT2_FAULT");
}

/* The fence timeout comes from VKGPT2_FENCE_TIMEOUT_MS; a wait that times out (VKGPT2_FAULT=hang:N
 * reports VK_TIMEOUT for the Nth submission) fails with VK_TIMEOUT, every later submission and
 * transfer fails too, and destruction still frees everything (the work did finish). */
Test(vk_engine, fence_timeout_fails_like_a_lost_device)
{
    setenv("VKGPT2_FENCE_TIMEOUT_MS", "1234", 1);
    vk_engine *e = engine();
    cr_assert_eq(vk_engine_fence_timeout_ns(e), 1234000000ull);
    unsetenv("VKGPT2_FENCE_TIMEOUT_MS");
    vk_mem out;
    alloc_ok(e, &out, 64 * 4, VKE_MEM_DEVICE);
    vk_pipeline *p = vk_pipeline_get(e, "engine_test", (const uint32_t[]){WG}, 1);
    vk_seq *s = vk_seq_create(e, 2);
    test_push fill = {.dst = out.addr, .n = 64, .mode = MODE_FILL, .mul = 1, .add = 0};
    vk_seq_begin(s);
    vk_seq_dispatch(s, p, &fill, sizeof fill, 1, 1, 1, "fill");
    cr_assert_eq(vk_seq_end(s), 0);
    setenv("VKGPT2_FAULT", "hang:2", 1);
    cr_assert_eq(vk_seq_run(s), 0, "the first submission is fine");
    cr_assert_neq(vk_seq_run(s), 0, "the second one times out");
    cr_assert_eq(vk_seq_last_error(s), VK_TIMEOUT);
    cr_assert_neq(vk_seq_run(s), 0, "a hung device stays hung");
    cr_assert_eq(vk_seq_last_error(s), VK_TIMEOUT);
    uint32_t w[64];
    fprintf(stderr, "(the next transfer error is expected)\n");
    cr_assert_neq(vk_download(e, &out, 0, w, sizeof w), 0);
    unsetenv("VKGPT2_FAULT");
    vk_seq_destroy(s);
    vk_mem_free(e, &out);
    finish(e);
}
