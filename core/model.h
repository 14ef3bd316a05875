/* model.h - a loaded GPT-2: hyper-parameters, weights, vocabulary.
 *
 * Every file format (ggml legacy, Hugging Face directory, ...) is read into this one struct; the
 * forward pass (graph.h) and every backend see nothing else. Weight matrices follow tensor.h:
 * [out][in], f32, f16 or a ggml block format (dtype.h). Vectors (biases, layernorm gains) are
 * always f32.
 */
#ifndef VKG_MODEL_H
#define VKG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#define GPT2_MAX_LAYERS 256

typedef enum gpt2_gelu {
    GPT2_GELU_TANH = 0, /* "gelu_new": 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))), GPT-2 */
    GPT2_GELU_ERF = 1,  /* "gelu": 0.5x(1+erf(x/sqrt 2)), Cerebras-GPT */
} gpt2_gelu;

typedef struct gpt2_hparams {
    int32_t n_vocab; /* rows of wte and of the LM head */
    int32_t n_ctx;   /* positions (rows of wpe) */
    int32_t n_embd;  /* model width */
    int32_t n_head;  /* attention heads; n_embd % n_head == 0 */
    int32_t n_layer; /* transformer blocks */
    float ln_eps;    /* layernorm epsilon (1e-5 for GPT-2) */
    gpt2_gelu gelu;  /* activation of the MLP */
} gpt2_hparams;

typedef struct gpt2_layer {
    gpt2_tensor ln1_g, ln1_b; /* [n_embd] pre-attention layernorm */
    gpt2_tensor attn_w;       /* [3*n_embd][n_embd] fused Q,K,V projection */
    gpt2_tensor attn_b;       /* [3*n_embd] */
    gpt2_tensor proj_w;       /* [n_embd][n_embd] attention output projection */
    gpt2_tensor proj_b;       /* [n_embd] */
    gpt2_tensor ln2_g, ln2_b; /* [n_embd] pre-MLP layernorm */
    gpt2_tensor fc_w;         /* [4*n_embd][n_embd] MLP up projection */
    gpt2_tensor fc_b;         /* [4*n_embd] */
    gpt2_tensor fc2_w;        /* [n_embd][4*n_embd] MLP down projection */
    gpt2_tensor fc2_b;        /* [n_embd] */
} gpt2_layer;

typedef struct gpt2_weights {
    /* wte, wpe and lm_head are f32 or f16 each, independently of wtype (ggml's f16 files keep
     * wpe f32; HF f16 files have it f16); wte and lm_head may be a block format too (ggml's
     * quantizer quantizes them). */
    gpt2_tensor wte;            /* [n_vocab][n_embd] token embedding */
    gpt2_tensor wpe;            /* [n_ctx][n_embd] position embedding */
    gpt2_tensor ln_f_g, ln_f_b; /* [n_embd] final layernorm */
    gpt2_tensor lm_head;        /* [n_vocab][n_embd]; same data as wte when tied */
    gpt2_layer *layers;         /* n_layer blocks (allocated with gpt2_model_alloc) */
} gpt2_weights;

/* The vocabulary as raw bytes (GPT-2's byte-to-unicode mapping already undone). */
typedef struct gpt2_vocab {
    int32_t n_tokens;     /* number of ids */
    char **tok;           /* tok[id]: bytes of the token (not NUL-terminated in general) */
    uint32_t *len;        /* len[id]: byte length */
    int32_t n_merges;     /* merge rules, in rank order; 0 if the file carries none */
    int32_t (*merges)[2]; /* merges[rank] = {left id, right id} */
    int32_t eot;          /* id of <|endoftext|>, or -1 */
} gpt2_vocab;

typedef struct gpt2_model {
    gpt2_hparams hp;        /* shape */
    gpt2_weights w;         /* weights (views into map or owned) */
    gpt2_vocab vocab;       /* tokenizer data; n_tokens may be 0 if none was found */
    gpt2_dtype wtype;       /* type of the weight matrices (f32, f16 or a block format) */
    char format[16];        /* "ggml", "hf", ... for messages */
    void *map;              /* mmap of the main weight file, or NULL */
    size_t map_size;        /* its size */
    void **owned;           /* blocks the model malloc'ed (transposed/widened tensors) */
    int n_owned, cap_owned; /* count and capacity of owned */
    void *extra_maps[64];   /* further mappings (sharded safetensors) */
    size_t extra_sizes[64]; /* their sizes */
    int n_extra;            /* count */
} gpt2_model;

/* Loads a model, detecting the format from the path (a directory: Hugging Face; a file: by its
 * magic). On failure returns -1 with a one-line message in err naming the file. */
int gpt2_model_load(gpt2_model *m, const char *path, char *err, size_t errlen);
void gpt2_model_free(gpt2_model *m);

/* Load flags. A path naming config.json or a .safetensors file loads its directory. Loading
 * refuses up front a model bigger than physical RAM ($VKGPT2_MEM_LIMIT bytes overrides it). */
#define GPT2_LOAD_VOCAB_OPTIONAL 1u /* HF: a directory without vocabulary files loads (n_tokens 0) */
int gpt2_model_load_ex(gpt2_model *m, const char *path, unsigned flags, char *err, size_t errlen);

/* Format readers, used by gpt2_model_load. */
int gpt2_load_ggml(gpt2_model *m, const char *path, char *err, size_t errlen);
int gpt2_load_hf(gpt2_model *m, const char *dir, char *err, size_t errlen);
int gpt2_load_hf_ex(gpt2_model *m, const char *dir, unsigned flags, char *err, size_t errlen);

/* Format writers (for synth and convert). Write m's weights and vocab to path. */
int gpt2_write_ggml(const gpt2_model *m, const char *path, char *err, size_t errlen);
int gpt2_write_hf(const gpt2_model *m, const char *dir, char *err, size_t errlen);
/* gpt2_write_ggml with GPT2_OUT_* flags (outfile.h); the plain writers use none (they replace an
 * existing output, atomically). gpt2_write_hf_ex takes them in its flags too. */
int gpt2_write_ggml_ex(const gpt2_model *m, const char *path, unsigned oflags, char *err, size_t errlen);
/* HF writer flags (gpt2_write_hf uses none: one model.safetensors, names without prefix). */
#define GPT2_HF_PREFIX 1u   /* tensor names "transformer.h.0...." */
#define GPT2_HF_SHARDED 2u  /* two shards + model.safetensors.index.json */
#define GPT2_HF_NO_VOCAB 4u /* config and weights only */
int gpt2_write_hf_ex(const gpt2_model *m, const char *dir, unsigned flags, char *err, size_t errlen);

/* Checks shapes and types of every tensor against hp; fills err on the first mismatch. */
int gpt2_model_validate(const gpt2_model *m, char *err, size_t errlen);

/* Memory the model owns: returns a block of n bytes registered for freeing with the model. */
void *gpt2_model_alloc(gpt2_model *m, size_t n);

/* Sum of the bytes of every weight tensor (wte counted once when tied). */
size_t gpt2_weights_bytes(const gpt2_model *m);

#endif
