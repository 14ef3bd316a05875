/* test_vk_ops.c - the small Vulkan ops (embed, layernorm, gelu, add, softmax, argmax) against
 * float64 references and their CPU twins, on shapes that do not fill workgroups. */
#include "test_vk_common.h"

Test(vk_ops, embed)
{
    vkt t = vkt_open();
    vkt_seed(11);
    int n_vocab = 300, n_ctx = 40, n = 5;
    int ds[] = {5, 769, 64};
    for (int di = 0; di < 3; di++) {
        int d = ds[di];
        for (int ty = 0; ty < 4; ty++) {
            gpt2_dtype tte = (gpt2_dtype)(ty & 1), tpe = (gpt2_dtype)(ty >> 1);
            size_t nte = (size_t)n_vocab * d, npe = (size_t)n_ctx * d;
            float *wte = vkt_rand_floats(nte, -1, 1), *wpe = vkt_rand_floats(npe, -1, 1);
            uint16_t *hte = tte == GPT2_F16 ? vkt_to_f16(wte, nte) : NULL;
            uint16_t *hpe = tpe == GPT2_F16 ? vkt_to_f16(wpe, npe) : NULL;
            int32_t ids[5];
            for (int i = 0; i < n; i++) ids[i] = (int32_t)(vkt_unif() * n_vocab);
            ids[n - 1] = n_vocab - 1;
            vk_mem bte = vkt_buf(&t, nte * gpt2_dtype_size(tte), hte ? (void *)hte : (void *)wte);
            vk_mem bpe = vkt_buf(&t, npe * gpt2_dtype_size(tpe), hpe ? (void *)hpe : (void *)wpe);
            vk_mem bids = vkt_buf(&t, sizeof ids, ids), bx = vkt_buf(&t, (size_t)n * d * 4, NULL);
            vk_mem bstep = vkt_host_buf(&t, sizeof(vk_step_params));
            vkt_begin(&t);
            vk_op_embed(t.o, t.s, bx.addr, bte.addr, tte, bpe.addr, tpe, bids.addr, bstep.addr, n, d);
            cr_assert(vk_seq_end(t.s) == 0);
            int pasts[] = {0, 3, n_ctx - n};
            for (int pi = 0; pi < 3; pi++) {
                int pos0 = pasts[pi];
                vk_step_params sp = {.n_past = (uint32_t)pos0, .n = (uint32_t)n};
                memcpy(bstep.map, &sp, sizeof sp);
                cr_assert(vk_seq_run(t.s) == 0);
                float *x = malloc((size_t)n * d * 4);
                vkt_get(&t, &bx, x, (size_t)n * d * 4);
                char what[96];
                snprintf(what, sizeof what, "embed d=%d %s/%s pos0=%d", d, gpt2_dtype_name(tte),
                         gpt2_dtype_name(tpe), pos0);
                gpt2_tensor Tte = {
                    tte, {d, n_vocab}, hte ? (void *)hte : (void *)wte, nte * gpt2_dtype_size(tte)};
                gpt2_tensor Tpe = {
                    tpe, {d, n_ctx}, hpe ? (void *)hpe : (void *)wpe, npe * gpt2_dtype_size(tpe)};
                vkt_check_embed(what, x, &Tte, wte, &Tpe, wpe, ids, n, d, pos0);
                free(x);
            }
            vk_mem_free(t.e, &bte);
            vk_mem_free(t.e, &bpe);
            vk_mem_free(t.e, &bids);
            vk_mem_free(t.e, &bx);
            vk_mem_free(t.e, &bstep);
            free(wte);
            free(wpe);
            free(hte);
            free(hpe);
        }
    }
    vkt_close(&t);
}

Test(vk_ops, layernorm)
{
    vkt t = vkt_open();
    vkt_seed(12);
    int shapes[][2] = {{1, 5}, {3, 769}, {7, 100}, {2, 2048}};
    for (int sg = 0; sg < 2; sg++) {
        vk_ops_set_subgroup(t.o, sg);
        for (int si = 0; si < 4; si++) {
            int n = shapes[si][0], d = shapes[si][1];
            size_t nx = (size_t)n * d;
            float *x = vkt_rand_floats(nx, -2, 2);
            for (int r = 0; r < n; r++) /* a large mean on some rows: two-pass must stay exact */
                for (int i = 0; i < d; i++) x[(size_t)r * d + i] += (r % 2) ? 300.0f : 0.0f;
            float *g = vkt_rand_floats(d, 0.5f, 1.5f), *b = vkt_rand_floats(d, -1, 1);
            vk_mem bx = vkt_buf(&t, nx * 4, x), bg = vkt_buf(&t, d * 4, g), bb = vkt_buf(&t, d * 4, b);
            vk_mem by = vkt_buf(&t, nx * 4, NULL);
            vkt_begin(&t);
            vk_op_layernorm(t.o, t.s, by.addr, bx.addr, bg.addr, bb.addr, n, d, 1e-5f);
            vk_seq_barrier(t.s);
            vk_op_layernorm(t.o, t.s, bx.addr, bx.addr, bg.addr, bb.addr, n, d, 1e-5f); /* in place */
            vkt_run(&t);
            float *y = malloc(nx * 4), *y2 = malloc(nx * 4), *yc = malloc(nx * 4);
            double *ref = malloc(nx * sizeof *ref), *scale = malloc(nx * sizeof *scale);
            vkt_get(&t, &by, y, nx * 4);
            vkt_get(&t, &bx, y2, nx * 4);
            vkt_layernorm_ref(ref, scale, x, d, g, b, n, d, 1e-5);
            char what[96];
            snprintf(what, sizeof what, "layernorm n=%d d=%d sg=%d", n, d, vk_ops_subgroup(t.o));
            vkt_check(what, y, ref, scale, nx, 1e-5, 1e-6);
            vkt_check(what, y2, ref, scale, nx, 1e-5, 1e-6);
            cpu_layernorm(yc, x, g, b, n, d, 1e-5f);
            vkt_check_twin(what, y, yc, scale, nx, 2e-5, 2e-6);
            vk_mem_free(t.e, &bx);
            vk_mem_free(t.e, &bg);
            vk_mem_free(t.e, &bb);
            vk_mem_free(t.e, &by);
            free(x);
            free(g);
            free(b);
            free(y);
            free(y2);
            free(yc);
            free(ref);
            free(scale);
        }
    }
    vkt_close(&t);
}

Test(vk_ops, gelu_and_add)
{
    vkt t = vkt_open();
    vkt_seed(13);
    size_t counts[] = {1, 1000, 70001};
    for (int ci = 0; ci < 3; ci++) {
        size_t n = counts[ci];
        for (int form = 0; form < 2; form++) {
            float *x = vkt_rand_floats(n, -6, 6);
            /* the extremes: large arguments must not give NaN (tanh overflow) */
            float special[] = {-100.0f, 100.0f, -20.0f, 20.0f, -9.5f, 9.5f, 1e-8f, -1e-8f, 3.0e4f, -3.0e4f};
            for (size_t i = 0; i < n && i < 10; i++) x[n - 1 - i] = special[i];
            float *a = vkt_rand_floats(n, -1, 1);
            vk_mem bx = vkt_buf(&t, n * 4, x), ba = vkt_buf(&t, n * 4, a);
            vkt_begin(&t);
            vk_op_gelu(t.o, t.s, bx.addr, n, form);
            vk_seq_barrier(t.s);
            vk_op_add(t.o, t.s, ba.addr, bx.addr, n);
            vkt_run(&t);
            float *g = malloc(n * 4), *s = malloc(n * 4), *gc = malloc(n * 4);
            double *ref = malloc(n * sizeof *ref), *scale = malloc(n * sizeof *scale);
            vkt_get(&t, &bx, g, n * 4);
            vkt_get(&t, &ba, s, n * 4);
            for (size_t i = 0; i < n; i++) {
                ref[i] = ref64_gelu(x[i], form);
                scale[i] = fabs(x[i]);
            }
            char what[64];
            snprintf(what, sizeof what, "gelu form %d count %zu", form, n);
            vkt_check(what, g, ref, scale, n, 1e-5, 1e-7);
            memcpy(gc, x, n * 4);
            cpu_gelu(gc, n, form);
            vkt_check_twin(what, g, gc, scale, n, 2e-5, 2e-7);
            for (size_t i = 0; i < n; i++) {
                ref[i] = (double)a[i] + g[i];
                scale[i] = fabs(a[i]) + fabs(g[i]);
            }
            snprintf(what, sizeof what, "add count %zu", n);
            vkt_check(what, s, ref, scale, n, 1e-7, 0);
            memcpy(gc, a, n * 4);
            cpu_add(gc, g, n);
            vkt_check_twin(what, s, gc, NULL, n, 0, 0);
            vk_mem_free(t.e, &bx);
            vk_mem_free(t.e, &ba);
            free(x);
            free(a);
            free(g);
            free(s);
            free(gc);
            free(ref);
            free(scale);
        }
    }
    vkt_close(&t);
}

Test(vk_ops, softmax)
{
    vkt t = vkt_open();
    vkt_seed(14);
    int shapes[][2] = {{1, 5}, {3, 769}, {2, 50257}, {5, 100}};
    for (int sg = 0; sg < 2; sg++) {
        vk_ops_set_subgroup(t.o, sg);
        for (int si = 0; si < 4; si++) {
            int n = shapes[si][0], d = shapes[si][1];
            size_t nx = (size_t)n * d;
            float *x = vkt_rand_floats(nx, -10, 10);
            x[0] = 80.0f; /* exp overflows without the max subtraction */
            vk_mem bx = vkt_buf(&t, nx * 4, x);
            vkt_begin(&t);
            vk_op_softmax(t.o, t.s, bx.addr, n, d);
            vkt_run(&t);
            float *y = malloc(nx * 4), *yc = malloc(nx * 4);
            double *ref = malloc(nx * sizeof *ref);
            vkt_get(&t, &bx, y, nx * 4);
            ref64_softmax(ref, x, n, d);
            char what[64];
            snprintf(what, sizeof what, "softmax n=%d d=%d sg=%d", n, d, vk_ops_subgroup(t.o));
            /* exp of arguments up to 20 in magnitude: relative error ~ |arg| ulp */
            vkt_check(what, y, ref, NULL, nx, 1e-5, 1e-9);
            memcpy(yc, x, nx * 4);
            cpu_softmax(yc, n, d);
            vkt_check_twin(what, y, yc, NULL, nx, 2e-5, 1e-9);
            vk_mem_free(t.e, &bx);
            free(x);
            free(y);
            free(yc);
            free(ref);
        }
    }
    vkt_close(&t);
}

Test(vk_ops, argmax)
{
    vkt t = vkt_open();
    vkt_seed(15);
    int ns[] = {1, 5, 1000, 50257, 100003};
    for (int ni = 0; ni < 5; ni++) {
        int n = ns[ni];
        for (int mode = 0; mode < 3; mode++) {
            float *x = vkt_rand_floats((size_t)n, -5, 5);
            int want;
            if (mode == 1 && n > 3) { /* ties: the lowest index wins */
                x[n - 1] = 7.0f;
                x[n / 2] = 7.0f;
                x[n / 3 + 1] = 7.0f;
            } else if (mode == 2 && n > 3) { /* NaNs are skipped; -inf elsewhere */
                x[0] = NAN;
                x[n / 2] = NAN;
                x[n - 2] = -INFINITY;
                x[n - 1] = 9.0f;
            }
            want = ref64_argmax(x, n);
            vk_mem bx = vkt_buf(&t, (size_t)n * 4, x), bo = vkt_buf(&t, 4, NULL);
            vkt_begin(&t);
            vk_op_argmax(t.o, t.s, bo.addr, bx.addr, n);
            vkt_run(&t);
            uint32_t got;
            vkt_get(&t, &bo, &got, 4);
            cr_assert_eq((int)got, want, "argmax n=%d mode %d: got %u want %d", n, mode, got, want);
            cr_assert_eq(cpu_argmax(x, n), want, "cpu_argmax n=%d mode %d", n, mode);
            vk_mem_free(t.e, &bx);
            vk_mem_free(t.e, &bo);
            free(x);
        }
    }
    vkt_close(&t);
}
