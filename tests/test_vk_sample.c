/* test_vk_sample.c - the sampling shader against core/sampler.c, the CPU sampler.
 *
 * For many (settings, seed, step) the GPU's draw must be the CPU's draw. Both use the same 64-bit
 * counter-based uniform number; the softmax is float on the GPU and double on the CPU, so a draw
 * that lands within rounding of a probability boundary may differ: we allow a few such cases and
 * require every GPU draw to be one of the top-k candidates. */
#include "core/sampler.h"
#include "test_vk_common.h"

static int rank_of(const float *x, int n, int id)
{
    int r = 0;
    for (int i = 0; i < n; i++) r += x[i] > x[id] || (x[i] == x[id] && i < id);
    return r;
}

Test(vk_sample, matches_cpu_sampler)
{
    vkt t = vkt_open();
    vkt_seed(21);
    const int n = 5003;
    float *x = vkt_rand_floats(n, -4, 4);
    for (int i = 0; i < 40; i++) x[(i * 131) % n] = x[(i * 7) % n]; /* ties */
    vk_mem bx = vkt_buf(&t, (size_t)n * 4, x);
    vk_mem bout = vkt_host_buf(&t, 16), bp = vkt_host_buf(&t, sizeof(vk_sample_params));
    vkt_begin(&t);
    vk_op_sample(t.o, t.s, bout.addr, bx.addr, bp.addr, n);
    cr_assert(vk_seq_end(t.s) == 0);
    const struct { float temp; int top_k; float top_p; } cfg[] = {
        {0.9f, 40, 0.9f}, {1.0f, 1, 1.0f}, {0.5f, 256, 1.0f}, {2.0f, 7, 0.5f}, {1.3f, 100, 0.95f}};
    float *row = malloc((size_t)n * sizeof *row);
    int draws = 0, differ = 0;
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        gpt2_sampler_params sp = {.temp = cfg[c].temp, .top_k = cfg[c].top_k, .top_p = cfg[c].top_p,
                                  .repeat_penalty = 1.0f, .repeat_last_n = 0, .seed = 0x1234567890abull + c};
        gpt2_sampler *cs = gpt2_sampler_create(&sp, n);
        for (uint32_t step = 0; step < 24; step++) {
            vk_sample_params p = {.temp = sp.temp, .top_k = (uint32_t)sp.top_k, .top_p = sp.top_p,
                                  .step = step, .seed_lo = (uint32_t)sp.seed, .seed_hi = (uint32_t)(sp.seed >> 32)};
            memcpy(bp.map, &p, sizeof p);
            cr_assert(vk_seq_run(t.s) == 0);
            int32_t gpu = *(const int32_t *)bout.map;
            memcpy(row, x, (size_t)n * sizeof *row);
            int32_t cpu = gpt2_sampler_pick(cs, row, NULL, 0, step);
            cr_assert(gpu >= 0 && gpu < n, "gpu picked %d", gpu);
            cr_expect_lt(rank_of(x, n, gpu), sp.top_k, "gpu pick %d is outside the top %d", gpu, sp.top_k);
            draws++;
            differ += gpu != cpu;
        }
        gpt2_sampler_free(cs);
    }
    cr_expect_leq(differ, draws / 40, "%d of %d draws differ from the CPU sampler", differ, draws);
    cr_expect_eq(vk_validation_messages(t.e), 0);
    free(row);
    free(x);
    vk_mem_free(t.e, &bx);
    vk_mem_free(t.e, &bout);
    vk_mem_free(t.e, &bp);
    vkt_close(&t);
}

/* top_k = 1 is greedy whatever the temperature: the lowest index among equal maxima. */
Test(vk_sample, top1_is_argmax_with_ties)
{
    vkt t = vkt_open();
    vkt_seed(5);
    const int n = 1000;
    float *x = vkt_rand_floats(n, -1, 1);
    x[700] = x[300] = 9.0f;
    vk_mem bx = vkt_buf(&t, (size_t)n * 4, x);
    vk_mem bout = vkt_host_buf(&t, 16), bp = vkt_host_buf(&t, sizeof(vk_sample_params));
    vk_sample_params p = {.temp = 1.0f, .top_k = 1, .top_p = 1.0f, .step = 3, .seed_lo = 9};
    memcpy(bp.map, &p, sizeof p);
    vkt_begin(&t);
    vk_op_sample(t.o, t.s, bout.addr, bx.addr, bp.addr, n);
    vkt_run(&t);
    cr_expect_eq(*(const int32_t *)bout.map, 300);
    cr_expect_eq(vk_validation_messages(t.e), 0);
    free(x);
    vk_mem_free(t.e, &bx);
    vk_mem_free(t.e, &bout);
    vk_mem_free(t.e, &bp);
    vkt_close(&t);
}
