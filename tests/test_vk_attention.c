/* test_vk_attention.c - vk_op_kv_store + vk_op_attention (flash attention for n > 1, flash decoding
 * with several splits for n == 1; f32 and f16 KV caches; n_past > 0; head sizes that do not fill the
 * lanes; steps shorter than the recording) against a float64 reference and the CPU twin
 * cpu_attention. n_past comes from a step-parameter buffer at run time, so one recording replays at
 * growing positions. vk_op_attention_rows (a batched decode step: rows in their own slots and
 * positions) against the same reference per row and cpu_attention_rows. */
#include "test_vk_common.h"

typedef struct attn_env {
    int n, n_head, hd, n_ctx, E;
    gpt2_dtype kvt;
    vk_mem bqkv, bk, bv, bout, bscratch, bstep;
} attn_env;

static size_t kv_bytes(const attn_env *a) { return (size_t)a->n_ctx * a->E * gpt2_dtype_size(a->kvt); }

static void env_init(vkt *t, attn_env *a, int n, int n_head, int hd, int n_ctx, gpt2_dtype kvt)
{
    memset(a, 0, sizeof *a);
    a->n = n;
    a->n_head = n_head;
    a->hd = hd;
    a->n_ctx = n_ctx;
    a->E = n_head * hd;
    a->kvt = kvt;
    a->bqkv = vkt_buf(t, (size_t)n * 3 * a->E * 4, NULL);
    a->bk = vkt_buf(t, kv_bytes(a), NULL);
    a->bv = vkt_buf(t, kv_bytes(a), NULL);
    a->bout = vkt_buf(t, (size_t)n * a->E * 4, NULL);
    a->bscratch = vkt_buf(t, vk_attention_scratch_bytes(n_head, hd, n_ctx), NULL);
    a->bstep = vkt_host_buf(t, sizeof(vk_step_params));
    /* kv_store, barrier, attention: what the forward pass records */
    vkt_begin(t);
    vk_op_kv_store(t->o, t->s, a->bk.addr, a->bv.addr, kvt, a->bqkv.addr, a->bstep.addr, n, a->E);
    vk_seq_barrier(t->s);
    vk_op_attention(t->o, t->s, a->bout.addr, a->bqkv.addr, a->bk.addr, a->bv.addr, kvt, a->bstep.addr, n,
                    n_head, hd, n_ctx, a->bscratch.addr);
    cr_assert(vk_seq_end(t->s) == 0);
    cr_assert_eq(vk_seq_dispatches(t->s), n == 1 ? 3 : 2);
}

static void env_free(vkt *t, attn_env *a)
{
    vk_mem_free(t->e, &a->bqkv);
    vk_mem_free(t->e, &a->bk);
    vk_mem_free(t->e, &a->bv);
    vk_mem_free(t->e, &a->bout);
    vk_mem_free(t->e, &a->bscratch);
    vk_mem_free(t->e, &a->bstep);
}

static float kv_get(const void *cache, gpt2_dtype t, size_t i) { return gpt2_load(cache, t, i); }

/* The CPU twin's cache (head-major, cpu_kv_index) holding the same values as a device cache of
 * `rows` rows of E (row-major): a fresh allocation. */
static void *cpu_layout(const void *rowmajor, gpt2_dtype t, size_t rows, int n_ctx, int E, int hd)
{
    const size_t es = gpt2_dtype_size(t);
    char *c = malloc(rows * E * es);
    cr_assert(c);
    for (size_t r = 0; r < rows; r++)
        for (int e = 0; e < E; e++)
            memcpy(c + cpu_kv_index(n_ctx, E, hd, r, e) * es, (const char *)rowmajor + (r * E + e) * es, es);
    return c;
}

/* One step: random caches and qkv, run with (n_past, step_n), check against references. */
static void run_step(vkt *t, attn_env *a, int n_past, int step_n)
{
    int E = a->E, n = a->n, nt = (step_n == 0 || step_n > n) ? n : step_n;
    size_t ncache = (size_t)a->n_ctx * E, esz = gpt2_dtype_size(a->kvt);
    float *qkv = vkt_rand_floats((size_t)n * 3 * E, -1, 1);
    float *kf = vkt_rand_floats(ncache, -1, 1), *vf = vkt_rand_floats(ncache, -1, 1);
    void *k0 = malloc(ncache * esz), *v0 = malloc(ncache * esz);
    if (a->kvt == GPT2_F16) {
        uint16_t *kh = vkt_to_f16(kf, ncache), *vh = vkt_to_f16(vf, ncache);
        memcpy(k0, kh, ncache * 2);
        memcpy(v0, vh, ncache * 2);
        free(kh);
        free(vh);
    } else {
        memcpy(k0, kf, ncache * 4);
        memcpy(v0, vf, ncache * 4);
    }
    cr_assert(vk_upload(t->e, &a->bqkv, 0, qkv, (size_t)n * 3 * E * 4) == 0);
    cr_assert(vk_upload(t->e, &a->bk, 0, k0, ncache * esz) == 0);
    cr_assert(vk_upload(t->e, &a->bv, 0, v0, ncache * esz) == 0);
    cr_assert(vk_fill_zero(t->e, &a->bout, 0, (size_t)n * E * 4) == 0);
    vk_step_params sp = {.n_past = (uint32_t)n_past, .n = (uint32_t)step_n, .seed = 7};
    memcpy(a->bstep.map, &sp, sizeof sp);
    cr_assert(vk_seq_run(t->s) == 0);

    float *out = malloc((size_t)n * E * 4);
    void *k1 = malloc(ncache * esz), *v1 = malloc(ncache * esz);
    vkt_get(t, &a->bout, out, (size_t)n * E * 4);
    vkt_get(t, &a->bk, k1, ncache * esz);
    vkt_get(t, &a->bv, v1, ncache * esz);

    char what[160];
    snprintf(what, sizeof what, "attention n=%d (step %d) n_past=%d heads=%d hd=%d n_ctx=%d %s sg=%d", n, nt,
             n_past, a->n_head, a->hd, a->n_ctx, gpt2_dtype_name(a->kvt), vk_ops_subgroup(t->o));
    /* the store: new rows hold K/V (rounded to f16 within half an ulp, or exact), others unchanged */
    for (size_t r = 0; r < (size_t)a->n_ctx; r++) {
        for (int e = 0; e < E; e++) {
            size_t i = r * E + e;
            bool fresh = r >= (size_t)n_past && r < (size_t)(n_past + nt);
            float gk = kv_get(k1, a->kvt, i), gv = kv_get(v1, a->kvt, i);
            float wk = fresh ? qkv[(r - n_past) * 3 * E + E + e] : kv_get(k0, a->kvt, i);
            float wv = fresh ? qkv[(r - n_past) * 3 * E + 2 * E + e] : kv_get(v0, a->kvt, i);
            double tol = (fresh && a->kvt == GPT2_F16) ? 1.0 / 1024 * fabs(wk) + 1e-7 : 0;
            double tolv = (fresh && a->kvt == GPT2_F16) ? 1.0 / 1024 * fabs(wv) + 1e-7 : 0;
            if (!(fabs(gk - wk) <= tol) || !(fabs(gv - wv) <= tolv))
                cr_assert_fail("%s: cache row %zu col %d: k %g (want %g), v %g (want %g)", what, r, e, gk, wk,
                               gv, wv);
        }
    }
    /* float64 attention over the caches as stored */
    double *ref = calloc((size_t)n * E, sizeof *ref), *scale = calloc((size_t)n * E, sizeof *scale);
    double *sc = malloc((size_t)(n_past + n) * sizeof *sc);
    for (int tk = 0; tk < nt; tk++) {
        int len = n_past + tk + 1;
        for (int h = 0; h < a->n_head; h++) {
            const float *q = qkv + (size_t)tk * 3 * E + h * a->hd;
            double m = -INFINITY, l = 0;
            for (int j = 0; j < len; j++) {
                double s = 0;
                for (int d = 0; d < a->hd; d++)
                    s += (double)q[d] * kv_get(k1, a->kvt, (size_t)j * E + h * a->hd + d);
                sc[j] = s / sqrt((double)a->hd);
                if (sc[j] > m) m = sc[j];
            }
            for (int j = 0; j < len; j++) {
                sc[j] = exp(sc[j] - m);
                l += sc[j];
            }
            for (int d = 0; d < a->hd; d++) {
                double acc = 0, ab = 0;
                for (int j = 0; j < len; j++) {
                    double v = kv_get(v1, a->kvt, (size_t)j * E + h * a->hd + d);
                    acc += sc[j] * v;
                    ab += sc[j] * fabs(v);
                }
                ref[(size_t)tk * E + h * a->hd + d] = acc / l;
                scale[(size_t)tk * E + h * a->hd + d] = ab / l;
            }
        }
    }
    /* rows of tokens beyond the step stay untouched (zero) */
    vkt_check(what, out, ref, scale, (size_t)n * E, 1e-5, 1e-6);

    /* CPU twin, from the same initial caches */
    float *outc = calloc((size_t)n * E, 4);
    void *kc = cpu_layout(k0, a->kvt, (size_t)a->n_ctx, a->n_ctx, E, a->hd);
    void *vc = cpu_layout(v0, a->kvt, (size_t)a->n_ctx, a->n_ctx, E, a->hd);
    cpu_attention(outc, qkv, kc, vc, a->kvt, a->n_ctx, nt, n_past, a->n_head, a->hd, NULL);
    free(kc);
    free(vc);
    double tw = a->kvt == GPT2_F16 ? 1e-3 : 2e-5;
    vkt_check_twin(what, out, outc, scale, (size_t)n * E, tw, 2e-6);

    free(qkv);
    free(kf);
    free(vf);
    free(k0);
    free(v0);
    free(out);
    free(k1);
    free(v1);
    free(ref);
    free(scale);
    free(sc);
    free(outc);
}

/* kv_mask: 1 = f32 caches, 2 = f16, 3 = both. Decode also runs with subgroup variants off and on. */
static void run_case(vkt *t, int n, int n_head, int hd, int n_ctx, const int *pasts, int n_pasts, int step_n,
                     int kv_mask)
{
    vkt_seed((uint64_t)(n * 1000 + hd * 10 + n_ctx + step_n));
    for (int sg = 0; sg < 2; sg++) {
        vk_ops_set_subgroup(t->o, n > 1 ? -1 : sg);
        for (int kt = 0; kt < 2; kt++) {
            if (!(kv_mask & (1 << kt))) continue;
            attn_env a;
            env_init(t, &a, n, n_head, hd, n_ctx, (gpt2_dtype)kt);
            for (int i = 0; i < n_pasts; i++) run_step(t, &a, pasts[i], step_n);
            env_free(t, &a);
        }
        if (n > 1) break; /* only decode has subgroup variants */
    }
}

Test(vk_attention, decode)
{
    vkt t = vkt_open();
    int p1[] = {0, 37, 63, 64, 99}; /* 2 splits of 50 */
    run_case(&t, 1, 3, 64, 100, p1, 5, 1, 3);
    int p2[] = {0, 61, 250, 299}; /* 5 splits of 60; step.n 0 means all */
    run_case(&t, 1, 2, 64, 300, p2, 4, 0, 3);
    int p3[] = {1, 1000, 2099}; /* 32 splits of 66: two passes of 64 keys per workgroup */
    run_case(&t, 1, 2, 64, 2100, p3, 3, 1, 3);
    vkt_close(&t);
}

Test(vk_attention, decode_narrow_heads)
{
    vkt t = vkt_open();
    /* head_dim 18: no 16-byte K loads for f32 or f16; 40: 16-byte loads for both; 36: f32 only */
    int pasts[] = {0, 29, 70};
    run_case(&t, 1, 2, 18, 71, pasts, 3, 1, 3);
    run_case(&t, 1, 2, 40, 300, pasts, 3, 1, 3);
    run_case(&t, 1, 3, 36, 130, pasts, 3, 1, 3);
    vkt_close(&t);
}

Test(vk_attention, prefill)
{
    vkt t = vkt_open();
    int p1[] = {0, 20};
    run_case(&t, 17, 2, 64, 128, p1, 2, 0, 3);
    int p2[] = {10};
    run_case(&t, 65, 2, 64, 128, p2, 1, 0, 3);
    /* recorded for 17 tokens, replayed with 9 and with 2 */
    int p3[] = {3};
    run_case(&t, 17, 2, 64, 64, p3, 1, 9, 3);
    run_case(&t, 17, 2, 64, 64, p3, 1, 2, 3);
    vkt_close(&t);
}

Test(vk_attention, prefill_other_heads)
{
    vkt t = vkt_open();
    /* 40 dims: 5 per lane; 128: the largest head (shared memory close to 32 KiB) */
    int p1[] = {0, 7};
    run_case(&t, 3, 3, 40, 64, p1, 2, 0, 2);
    int p2[] = {5};
    run_case(&t, 33, 1, 128, 64, p2, 1, 0, 1);
    vkt_close(&t);
}

/* ---- vk_op_attention_rows: a batched decode step (one token of its own sequence per row) ---- */

/* n rows over n slots of n_ctx cache rows, row t in slot n-1-t at position pos[t] (from the step
 * buffer: a VKOPS_STEP_BATCHED header, then the rows). The op alone (it stores each row's K/V itself)
 * against a float64 reference over each row's own slot and against the CPU twin
 * cpu_attention_rows; every cache row but the rows' new ones stays as it was. */
static void run_rows(vkt *t, int n, int n_head, int hd, int n_ctx, gpt2_dtype kvt, const int *pos)
{
    const int E = n_head * hd;
    const size_t ncache = (size_t)n * n_ctx * E, esz = gpt2_dtype_size(kvt);
    vk_mem bqkv = vkt_buf(t, (size_t)n * 3 * E * 4, NULL), bk = vkt_buf(t, ncache * esz, NULL);
    vk_mem bv = vkt_buf(t, ncache * esz, NULL), bout = vkt_buf(t, (size_t)n * E * 4, NULL);
    vk_mem bscratch = vkt_buf(t, (size_t)n * vk_attention_scratch_bytes(n_head, hd, n_ctx), NULL);
    vk_mem bstep = vkt_host_buf(t, sizeof(vk_step_params) + (size_t)n * sizeof(vk_step_row));
    float *qkv = vkt_rand_floats((size_t)n * 3 * E, -1, 1);
    float *kf = vkt_rand_floats(ncache, -1, 1), *vf = vkt_rand_floats(ncache, -1, 1);
    void *k0 = malloc(ncache * esz), *v0 = malloc(ncache * esz), *k1 = malloc(ncache * esz),
         *v1 = malloc(ncache * esz);
    int *base = malloc((size_t)n * sizeof *base);
    cr_assert(k0 && v0 && k1 && v1 && base);
    if (kvt == GPT2_F16) {
        uint16_t *kh = vkt_to_f16(kf, ncache), *vh = vkt_to_f16(vf, ncache);
        memcpy(k0, kh, ncache * 2);
        memcpy(v0, vh, ncache * 2);
        free(kh);
        free(vh);
    } else {
        memcpy(k0, kf, ncache * 4);
        memcpy(v0, vf, ncache * 4);
    }
    cr_assert(vk_upload(t->e, &bqkv, 0, qkv, (size_t)n * 3 * E * 4) == 0);
    cr_assert(vk_upload(t->e, &bk, 0, k0, ncache * esz) == 0);
    cr_assert(vk_upload(t->e, &bv, 0, v0, ncache * esz) == 0);
    vk_step_params hdr = {.n = (uint32_t)n, .seed = 7, .kv_base = VKOPS_STEP_BATCHED};
    memcpy(bstep.map, &hdr, sizeof hdr);
    for (int r = 0; r < n; r++) {
        base[r] = (n - 1 - r) * n_ctx;
        vk_step_row row = {.kv_base = (uint32_t)base[r], .pos = (uint32_t)pos[r]};
        memcpy((char *)bstep.map + sizeof hdr + (size_t)r * sizeof row, &row, sizeof row);
    }
    vkt_begin(t);
    vk_op_attention_rows(t->o, t->s, bout.addr, bqkv.addr, bk.addr, bv.addr, kvt, bstep.addr, n, n_head, hd,
                         n_ctx, bscratch.addr);
    vkt_run(t);
    float *out = malloc((size_t)n * E * 4);
    vkt_get(t, &bout, out, (size_t)n * E * 4);
    vkt_get(t, &bk, k1, ncache * esz);
    vkt_get(t, &bv, v1, ncache * esz);

    char what[160];
    snprintf(what, sizeof what, "attention rows n=%d heads=%d hd=%d n_ctx=%d %s sg=%d", n, n_head, hd, n_ctx,
             gpt2_dtype_name(kvt), vk_ops_subgroup(t->o));
    for (int j = 0; j < n * n_ctx; j++) {
        int fresh = -1;
        for (int r = 0; r < n; r++)
            if (j == base[r] + pos[r]) fresh = r;
        for (int e = 0; e < E; e++) {
            size_t i = (size_t)j * E + e;
            float gk = kv_get(k1, kvt, i), gv = kv_get(v1, kvt, i);
            float wk = fresh >= 0 ? qkv[(size_t)fresh * 3 * E + E + e] : kv_get(k0, kvt, i);
            float wv = fresh >= 0 ? qkv[(size_t)fresh * 3 * E + 2 * E + e] : kv_get(v0, kvt, i);
            double tk = (fresh >= 0 && kvt == GPT2_F16) ? 1.0 / 1024 * fabs(wk) + 1e-7 : 0;
            double tv = (fresh >= 0 && kvt == GPT2_F16) ? 1.0 / 1024 * fabs(wv) + 1e-7 : 0;
            if (!(fabs(gk - wk) <= tk) || !(fabs(gv - wv) <= tv))
                cr_assert_fail("%s: cache row %d col %d: k %g (want %g), v %g (want %g)", what, j, e, gk, wk,
                               gv, wv);
        }
    }
    double *ref = calloc((size_t)n * E, sizeof *ref), *scale = calloc((size_t)n * E, sizeof *scale);
    double *sc = malloc((size_t)n_ctx * sizeof *sc);
    for (int r = 0; r < n; r++)
        for (int h = 0; h < n_head; h++) {
            const float *q = qkv + (size_t)r * 3 * E + h * hd;
            double m = -INFINITY, l = 0;
            for (int j = 0; j <= pos[r]; j++) {
                double s = 0;
                for (int d = 0; d < hd; d++)
                    s += (double)q[d] * kv_get(k1, kvt, (size_t)(base[r] + j) * E + h * hd + d);
                sc[j] = s / sqrt((double)hd);
                if (sc[j] > m) m = sc[j];
            }
            for (int j = 0; j <= pos[r]; j++) {
                sc[j] = exp(sc[j] - m);
                l += sc[j];
            }
            for (int d = 0; d < hd; d++) {
                double acc = 0, ab = 0;
                for (int j = 0; j <= pos[r]; j++) {
                    double v = kv_get(v1, kvt, (size_t)(base[r] + j) * E + h * hd + d);
                    acc += sc[j] * v;
                    ab += sc[j] * fabs(v);
                }
                ref[(size_t)r * E + h * hd + d] = acc / l;
                scale[(size_t)r * E + h * hd + d] = ab / l;
            }
        }
    vkt_check(what, out, ref, scale, (size_t)n * E, 1e-5, 1e-6);
    /* CPU twin from the same initial caches */
    void *kc = cpu_layout(k0, kvt, (size_t)n * n_ctx, n_ctx, E, hd);
    void *vc = cpu_layout(v0, kvt, (size_t)n * n_ctx, n_ctx, E, hd);
    float *outc = calloc((size_t)n * E, 4);
    cpu_attention_rows(outc, qkv, kc, vc, kvt, n_ctx, n, base, pos, n_head, hd, NULL);
    vkt_check_twin(what, out, outc, scale, (size_t)n * E, kvt == GPT2_F16 ? 1e-3 : 2e-5, 2e-6);
    cr_expect_eq(vk_validation_messages(t->e), 0);

    free(qkv);
    free(kf);
    free(vf);
    free(k0);
    free(v0);
    free(k1);
    free(v1);
    free(kc);
    free(vc);
    free(base);
    free(out);
    free(ref);
    free(scale);
    free(sc);
    free(outc);
    vk_mem_free(t->e, &bqkv);
    vk_mem_free(t->e, &bk);
    vk_mem_free(t->e, &bv);
    vk_mem_free(t->e, &bout);
    vk_mem_free(t->e, &bscratch);
    vk_mem_free(t->e, &bstep);
}

Test(vk_attention, rows_of_a_batched_step)
{
    vkt t = vkt_open();
    vkt_seed(4242);
    const int pos4[] = {0, 99, 37, 64}, pos3[] = {70, 0, 12}, pos1[] = {55};
    for (int sg = 0; sg < 2; sg++) {
        vk_ops_set_subgroup(t.o, sg);
        for (int kt = 0; kt < 2; kt++) {
            run_rows(&t, 4, 3, 64, 100, (gpt2_dtype)kt, pos4);
            run_rows(&t, 3, 2, 18, 71, (gpt2_dtype)kt, pos3);
            run_rows(&t, 1, 2, 40, 64, (gpt2_dtype)kt, pos1);
        }
    }
    vkt_close(&t);
}
