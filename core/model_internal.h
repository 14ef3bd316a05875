/* model_internal.h - helpers shared by the format readers and writers (model.c, format_*.c,
 * formats_write.c, synth.c). Not part of the public API.
 */
#ifndef VKG_MODEL_INTERNAL_H
#define VKG_MODEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "file.h"
#include "model.h"
#include "outfile.h"

/* Sanity limits on hyper-parameters read from files. */
#define GPT2_MAX_VOCAB (1 << 24)
#define GPT2_MAX_CTX (1 << 20)
#define GPT2_MAX_EMBD (1 << 16)

/* ---- the tensors of a model, addressed by one index ----
 * 0 wte, 1 wpe, 2 ln_f_g, 3 ln_f_b, 4 lm_head, then 12 per layer in gpt2_layer's field order. */
enum { GPT2_T_WTE = 0, GPT2_T_WPE, GPT2_T_LNF_G, GPT2_T_LNF_B, GPT2_T_LM_HEAD, GPT2_T_GLOBALS };
enum {
    GPT2_L_LN1_G = 0,
    GPT2_L_LN1_B,
    GPT2_L_ATTN_W,
    GPT2_L_ATTN_B,
    GPT2_L_PROJ_W,
    GPT2_L_PROJ_B,
    GPT2_L_LN2_G,
    GPT2_L_LN2_B,
    GPT2_L_FC_W,
    GPT2_L_FC_B,
    GPT2_L_FC2_W,
    GPT2_L_FC2_B,
    GPT2_L_COUNT
};

typedef enum gpt2_tkind {
    GPT2_K_EMB, /* wte, wpe, lm_head: f32 or f16 kept as stored, bf16 widened */
    GPT2_K_MAT, /* weight matrix: stored in m->wtype */
    GPT2_K_VEC, /* bias or gain: f32 */
} gpt2_tkind;

static inline int gpt2_n_tensors(const gpt2_hparams *hp)
{
    return GPT2_T_GLOBALS + GPT2_L_COUNT * hp->n_layer;
}

/* The tensor of index id in m (m->w.layers must be allocated for layer tensors). */
gpt2_tensor *gpt2_tensor_at(gpt2_model *m, int id);
const gpt2_tensor *gpt2_tensor_at_c(const gpt2_model *m, int id);
gpt2_tkind gpt2_tensor_kind(int id);
/* Expected shape (ne0 = in, ne1 = out/rows) of tensor id. */
void gpt2_tensor_shape(const gpt2_hparams *hp, int id, int64_t ne[2]);
/* Whether tensor id is a Conv1D weight in Hugging Face files (stored [in][out]). */
bool gpt2_tensor_is_conv1d(int id);
/* Names in ggml legacy files ("model/h3/attn/c_attn/w") and HF files ("h.3.attn.c_attn.weight"). */
void gpt2_tensor_name_ggml(int id, char *buf, size_t n);
void gpt2_tensor_name_hf(int id, char *buf, size_t n);
/* Parses a name (HF: without "transformer."); returns the id or -1. */
int gpt2_tensor_id_ggml(const char *name, size_t len, int n_layer);
int gpt2_tensor_id_hf(const char *name, size_t len, int n_layer);
/* Names in GGUF files of llama.cpp's gpt2 architecture ("blk.3.attn_qkv.weight"), and back. */
void gpt2_tensor_name_gguf(int id, char *buf, size_t n);
int gpt2_tensor_id_gguf(const char *name, size_t len, int n_layer);

/* ---- errors ---- */
/* "[a, b]" or "[a]" */
void gpt2_shape_str(char *buf, size_t n, int ndim, const int64_t *ne);

/* ---- hyper-parameters and memory ---- */
/* Checks hp for absurd values; message prefixed by "file: ". */
int gpt2_hparams_check(const gpt2_hparams *hp, const char *file, char *err, size_t errlen);
/* Bytes the weights take in memory for hp and wtype (untied lm_head counted when untied). */
uint64_t gpt2_expected_bytes(const gpt2_hparams *hp, gpt2_dtype wtype, bool untied);
/* RAM usable for weights: physical memory, or $VKGPT2_MEM_LIMIT bytes when set. */
uint64_t gpt2_mem_available(void);
/* Refuses (-1, err naming file and sizes) when need exceeds gpt2_mem_available(). */
int gpt2_mem_check(uint64_t need, const char *file, char *err, size_t errlen);

/* Places tensor id of m from file data src (type st) holding rows x cols elements: in place when
 * the type already fits and src is aligned, otherwise converted into model-owned memory. When
 * transpose is set, src is [in][out] (rows = ne0 of the result). */
int gpt2_place_tensor(gpt2_model *m, int id, const void *src, gpt2_dtype st, bool transpose, const char *file,
                      char *err, size_t errlen);

/* Allocates m->w.layers (zeroed, model-owned). */
int gpt2_alloc_layers(gpt2_model *m, char *err, size_t errlen);

/* gpt2_model_validate with the file first in the message ("file: <what><reason>"): what is "" for
 * a loader's last check, "cannot write an invalid model: " for a writer's first. 0 or -1. */
int gpt2_model_check(const gpt2_model *m, const char *file, const char *what, char *err, size_t errlen);

/* A scratch vocabulary of n tokens for a loader to fill before gpt2_vocab_copy: zeroed tok and len
 * arrays (the caller frees both), eot -1, the rest empty. -1 when out of memory, with both arrays
 * NULL. */
int gpt2_vocab_scratch(gpt2_vocab *v, int32_t n);

/* ---- output files: gpt2_out (outfile.h) ---- */

#endif
