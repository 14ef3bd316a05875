/* format_gguf.h - GGUF (v2, v3) and llm.c checkpoints: readers (format_gguf.c, format_llmc.c),
 * writers (gguf_write.c, format_llmc.c), and the generic GGUF parser (gguf.c) the GGUF model
 * reader is built on (tests use it to look at any GGUF file).
 *
 * GGUF, little-endian throughout:
 *   "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count
 *   kv:     string key, u32 value type, value     (string = u64 length + bytes, no NUL)
 *   array:  u32 element type, u64 count, elements (elements may be strings or arrays)
 *   tensor: string name, u32 n_dims, u64 ne[n_dims] (ne0 contiguous), u32 ggml type, u64 offset
 *   padding to general.alignment (u32, default 32), then the data; offsets are relative to the data
 *   start and multiples of the alignment.
 */
#ifndef VKG_FORMAT_GGUF_H
#define VKG_FORMAT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Metadata value types. */
enum {
    GGUF_T_U8 = 0,
    GGUF_T_I8,
    GGUF_T_U16,
    GGUF_T_I16,
    GGUF_T_U32,
    GGUF_T_I32,
    GGUF_T_F32,
    GGUF_T_BOOL,
    GGUF_T_STRING,
    GGUF_T_ARRAY,
    GGUF_T_U64,
    GGUF_T_I64,
    GGUF_T_F64,
    GGUF_T_COUNT
};

/* ggml tensor type ids of the types vkgpt2 reads. */
enum {
    GGML_ID_F32 = 0,
    GGML_ID_F16 = 1,
    GGML_ID_Q4_0 = 2,
    GGML_ID_Q4_1 = 3,
    GGML_ID_Q5_0 = 6,
    GGML_ID_Q5_1 = 7,
    GGML_ID_Q8_0 = 8,
    GGML_ID_BF16 = 30
};

/* tokenizer.ggml.token_type values of special tokens (their text is kept as it is). */
#define GGUF_TOKTYPE_CONTROL 3
#define GGUF_TOKTYPE_USER 4

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef struct gguf_kv {
    const char *key; /* into the mapping, not NUL-terminated */
    size_t key_len;
    uint32_t type;            /* GGUF_T_* */
    uint32_t arr_type;        /* arrays: element type */
    uint64_t arr_n;           /* arrays: element count */
    const unsigned char *val; /* scalar: its bytes; string: its bytes; array: first element */
    size_t val_len;           /* bytes at val (string: its length) */
} gguf_kv;

typedef struct gguf_tensor {
    const char *name; /* into the mapping, not NUL-terminated */
    size_t name_len;
    uint32_t n_dims;           /* 1..4 */
    int64_t ne[GGUF_MAX_DIMS]; /* dims past n_dims are 1 */
    uint32_t ggml_type;        /* as stored */
    gpt2_dtype dtype;          /* the same as a gpt2_dtype */
    uint64_t offset;           /* relative to the data section */
    const unsigned char *data; /* into the mapping */
    size_t nbytes;
} gguf_tensor;

typedef struct gguf_file {
    const unsigned char *p; /* the whole file (not owned) */
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;    /* n_kv entries (malloc'ed) */
    gguf_tensor *t; /* n_tensors entries (malloc'ed) */
    uint32_t alignment;
    size_t data_off; /* file offset of the data section */
} gguf_file;

/* Parses and checks a whole GGUF image (every value, every tensor's bounds). Returns 0, or -1 with a
 * one-line message naming path; g needs gguf_free either way. */
int gguf_parse(gguf_file *g, const void *data, size_t size, const char *path, char *err, size_t errlen);
void gguf_free(gguf_file *g);
const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
/* Scalar accessors: false if the type does not fit (any integer type for int, f32/f64 for float). */
bool gguf_kv_int(const gguf_kv *kv, int64_t *out);
bool gguf_kv_float(const gguf_kv *kv, double *out);
bool gguf_kv_str(const gguf_kv *kv, const char **s, size_t *len);
/* ggml type id -> gpt2_dtype; false for types vkgpt2 cannot read. */
bool gguf_dtype_from_ggml(uint32_t id, gpt2_dtype *out);

/* ---- primitives for walking a value in place (gguf.c) ---- */
/* A cursor over bytes of the file: p[pos..n). */
typedef struct gguf_reader {
    const unsigned char *p; /* first byte */
    size_t n, pos;          /* bytes at p, and the next one to read */
} gguf_reader;
/* The k-byte little-endian unsigned integer at b. */
uint64_t gguf_le(const unsigned char *b, int k);
/* A string at the cursor (u64 length, bytes): false, cursor unmoved, when it runs past the end. */
bool gguf_get_str(gguf_reader *c, const char **s, size_t *len);
/* "u8", "string", ... for GGUF_T_*; "?" otherwise. */
const char *gguf_type_name(uint32_t t);
/* Printable copy (control and non-ASCII bytes as '?') of at most 64 bytes of s, for messages. */
const char *gguf_show(char *buf, size_t bn, const char *s, size_t n);
uint32_t gguf_ggml_from_dtype(gpt2_dtype t);

/* Model reader and writer (gpt2 architecture, llama.cpp's names). */
int gpt2_load_gguf(gpt2_model *m, const char *path, char *err, size_t errlen);
int gpt2_write_gguf(const gpt2_model *m, const char *path, char *err, size_t errlen);
/* The same with GPT2_OUT_* flags (outfile.h); gpt2_write_gguf uses none (replaces). */
int gpt2_write_gguf_ex(const gpt2_model *m, const char *path, unsigned oflags, char *err, size_t errlen);

/* llm.c checkpoints (gpt2_124M.bin: magic 20240326, version 3 f32 or 5 bf16). The vocabulary comes
 * from the file's directory: vocab.json + merges.txt, encoder.json + vocab.bpe, or
 * gpt2_tokenizer.bin; none: the model loads without one. */
#define LLMC_MAGIC 20240326
#define LLMC_TOKENIZER_MAGIC 20240328
int gpt2_load_llmc(gpt2_model *m, const char *path, char *err, size_t errlen);
/* Writes version 3 (f32) or, with bf16, version 5; wte padded to a multiple of 128 rows. The model
 * must have a tied lm_head and float weights. */
int gpt2_write_llmc(const gpt2_model *m, const char *path, bool bf16, char *err, size_t errlen);
/* Writes llm.c's gpt2_tokenizer.bin (version 2, eot in header[3]). Tokens of 1..255 bytes only. */
int gpt2_write_llmc_tokenizer(const gpt2_vocab *v, const char *path, char *err, size_t errlen);
/* Reads gpt2_tokenizer.bin (versions 1 and 2) into v (merges derived from the ids). */
int gpt2_load_llmc_tokenizer(gpt2_vocab *v, const char *path, char *err, size_t errlen);

#endif
