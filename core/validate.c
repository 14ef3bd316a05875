/* validate.c - checks of a model against its hyper-parameters: sane hyper-parameters, and every
 * tensor's shape, type and size. Loaders run it last, writers first. */
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "model_internal.h"

int gpt2_hparams_check(const gpt2_hparams *hp, const char *file, char *err, size_t errlen)
{
    if (hp->n_vocab <= 0 || hp->n_vocab > GPT2_MAX_VOCAB) {
        gpt2_errf(err, errlen, "%s: n_vocab %d is out of range (1..%d)", file, hp->n_vocab, GPT2_MAX_VOCAB);
        return -1;
    }
    if (hp->n_ctx <= 0 || hp->n_ctx > GPT2_MAX_CTX) {
        gpt2_errf(err, errlen, "%s: n_ctx %d is out of range (1..%d)", file, hp->n_ctx, GPT2_MAX_CTX);
        return -1;
    }
    if (hp->n_embd <= 0 || hp->n_embd > GPT2_MAX_EMBD) {
        gpt2_errf(err, errlen, "%s: n_embd %d is out of range (1..%d)", file, hp->n_embd, GPT2_MAX_EMBD);
        return -1;
    }
    if (hp->n_head <= 0 || hp->n_head > hp->n_embd) {
        gpt2_errf(err, errlen, "%s: n_head %d is out of range (1..n_embd=%d)", file, hp->n_head, hp->n_embd);
        return -1;
    }
    if (hp->n_embd % hp->n_head != 0) {
        gpt2_errf(err, errlen, "%s: n_embd %d is not divisible by n_head %d", file, hp->n_embd, hp->n_head);
        return -1;
    }
    if (hp->n_layer <= 0 || hp->n_layer > GPT2_MAX_LAYERS) {
        gpt2_errf(err, errlen, "%s: n_layer %d is out of range (1..%d)", file, hp->n_layer, GPT2_MAX_LAYERS);
        return -1;
    }
    if (!(hp->ln_eps > 0.0f && hp->ln_eps < 1.0f)) {
        gpt2_errf(err, errlen, "%s: layer_norm_epsilon %g is out of range (0, 1)", file, (double)hp->ln_eps);
        return -1;
    }
    return 0;
}

int gpt2_model_check(const gpt2_model *m, const char *file, const char *what, char *err, size_t errlen)
{
    char e2[256];
    if (gpt2_model_validate(m, e2, sizeof e2) == 0) return 0;
    gpt2_errf(err, errlen, "%s: %s%s", file, what, e2);
    return -1;
}

int gpt2_model_validate(const gpt2_model *m, char *err, size_t errlen)
{
    const char *who = m->format[0] ? m->format : "model";
    if (gpt2_hparams_check(&m->hp, who, err, errlen) != 0) return -1;
    if (m->wtype != GPT2_F32 && m->wtype != GPT2_F16 && !gpt2_dtype_is_quant(m->wtype)) {
        gpt2_errf(err, errlen, "%s: weight type %s is not f32, f16 or a block format", who,
                  gpt2_dtype_name(m->wtype));
        return -1;
    }
    if (!m->w.layers) {
        gpt2_errf(err, errlen, "%s: no layers", who);
        return -1;
    }
    int n = gpt2_n_tensors(&m->hp);
    for (int id = 0; id < n; id++) {
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        char name[64], got[48], want[48];
        gpt2_tensor_name_ggml(id, name, sizeof name);
        int64_t ne[2];
        gpt2_tensor_shape(&m->hp, id, ne);
        if (!t->data) {
            gpt2_errf(err, errlen, "%s: tensor %s has no data", who, name);
            return -1;
        }
        if (t->ne[0] != ne[0] || t->ne[1] != ne[1]) {
            gpt2_shape_str(got, sizeof got, 2, t->ne);
            gpt2_shape_str(want, sizeof want, 2, ne);
            gpt2_errf(err, errlen, "%s: tensor %s has shape %s, expected %s", who, name, got, want);
            return -1;
        }
        gpt2_tkind kind = gpt2_tensor_kind(id);
        /* wte and lm_head may be a block format too (ggml quantizes them); wpe stays float */
        bool emb_q = id != GPT2_T_WPE && gpt2_dtype_is_quant(t->type);
        bool ok = kind == GPT2_K_VEC ? t->type == GPT2_F32
            : kind == GPT2_K_MAT     ? t->type == m->wtype
                                     : (t->type == GPT2_F32 || t->type == GPT2_F16 || emb_q);
        if (!ok) {
            gpt2_errf(err, errlen, "%s: tensor %s has type %s, expected %s", who, name,
                      gpt2_dtype_name(t->type),
                      kind == GPT2_K_VEC       ? "f32"
                          : kind == GPT2_K_MAT ? gpt2_dtype_name(m->wtype)
                          : id == GPT2_T_WPE   ? "f32 or f16"
                                               : "f32, f16 or a block format");
            return -1;
        }
        if (gpt2_dtype_is_quant(t->type) && ne[0] % GPT2_QBLOCK != 0) {
            gpt2_errf(err, errlen, "%s: tensor %s has %lld columns, not a multiple of %d as %s needs", who,
                      name, (long long)ne[0], GPT2_QBLOCK, gpt2_dtype_name(t->type));
            return -1;
        }
        size_t want_bytes = gpt2_row_bytes(t->type, (size_t)ne[0]) * (size_t)ne[1];
        if (t->nbytes != want_bytes) {
            gpt2_errf(err, errlen, "%s: tensor %s has %zu bytes, expected %zu", who, name, t->nbytes,
                      want_bytes);
            return -1;
        }
    }
    if (m->vocab.n_tokens > m->hp.n_vocab) {
        gpt2_errf(err, errlen, "%s: vocabulary has %d tokens but the model only %d rows", who,
                  m->vocab.n_tokens, m->hp.n_vocab);
        return -1;
    }
    return 0;
}
