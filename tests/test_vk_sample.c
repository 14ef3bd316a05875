/* test_vk_sample.c - the sampling shader against core/sampler.c, the CPU sampler.
 *
 * For many (settings, seed, step) the GPU's draw must be the CPU's draw. Both use the same 64-bit
 * counter-based uniform number; the softmax is float on the GPU and double on the CPU, so a draw
 * that lands within rounding of a probability boundary may differ: we allow a few such cases and
 * require every GPU draw to be one of the top-k candidates. The rows ops of a batched step:
 * vk_op_argmax_rows against each row's argmax, vk_op_sample_rows against the single-row op per row. */
#include "core/sampler.h"
#include "test_vk_common.h"

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
    const struct {
        float temp;
        int top_k;
        float top_p;
    } cfg[] = {{0.9f, 40, 0.9f}, {1.0f, 1, 1.0f}, {0.5f, 256, 1.0f}, {2.0f, 7, 0.5f}, {1.3f, 100, 0.95f}};
    float *row = malloc((size_t)n * sizeof *row);
    int draws = 0, differ = 0;
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        gpt2_sampler_params sp = {.temp = cfg[c].temp,
                                  .top_k = cfg[c].top_k,
                                  .top_p = cfg[c].top_p,
                                  .repeat_penalty = 1.0f,
                                  .repeat_last_n = 0,
                                  .seed = 0x1234567890abull + c};
        gpt2_sampler *cs = gpt2_sampler_create(&sp, n);
        for (uint32_t step = 0; step < 24; step++) {
            vk_sample_params p = {.temp = sp.temp,
                                  .top_k = (uint32_t)sp.top_k,
                                  .top_p = sp.top_p,
                                  .step = step,
                                  .seed_lo = (uint32_t)sp.seed,
                                  .seed_hi = (uint32_t)(sp.seed >> 32)};
            memcpy(bp.map, &p, sizeof p);
            cr_assert(vk_seq_run(t.s) == 0);
            int32_t gpu = *(const int32_t *)bout.map;
            memcpy(row, x, (size_t)n * sizeof *row);
            int32_t cpu = gpt2_sampler_pick(cs, row, NULL, 0, step);
            cr_assert(gpu >= 0 && gpu < n, "gpu picked %d", gpu);
            cr_expect_lt(ref64_rank(x, n, gpu), sp.top_k, "gpu pick %d is outside the top %d", gpu, sp.top_k);
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

/* ---- the rows ops of a batched step: one argmax / one draw per row ---- */

/* vk_op_argmax_rows: out[r] is the lowest index of row r's maximum (ties placed across rows, a
 * maximum in the first and in the last column), as cpu_argmax finds it. */
Test(vk_sample, argmax_rows_is_each_rows_argmax)
{
    vkt t = vkt_open();
    vkt_seed(31);
    const int n = 3001, rows = 7;
    float *x = vkt_rand_floats((size_t)rows * n, -3, 3);
    x[0 * n + 0] = 7.0f;                    /* row 0: first column */
    x[1 * n + n - 1] = 7.0f;                /* row 1: last column */
    x[2 * n + 900] = x[2 * n + 400] = 6.5f; /* row 2: a tie, the lower wins */
    x[3 * n + 5] = x[3 * n + 2999] = x[3 * n + 6] = 8.0f;
    for (int i = 0; i < n; i++) x[4 * n + i] = -1.0f; /* row 4: all equal */
    vk_mem bx = vkt_buf(&t, (size_t)rows * n * 4, x), bout = vkt_host_buf(&t, (size_t)rows * 4);
    vkt_begin(&t);
    vk_op_argmax_rows(t.o, t.s, bout.addr, bx.addr, n, rows);
    vkt_run(&t);
    for (int r = 0; r < rows; r++) {
        int want = cpu_argmax(x + (size_t)r * n, n);
        cr_assert_eq(want, ref64_argmax(x + (size_t)r * n, n), "cpu_argmax row %d", r);
        cr_assert_eq(((const int32_t *)bout.map)[r], want, "row %d: gpu %d, want %d", r,
                     ((const int32_t *)bout.map)[r], want);
    }
    cr_expect_eq(vk_validation_messages(t.e), 0);
    free(x);
    vk_mem_free(t.e, &bx);
    vk_mem_free(t.e, &bout);
    vkt_close(&t);
}

/* vk_op_sample_rows: row r's draw with params[r] is the draw vk_op_sample makes from that row alone
 * with the same params (checked against the CPU sampler above), and one of the row's top-k. */
Test(vk_sample, sample_rows_draws_as_the_single_row_op)
{
    vkt t = vkt_open();
    vkt_seed(32);
    const int n = 2003, rows = 5;
    float *x = vkt_rand_floats((size_t)rows * n, -4, 4);
    vk_mem bx = vkt_buf(&t, (size_t)rows * n * 4, x), bout = vkt_host_buf(&t, (size_t)rows * 4);
    vk_mem bp = vkt_host_buf(&t, (size_t)rows * sizeof(vk_sample_params));
    vk_mem bx1 = vkt_buf(&t, (size_t)n * 4, NULL), bout1 = vkt_host_buf(&t, 16);
    vk_mem bp1 = vkt_host_buf(&t, sizeof(vk_sample_params));
    const struct {
        float temp;
        uint32_t top_k;
        float top_p;
    } cfg[5] = {{0.9f, 40, 0.9f}, {1.0f, 1, 1.0f}, {0.5f, 256, 1.0f}, {2.0f, 7, 0.5f}, {1.3f, 100, 0.95f}};
    vk_sample_params p[5];
    for (int r = 0; r < rows; r++)
        p[r] = (vk_sample_params){.temp = cfg[r].temp,
                                  .top_k = cfg[r].top_k,
                                  .top_p = cfg[r].top_p,
                                  .step = (uint32_t)(3 * r + 1),
                                  .seed_lo = 0x9000u + (uint32_t)r,
                                  .seed_hi = 17};
    memcpy(bp.map, p, sizeof p);
    vkt_begin(&t);
    vk_op_sample_rows(t.o, t.s, bout.addr, bx.addr, bp.addr, n, rows);
    vkt_run(&t);
    int32_t got[5];
    memcpy(got, bout.map, sizeof got);
    vk_seq *one = vk_seq_create(t.e, 8);
    cr_assert(one);
    vk_seq_begin(one);
    vk_op_sample(t.o, one, bout1.addr, bx1.addr, bp1.addr, n);
    cr_assert(vk_seq_end(one) == 0);
    for (int r = 0; r < rows; r++) {
        cr_assert(vk_upload(t.e, &bx1, 0, x + (size_t)r * n, (size_t)n * 4) == 0);
        memcpy(bp1.map, &p[r], sizeof p[r]);
        cr_assert(vk_seq_run(one) == 0);
        int32_t want = *(const int32_t *)bout1.map;
        cr_assert_eq(got[r], want, "row %d: rows op drew %d, the single-row op %d", r, got[r], want);
        cr_assert_lt(ref64_rank(x + (size_t)r * n, n, got[r]), (int)p[r].top_k,
                     "row %d: %d is outside the top %u", r, got[r], p[r].top_k);
    }
    cr_expect_eq(vk_validation_messages(t.e), 0);
    vk_seq_destroy(one);
    free(x);
    vk_mem_free(t.e, &bx);
    vk_mem_free(t.e, &bout);
    vk_mem_free(t.e, &bp);
    vk_mem_free(t.e, &bx1);
    vk_mem_free(t.e, &bout1);
    vk_mem_free(t.e, &bp1);
    vkt_close(&t);
}
