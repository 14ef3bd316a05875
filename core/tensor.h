/* tensor.h - the one tensor type every part of vkgpt2 shares.
 *
 * A tensor is at most 2-D. ne[0] is the number of columns (the contiguous dimension), ne[1] the
 * number of rows, as in ggml. Weight matrices are stored [out][in]: ne[0] = in, ne[1] = out, so
 * y[o] = sum_i W[o][i] * x[i] reads one contiguous row per output. Loaders that meet another layout
 * (Hugging Face Conv1D stores [in][out]) transpose into memory the model owns. Element types and
 * their conversions are in dtype.h.
 */
#ifndef VKG_TENSOR_H
#define VKG_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

typedef struct gpt2_tensor {
    gpt2_dtype type; /* element type */
    int64_t ne[2];   /* ne[0] = columns (contiguous), ne[1] = rows (1 for vectors) */
    void *data;      /* first element; points into a mapping or model-owned memory */
    size_t nbytes;   /* ne[0] * ne[1] * element size */
} gpt2_tensor;

#endif
