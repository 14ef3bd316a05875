/* epilogue.h - the matmul epilogue flags, applied to each output in this order. The one
 * definition that C (core/graph.h, cpu/cpu_ops.h, vulkan/) and GLSL (shaders/common.glsl includes
 * this file) share: plain #defines only, which both preprocessors read alike.
 */
#ifndef VKG_EPILOGUE_H
#define VKG_EPILOGUE_H

#define GPT2_EPI_BIAS 1     /* y += bias[o] */
#define GPT2_EPI_GELU 2     /* y = gelu(y) (the model's form) */
#define GPT2_EPI_RESIDUAL 4 /* y += y_old (the output buffer's prior content) */

#endif
