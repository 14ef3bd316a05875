/* synth.h - deterministic synthetic GPT-2 models (for tests and benchmarks without real weights).
 *
 * Every weight is a pure function of (seed, tensor, element index) through a counter-based hash,
 * so results do not depend on the number of threads, and any tensor can be regenerated alone.
 * Scales follow GPT-2's initialisation so activations stay sane: matrices N(0, 0.02), residual
 * projections (attn c_proj, mlp c_proj) N(0, 0.02/sqrt(2*n_layer)), wpe N(0, 0.01), layernorm
 * gains 1 + N(0, 0.05), layernorm biases N(0, 0.02), other biases N(0, 0.01).
 *
 *     gpt2_synth_params p;
 *     gpt2_synth_defaults(&p);                 // tiny, f32, seed 1, byte vocabulary
 *     gpt2_synth_parse_size(&p, "124M", err, sizeof err);
 *     gpt2_model m;
 *     if (gpt2_synth(&m, &p, err, sizeof err) == 0) { ...; gpt2_model_free(&m); }
 */
#ifndef VKG_SYNTH_H
#define VKG_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef enum gpt2_synth_size {
    GPT2_SYNTH_TINY = 0, /* 2 layers, n_embd 64, 4 heads, n_ctx 128 */
    GPT2_SYNTH_124M,     /* 12 / 768 / 12, n_ctx 1024 */
    GPT2_SYNTH_355M,     /* 24 / 1024 / 16 */
    GPT2_SYNTH_774M,     /* 36 / 1280 / 20 */
    GPT2_SYNTH_1558M,    /* 48 / 1600 / 25 */
    GPT2_SYNTH_CUSTOM,   /* n_layer, n_embd, n_head below */
} gpt2_synth_size;

/* The shapes of the named sizes, indexed by gpt2_synth_size (tiny to 1558M): the one table of GPT-2
 * sizes (the synthetic models and the kernel benchmarks read it). */
typedef struct gpt2_size_info {
    const char *name;                       /* "124M" */
    const char *hf_name;                    /* "gpt2" (Hugging Face's name; "tiny" for tiny) */
    int32_t n_layer, n_embd, n_head, n_ctx; /* the hyper-parameters of that size */
} gpt2_size_info;
extern const gpt2_size_info gpt2_sizes[GPT2_SYNTH_CUSTOM];

typedef struct gpt2_synth_params {
    gpt2_synth_size size;
    int32_t n_layer, n_embd, n_head; /* GPT2_SYNTH_CUSTOM only */
    int32_t n_ctx;                   /* 0: 128 for tiny, 1024 otherwise */
    gpt2_dtype wtype;                /* GPT2_F32 or GPT2_F16 (matrices and wte/lm_head; wpe stays f32) */
    uint64_t seed;
    const gpt2_vocab *vocab; /* copied; NULL: gpt2_vocab_make_bytes(n_merges) */
    int32_t n_merges;        /* merges of the byte vocabulary (default 256) */
    int32_t n_vocab;         /* 0: the vocabulary's size; larger pads wte rows */
    bool untied_lm_head;     /* own lm_head tensor instead of sharing wte */
    gpt2_gelu gelu;          /* default GPT2_GELU_TANH */
    float ln_eps;            /* default 1e-5 */
    int n_threads;           /* 0: online CPUs (at most 16) */
} gpt2_synth_params;

/* tiny, f32, seed 1, byte vocabulary with 256 merges, tied lm_head. */
void gpt2_synth_defaults(gpt2_synth_params *p);

/* Sets the size from "tiny", "124M", "355M", "774M", "1558M" (also "gpt2", "gpt2-medium",
 * "gpt2-large", "gpt2-xl") or "LxExH" (e.g. "4x256x8", custom). Returns 0 or -1 with err. */
int gpt2_synth_parse_size(gpt2_synth_params *p, const char *s, char *err, size_t errlen);

/* Builds the model in memory (all tensors model-owned; format "synth"). 0 or -1 with err. */
int gpt2_synth(gpt2_model *m, const gpt2_synth_params *p, char *err, size_t errlen);

/* Builds the model and writes it: format "ggml" (a file) or "hf" (a directory). */
int gpt2_synth_write(const gpt2_synth_params *p, const char *format, const char *path, char *err,
                     size_t errlen);

/* The synthetic value of element i of tensor id (see model_internal.h numbering) before rounding
 * to the tensor's type: lets a test regenerate any weight without building the model. */
float gpt2_synth_value(const gpt2_hparams *hp, uint64_t seed, int id, uint64_t i);

#endif
