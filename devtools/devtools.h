/* devtools.h - the developer tools of vkgpt2 (docs/PROFILING.md): kbench, a GLSL compute shader
 * compiled at run time and timed, the per-op kernel benchmarks, and the self test of a device. They live in a helper static
 * library (libvkgpt2_devtools.a, with glslang, SPIRV-Tools and the C++ runtime) that only the vkgpt2
 * command and the tests that need it link; libvkgpt2.so carries none of them.
 */
#ifndef VKG_DEVTOOLS_H
#define VKG_DEVTOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* vkg_kbench compiles a GLSL compute shader at run time (glslang), runs it on a grid and times it
 * with device timestamps. ABI: the shader takes no descriptor sets; its push-constant block holds
 * the device address (uint64, e.g. a GL_EXT_buffer_reference) of every buffer in order, then the
 * extra 32-bit push words in order (std430 offsets; at most 128 bytes in all). */
typedef struct vkg_kbench_buffer {
    size_t bytes; /* size (rounded up to 4) */
    int init;     /* 0 zero, 1 random floats in [-1, 1), 2 every float = value, 3 every
                              uint32 = (uint32_t)value */
    double value;
    void *dump; /* non-NULL: receives the final contents (bytes bytes) */
} vkg_kbench_buffer;

typedef struct vkg_kbench_params {
    const char *source; /* GLSL (#version 450+), NUL-terminated; no #include */
    const char *name;   /* for messages (the file name) */
    uint32_t grid[3];   /* workgroups */
    const vkg_kbench_buffer *buffers;
    int n_buffers;
    const uint32_t *spec_ids, *spec_values; /* specialization constants */
    int n_spec;
    const uint32_t *push; /* extra push words after the addresses */
    int n_push;
    double bytes, flops;     /* per run, for GB/s and GFLOP/s (0: not reported) */
    int repeat, warmup;      /* timed runs (>= 1) and untimed ones before them */
    int device;              /* Vulkan device index, -1 best */
    const char *device_name; /* NULL, or the Vulkan device as vkg_session_params.device_name;
                                overrides `device` */
} vkg_kbench_params;

typedef struct vkg_kbench_result {
    double min_ms, median_ms, mean_ms, max_ms;
    double gbs, gflops; /* at the median, 0 without bytes / flops */
    char device[256];
} vkg_kbench_result;

/* Returns 0, or -1 with err (compile errors: glslang's messages, with line numbers, one per line
 * after a first line naming the file). */
int vkg_kbench(const vkg_kbench_params *p, vkg_kbench_result *r, char *err, size_t errlen);

/* Per-op benchmark at the shapes of GPT-2 sizes (`vkgpt2 bench kernels`): layernorm, embed, every
 * weight matrix as matvec (n = 1) and tiled (n = 64), the fc matmul with its gelu epilogue, attention
 * decode at several n_past and prefill, argmax, sampling; random weights. One row per op. */
typedef struct vkg_bench_row {
    const char *backend, *device, *size, *op, *weight_type;
    int repeats;
    double median_ms, min_ms, max_ms; /* spread: min..max */
    double bytes, flops, gbs, gflops; /* per run; rates at the median */
    double peak_gbs, peak_gflops;     /* the backend's measured peaks */
} vkg_bench_row;
typedef void (*vkg_bench_row_cb)(void *user, const vkg_bench_row *row);
typedef struct vkg_bench_kernels_params {
    int backends;            /* 1 CPU, 2 Vulkan, 3 both */
    const char *sizes;       /* "124M,355M,..." (NULL: 124M) */
    const char *weight_type; /* "f16" (default) or "f32" */
    int repeat, warmup;      /* timed and untimed runs per op */
    int n_threads;           /* CPU threads (<= 0 all) */
    int device;              /* Vulkan device, -1 best */
    const char *device_name; /* NULL, or the Vulkan device as vkg_session_params.device_name;
                                overrides `device` */
} vkg_bench_kernels_params;
int vkg_bench_kernels(const vkg_bench_kernels_params *p, vkg_bench_row_cb cb, void *user, char *err,
                      size_t errlen);

/* ---- self test (`vkgpt2 selftest`) ----
 * On one Vulkan device: every kernel variant the device can run (matvec with and without subgroup
 * arithmetic, tiled, cooperative matrix; f32, f16 and every block format; layernorm, softmax,
 * gelu, add, embed, attention prefill and decode at several n_past, argmax, sampling) at GPT-2
 * shapes (124M..1558M) and odd ones, on fresh random inputs, against a float64 reference, with a
 * tolerance per variant set by its arithmetic; the variant guard's checks; then synthetic models
 * end to end, logits against the CPU backend and greedy ids. One row per case. */
typedef struct vkg_selftest_row {
    const char *op;      /* "matmul", "layernorm", "attention decode", "end to end", ... */
    const char *variant; /* the kernel variant ("matvec_sg", "tiled", "coopmat_nv", ...) */
    const char *type;    /* weight, cache or data type ("f16", "q4_0", ...; "-" none) */
    const char *shape;   /* the problem, in words ("124M qkv 2304x768 n=1 +bias") */
    double max_err;      /* worst error, relative to what `basis` names */
    double tol;          /* the tolerance in the same unit */
    const char *basis;   /* what max_err and tol are relative to, in words */
    bool pass;           /* every output within tolerance */
    double ms;           /* wall time of the case (set-up, run, reference) */
} vkg_selftest_row;
typedef void (*vkg_selftest_cb)(void *user, const vkg_selftest_row *row);
typedef struct vkg_selftest_params {
    const char *device; /* the Vulkan device as vkg_session_params.device_name (NULL: the best
                              one, a device that runs on the CPU included) */
    bool quick;         /* fewer shapes and types (under a minute on a GPU) */
    uint64_t seed;      /* of the random inputs (0: drawn from the clock) */
} vkg_selftest_params;
typedef struct vkg_selftest_summary {
    int n_cases, n_failed;         /* rows reported, rows that failed */
    int validation_messages;       /* Vulkan validation messages seen by the op cases */
    int subgroup_size;             /* the device's default subgroup size */
    uint64_t seed;                 /* the seed used (repeat a run with it) */
    double total_ms;               /* the whole run */
    char device[256], driver[256]; /* what ran it */
    char emulated[96];             /* VKGPT2_EMULATE traits in force ("" none) */
} vkg_selftest_summary;
/* Returns 0 when the run completed (failures are counted in sum->n_failed), -1 with err when the
 * device cannot be used. */
int vkg_selftest(const vkg_selftest_params *p, vkg_selftest_cb cb, void *user, vkg_selftest_summary *sum,
                 char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
