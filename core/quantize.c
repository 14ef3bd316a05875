/* quantize.c - vkg_quantize: a model of any readable format -> the same model with its weight
 * matrices, wte and lm_head in a ggml block format, as ggml's gpt-2 quantizer does it.
 *
 * Quantized: model/wte, model/lm_head and the 2-D weights model/h.N/{attn/c_attn, attn/c_proj,
 * mlp/c_fc, mlp/c_proj}/w. Biases, layernorm gains and wpe keep their types. Each tensor is
 * quantized row by row from its values as loaded (f32, f16, bf16 or an already quantized block
 * format, requantized); the report gives per-tensor RMS and max abs error of the dequantized
 * result against those values, and the weight bytes before and after. The output format follows
 * OUT's name: ".gguf" -> GGUF (format_gguf.c), anything else ggml legacy.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "outfile.h"
#include "progress.h"
#include "vkgpt2.h"

static int parse_type(const char *s, gpt2_dtype *t)
{
    static const gpt2_dtype q[] = {GPT2_Q8_0, GPT2_Q4_0, GPT2_Q4_1, GPT2_Q5_0, GPT2_Q5_1};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (s && !strcmp(s, gpt2_dtype_name(q[i]))) {
            *t = q[i];
            return 0;
        }
    return -1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int quantized_by_ggml(int id)
{
    return id == GPT2_T_WTE || id == GPT2_T_LM_HEAD || gpt2_tensor_kind(id) == GPT2_K_MAT;
}

/* Quantizes tensor t of m to qt in model memory; returns its RMS and max abs error. */
static int quantize_tensor(gpt2_model *m, gpt2_tensor *t, gpt2_dtype qt, double *rms, double *maxe, char *err,
                           size_t errlen, const char *name)
{
    const size_t cols = (size_t)t->ne[0], rows = (size_t)t->ne[1];
    const size_t srb = gpt2_row_bytes(t->type, cols), drb = gpt2_row_bytes(qt, cols);
    void *dst = gpt2_model_alloc(m, drb * rows);
    float *a = malloc(cols * sizeof *a), *b = malloc(cols * sizeof *b);
    if (!dst || !a || !b) {
        free(a);
        free(b);
        gpt2_errf(err, errlen, "quantize: out of memory for tensor %s (%zu bytes)", name, drb * rows);
        return -1;
    }
    double se = 0, mx = 0;
    for (size_t r = 0; r < rows; r++) {
        char *q = (char *)dst + r * drb;
        gpt2_dequantize_row(t->type, (const char *)t->data + r * srb, a, cols);
        gpt2_quantize_row(qt, a, q, cols);
        gpt2_dequantize_row(qt, q, b, cols);
        for (size_t i = 0; i < cols; i++) {
            double e = fabs((double)b[i] - a[i]);
            se += e * e;
            if (e > mx) mx = e;
        }
    }
    free(a);
    free(b);
    t->type = qt;
    t->data = dst;
    t->nbytes = drb * rows;
    *rms = sqrt(se / ((double)cols * (double)rows));
    *maxe = mx;
    return 0;
}

int vkg_quantize(const char *in, const char *out, const char *type, void *report_file, unsigned flags,
                 char *err, size_t errlen)
{
    FILE *report = report_file;
    gpt2_dtype qt;
    if (parse_type(type, &qt) != 0) {
        gpt2_errf(err, errlen, "quantize: type '%s' is not one of q8_0, q4_0, q4_1, q5_0, q5_1",
                  type ? type : "");
        return -1;
    }
    if (!in || !out || !*out) {
        gpt2_errf(err, errlen, "quantize: needs an input model and an output path");
        return -1;
    }
    /* before loading: never the input, never a surprise overwrite, a writable destination */
    const unsigned of = flags & VKG_OUT_FORCE ? 0 : GPT2_OUT_NO_REPLACE;
    const char *inputs[2] = {in, NULL};
    int ret = gpt2_out_check(out, of, inputs, err, errlen);
    if (ret != 0) return ret;
    gpt2_model m;
    if (gpt2_model_load(&m, in, err, errlen) != 0) return -1;
    ret = -1;
    /* The per-tensor lines are kept here and written after the quantizing step, so that they never
     * come while a progress line of that step is on the screen. */
    char *lines = NULL;
    size_t lines_len = 0;
    FILE *rep = report ? open_memstream(&lines, &lines_len) : NULL;
    if (m.hp.n_embd % GPT2_QBLOCK != 0) {
        gpt2_errf(err, errlen, "quantize: %s: n_embd %d is not a multiple of %d, as block formats need", in,
                  m.hp.n_embd, GPT2_QBLOCK);
        goto done;
    }
    const int tied = m.w.lm_head.data == m.w.wte.data;
    const size_t before = gpt2_weights_bytes(&m);
    const int n = gpt2_n_tensors(&m.hp);
    if (report)
        fprintf(report, "quantizing %s (%s, %s) to %s: %s\n", in, m.format, gpt2_dtype_name(m.wtype), out,
                gpt2_dtype_name(qt));
    double worst_rms = 0;
    for (int id = 0; id < n; id++) {
        gpt2_tensor *t = gpt2_tensor_at(&m, id);
        char name[64];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        if (!quantized_by_ggml(id) || (id == GPT2_T_LM_HEAD && tied)) continue;
        gpt2_progress(in, "quantizing", (uint64_t)id, (uint64_t)n);
        gpt2_dtype from = t->type;
        double rms, mx;
        if (quantize_tensor(&m, t, qt, &rms, &mx, err, errlen, name) != 0) goto done;
        if (rms > worst_rms) worst_rms = rms;
        if (rep)
            fprintf(rep, "  %-28s [%5lld, %5lld] %-4s -> %s  rms %.3e  max %.3e\n", name, (long long)t->ne[0],
                    (long long)t->ne[1], gpt2_dtype_name(from), gpt2_dtype_name(qt), rms, mx);
    }
    gpt2_progress(in, "quantizing", (uint64_t)n, (uint64_t)n);
    if (rep) {
        fclose(rep);
        rep = NULL;
        if (lines) fwrite(lines, 1, lines_len, report);
        if (report) fflush(report);
    }
    if (tied) m.w.lm_head = m.w.wte;
    m.wtype = qt;
    char e2[512];
    if (gpt2_model_validate(&m, e2, sizeof e2) != 0) {
        gpt2_errf(err, errlen, "quantize: %s", e2);
        goto done;
    }
    const size_t after = gpt2_weights_bytes(&m);
    const int gguf = ends_with(out, ".gguf");
    ret = gguf ? gpt2_write_gguf_ex(&m, out, of, err, errlen) : gpt2_write_ggml_ex(&m, out, of, err, errlen);
    if (ret != 0) goto done;
    if (report)
        fprintf(report,
                "weights: %.2f MiB -> %.2f MiB (%.2fx smaller); worst tensor rms %.3e; wrote %s (%s)\n",
                before / 1048576.0, after / 1048576.0, after ? (double)before / after : 0.0, worst_rms, out,
                gguf ? "gguf" : "ggml");
    ret = 0;
done:
    if (rep) fclose(rep);
    free(lines);
    gpt2_model_free(&m);
    return ret;
}
