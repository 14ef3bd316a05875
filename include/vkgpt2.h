/* vkgpt2.h - GPT-2 inference on any Vulkan GPU, with a SIMD CPU fallback.
 *
 * A worked example: load a model, turn a prompt into tokens, generate 32 more, print them as they
 * come. Error handling is the same everywhere: a function that can fail returns NULL or -1 and
 * writes one line into the err buffer you pass.
 *
 *     #include <stdio.h>
 *     #include <vkgpt2.h>
 *
 *     static int print_piece(void *user, int32_t id, const char *text, size_t len) {
 *         (void)user; (void)id;
 *         fwrite(text, 1, len, stdout);        // whole UTF-8 characters only
 *         return 0;                            // non-zero stops generation
 *     }
 *
 *     int main(void) {
 *         char err[512];
 *         vkg_model *m = vkg_model_load("models/gpt2", err, sizeof err);   // HF dir, ggml .bin, ...
 *         if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *
 *         vkg_session_params sp = vkg_session_defaults();   // backend auto: a GPU if present
 *         vkg_session *s = vkg_session_create(m, &sp, err, sizeof err);
 *         if (!s) { fprintf(stderr, "%s\n", err); return 1; }
 *
 *         int32_t *ids; size_t n;
 *         if (vkg_tokenize(m, "The GPU is", 10, &ids, &n, err, sizeof err)) {
 *             fprintf(stderr, "%s\n", err);
 *             return 1;
 *         }
 *
 *         vkg_sample_params gp = vkg_sample_defaults();      // top-k 40, top-p 0.9, temp 0.9
 *         gp.n_predict = 32;
 *         gp.seed = 42;
 *         vkg_stats st;
 *         if (vkg_generate(s, ids, n, &gp, print_piece, NULL, NULL, NULL, &st,
 *                          err, sizeof err)) {
 *             fprintf(stderr, "%s\n", err);
 *             return 1;
 *         }
 *         printf("\n%.2f ms/token on %s\n", st.decode_ms_per_token, vkg_session_device(s));
 *
 *         vkg_free(ids);
 *         vkg_session_free(s);
 *         vkg_model_free(m);
 *     }
 *
 * Build against it with `pkg-config --cflags --libs vkgpt2` (tests/test_cli_edges.c compiles and
 * runs this example as written). The library prints nothing itself: vkg_set_notice_handler (below)
 * receives its notices. This header is the inference API only, of the version in VKG_VERSION
 * (vkgpt2_version.h; vkg_version() says which library is linked); the developer tools (kbench, the
 * kernel benchmarks) are not part of it (devtools/devtools.h, linked by the vkgpt2 command).
 */
#ifndef VKGPT2_H
#define VKGPT2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---- */
/* VKG_VERSION: the version of this header (meson's project version, from vkgpt2_version.h);
 * vkg_version(): the version of the library actually linked. */
#include "vkgpt2_version.h"
const char *vkg_version(void);

/* ---- notices ----
 * The library never prints. What it notices on the way (a request it adjusted, a fallback to the
 * CPU, an internal failure before an error return) goes, as one line without a newline, to the
 * handler set here (process-wide; set it before creating sessions). Without a handler notices are
 * dropped, except Khronos validation messages (VKGPT2_VALIDATION=1), which then go to stderr. */
typedef enum vkg_notice_kind {
    VKG_NOTICE_INFO = 0,       /* what was chosen and why (verbose sessions only) */
    VKG_NOTICE_WARNING = 1,    /* a request adjusted: n_predict clamped, context full, no GPU */
    VKG_NOTICE_FALLBACK = 2,   /* the device failed during a run; it goes on on the CPU */
    VKG_NOTICE_ERROR = 3,      /* a failure inside the library, ahead of an error return */
    VKG_NOTICE_VALIDATION = 4, /* a message of the Vulkan validation layer */
} vkg_notice_kind;
/* msg: one line, no trailing newline; valid only during the call. */
typedef void (*vkg_notice_fn)(void *user, vkg_notice_kind kind, const char *msg);
/* fn NULL: notices are dropped (see above). */
void vkg_set_notice_handler(vkg_notice_fn fn, void *user);

/* ---- models ---- */
typedef struct vkg_model vkg_model;

typedef struct vkg_model_info {
    int n_vocab, n_ctx, n_embd, n_head, n_layer; /* shape */
    const char *format;                          /* "ggml", "hf", ... */
    const char *weight_type;                     /* "f32", "f16", ... */
    size_t weights_bytes;                        /* bytes of weights */
    int32_t eot;                                 /* <|endoftext|> id, or -1 */
} vkg_model_info;

/* path: a Hugging Face directory (config.json + model.safetensors + vocab.json + merges.txt) or a
 * ggml GPT-2 file, a GGUF file (gpt2 architecture) or an llm.c checkpoint; the format is detected. */
vkg_model *vkg_model_load(const char *path, char *err, size_t errlen);
void vkg_model_free(vkg_model *m);
vkg_model_info vkg_model_get_info(const vkg_model *m);

/* A model that holds only a vocabulary (for tokenize/detokenize): path is a directory with
 * vocab.json + merges.txt (or encoder.json + vocab.bpe), or any model path (its vocabulary). */
vkg_model *vkg_vocab_load(const char *path, char *err, size_t errlen);

/* ---- writing files ----
 * Everything libvkgpt2 writes (models, traces) is written to a temporary in the destination
 * directory and renamed into place only when complete: a crash, Ctrl-C or a full disk leaves the
 * old file as it was and no half-written one (docs/RELIABILITY.md). An output that is an input,
 * lies inside an input directory or holds an input is refused (compared by device and inode, so
 * "./m.gguf", symlinks and hard links count). flags for every writer: */
#define VKG_OUT_FORCE 1u    /* replace an existing output (without it: an error, VKG_OUT_EXISTS) */
#define VKG_OUT_DIR 2u      /* vkg_output_check: the output is a directory (a Hugging Face model) */
#define VKG_OUT_EXISTS (-2) /* returned instead of -1 when the output exists and VKG_OUT_FORCE is off */

/* Checks before any long work that path can be written: its directory exists and is writable,
 * it is not one of inputs (NULL-terminated model or file paths, or NULL), and it does not exist
 * unless flags has VKG_OUT_FORCE. Returns 0, VKG_OUT_EXISTS or -1, with err naming path. */
int vkg_output_check(const char *path, unsigned flags, const char *const *inputs, char *err, size_t errlen);

/* A file of your own written the same safe way: open, write to vkg_output_file (a FILE *), then
 * commit to put it in place, or abort to drop it. A path that is not a regular file (/dev/null, a
 * FIFO) is written directly. */
typedef struct vkg_output vkg_output;
vkg_output *vkg_output_open(const char *path, unsigned flags, char *err, size_t errlen);
void *vkg_output_file(vkg_output *o);
int vkg_output_commit(vkg_output *o, char *err, size_t errlen); /* frees o; 0 or -1 with err */
void vkg_output_abort(vkg_output *o);                           /* frees o */
/* Removes the temporaries of writes in progress; async-signal-safe, for a signal handler that
 * then exits (Linux needs it only where O_TMPFILE is missing, and for Hugging Face directories). */
void vkg_output_cleanup(void);

/* Progress of long steps (loading, synthesizing, quantizing, writing): cb gets the step
 * ("loading", "writing", ...), the file it works on and done of total units; a step starts with
 * done 0 and ends with done == total. The library never prints progress. NULL: none. */
typedef void (*vkg_progress_cb)(void *user, const char *step, const char *name, uint64_t done,
                                uint64_t total);
void vkg_set_progress(vkg_progress_cb cb, void *user);

/* Writes a deterministic synthetic GPT-2 (random weights at realistic scales) for tests, demos and
 * benchmarks. size: "tiny", "124M", "355M", "774M", "1558M" or "LxExH" (layers x width x heads);
 * format: "hf" (directory), "ggml" or "gguf" (files), or NULL to follow path (".gguf": GGUF,
 * ".bin": ggml, else hf; a format that contradicts those names is an error); type: "f32" or
 * "f16"; vocab_dir: GPT-2's real vocabulary (encoder.json + vocab.bpe or vocab.json + merges.txt)
 * or NULL for a small byte-level one. flags: VKG_OUT_FORCE or 0 (see "writing files"). */
typedef struct vkg_synth_params {
    const char *size, *format, *type, *vocab_dir;
    uint64_t seed;
} vkg_synth_params;
int vkg_synth(const char *path, const vkg_synth_params *p, unsigned flags, char *err, size_t errlen);

/* Reads any model vkg_model_load reads (Hugging Face, ggml, GGUF, llm.c) and writes it to out as a
 * GGUF v3 file (llama.cpp's gpt2 names and metadata), weight types as they are. out must end in
 * ".gguf". flags: VKG_OUT_FORCE or 0. Returns 0, or -1 (VKG_OUT_EXISTS) with a one-line message
 * in err. */
int vkg_convert(const char *in, const char *out, unsigned flags, char *err, size_t errlen);

/* Prints every Vulkan device and its properties. Returns 0, or -1 with err (no Vulkan). */
int vkg_list_devices(void *file, char *err, size_t errlen);

/* Host memory read bandwidth in GB/s, measured with n_threads threads (<= 0: vkg_default_threads()) reading a
 * buffer of `bytes` (use several times the last-level cache). */
double vkg_measure_host_bandwidth(int n_threads, size_t bytes);

/* The CPU thread count that n_threads <= 0 means: the physical cores this process may run on. */
int vkg_default_threads(void);

/* Quantizes a model of any readable format to type ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1"): the
 * weight matrices, wte and lm_head, as ggml's gpt-2 quantizer; biases, gains and wpe stay. out
 * ending in ".gguf" is written as GGUF, anything else as ggml legacy. report (a FILE *, or NULL)
 * gets one line per tensor (RMS and max abs error) and the sizes before and after, written
 * between progress steps (never while one is under way). flags: VKG_OUT_FORCE or 0.
 * Returns 0, or -1 (VKG_OUT_EXISTS) with a one-line message in err. */
int vkg_quantize(const char *in, const char *out, const char *type, void *report, unsigned flags, char *err,
                 size_t errlen);

/* ---- tokens ---- */
/* Text (UTF-8, len bytes) to ids in *ids (free with vkg_free). Invalid UTF-8 is an error.
 * Not thread-safe per model: the tokenizer keeps a cache. */
int vkg_tokenize(vkg_model *m, const char *text, size_t len, int32_t **ids, size_t *n_ids, char *err,
                 size_t errlen);
/* Ids to bytes in *text (NUL-terminated, free with vkg_free). */
int vkg_detokenize(const vkg_model *m, const int32_t *ids, size_t n_ids, char **text, size_t *len, char *err,
                   size_t errlen);
void vkg_free(void *p);

/* ---- sessions: a backend, its KV cache and working memory ---- */
typedef struct vkg_session vkg_session;

typedef enum vkg_backend { VKG_BACKEND_AUTO = 0, VKG_BACKEND_CPU = 1, VKG_BACKEND_VULKAN = 2 } vkg_backend;

/* KV cache element type. */
typedef enum vkg_kv_type { VKG_KV_AUTO = 0, VKG_KV_F32 = 1, VKG_KV_F16 = 2 } vkg_kv_type;

typedef struct vkg_session_params {
    vkg_backend backend;     /* AUTO: Vulkan when a GPU works, else the CPU (with a notice); a Vulkan
                             device that runs on the CPU (lavapipe) counts as none unless
                             `device` names it */
    int device;              /* Vulkan device index; -1 picks discrete > integrated > virtual > cpu,
                             then the most device-local memory, then the most features; an index
                             with no device behind it fails vkg_session_create under every
                             backend but CPU (AUTO included) */
    const char *device_name; /* NULL, or the Vulkan device as a string: an index, a deviceUUID
                                prefix in hex (see vkg_list_devices) or a unique substring of its
                                name; overrides `device` */
    int n_threads;           /* CPU threads; <= 0 the physical cores (vkg_default_threads) */
    int n_batch;             /* prompt tokens per step */
    vkg_kv_type kv;          /* KV cache type; AUTO: f16 on Vulkan, f32 on the CPU, decided after the
                             backend is chosen (so AUTO falling back to the CPU computes what the
                             CPU backend computes) */
    bool verbose;            /* more notices (VKG_NOTICE_INFO) to the notice handler */
    bool rerecord;           /* benchmarks: re-record the GPU step every token (as llama.cpp does)
                             instead of replaying one recording */
    int n_seq;               /* KV cache slots: sequences vkg_generate_batch runs at once (default 1;
                             each slot costs a full context of KV cache) */
    bool time_gpu;           /* benchmarks: device timestamps around every dispatch, the decode's device
                             time in vkg_stats.decode_gpu_ms (0 on the CPU backend) */
    int tokens_per_submit;   /* vkg_generate on a device that draws: decode tokens recorded back to
                              back in one submit, each step's pick feeding the next on the device
                              (1 .. VKG_MAX_TOKENS_PER_SUBMIT; <= 0: VKG_DEFAULT_TOKENS_PER_SUBMIT);
                              the tokens are the same for every value */
} vkg_session_params;
#define VKG_MAX_TOKENS_PER_SUBMIT 16
#define VKG_DEFAULT_TOKENS_PER_SUBMIT 8 /* measured: docs/PERFORMANCE.md */

vkg_session_params vkg_session_defaults(void);
vkg_session *vkg_session_create(vkg_model *m, const vkg_session_params *p, char *err, size_t errlen);
void vkg_session_free(vkg_session *s);
const char *vkg_session_backend(const vkg_session *s); /* "cpu" or "vulkan" */
const char *vkg_session_device(const vkg_session *s);  /* what it runs on */
/* Forgets the KV cache (n_past = 0). */
void vkg_session_reset(vkg_session *s);
int vkg_session_n_past(const vkg_session *s);

/* Appends n_ids tokens to the context and writes their logits, [n_ids][n_vocab] f32, to logits
 * (NULL: none). Fails if the context would overflow. */
int vkg_eval(vkg_session *s, const int32_t *ids, size_t n_ids, float *logits, char *err, size_t errlen);

/* ---- generation ---- */
typedef struct vkg_sample_params {
    int n_predict;        /* tokens to generate (clamped to the context, with a notice) */
    float temp;           /* <= 0: greedy */
    int top_k;            /* <= 0: no limit */
    float top_p;          /* 1: no limit */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* window of the penalty */
    uint64_t seed;        /* same seed, same text (per backend) */
    bool ignore_eos;      /* keep going after <|endoftext|> */
} vkg_sample_params;

vkg_sample_params vkg_sample_defaults(void);

/* Called for each generated token with the text that became complete (may be empty while a UTF-8
 * character spans tokens). Return non-zero to stop. */
typedef int (*vkg_token_cb)(void *user, int32_t id, const char *text, size_t len);

typedef struct vkg_stats {
    double load_ms;             /* model load (set by the caller's timing; 0 here) */
    int prompt_tokens;          /* tokens evaluated for the prompt */
    double prompt_ms;           /* their time */
    int decode_tokens;          /* tokens generated */
    double decode_ms;           /* their time (forward passes) */
    double decode_ms_per_token; /* decode_ms / decode_tokens */
    double sample_ms;           /* time spent choosing tokens */
    double total_ms;            /* everything in vkg_generate */
    size_t weights_bytes;       /* memory for weights */
    size_t kv_bytes;            /* KV cache */
    size_t scratch_bytes;       /* activations */
    bool hit_context_end;       /* stopped because the context was full */
    bool hit_eos;               /* stopped at <|endoftext|> */
    /* counters from the backend */
    uint64_t decode_cmdbuf_records, prefill_cmdbuf_records, submits;
    uint64_t batch_cmdbuf_records; /* batched decode steps recorded (once per width, replayed) */
    int decode_steps;              /* forward steps of the decode; vkg_generate_batch: each serves
                                       every live sequence (decode_tokens counts their rows) */
    uint64_t dispatches_per_token, barriers_per_token, readback_bytes_per_token;
    uint64_t device_memory_bytes;
    int decode_submits;       /* host round trips of the decode (vkg_generate) */
    double tokens_per_submit; /* decode_tokens / decode_submits */
    double decode_gpu_ms;     /* the decode's device time (vkg_session_params.time_gpu) */
} vkg_stats;

/* Evaluates the prompt (in batches of n_batch) after whatever the session holds, then generates.
   Generated ids go to *out_ids (free with vkg_free) when out_ids is not NULL. */
int vkg_generate(vkg_session *s, const int32_t *prompt, size_t n_prompt, const vkg_sample_params *p,
                 vkg_token_cb cb, void *user, int32_t **out_ids, size_t *n_out, vkg_stats *stats, char *err,
                 size_t errlen);

/* ---- profiling (docs/PROFILING.md) ---- */
/* Turns on the per-kernel profile of a session (before its first eval): every GPU dispatch is timed
 * by device timestamps, every CPU node by the host clock, each with the bytes and flops of its
 * shapes; the device's peak bandwidth and FMA rate are measured (for Vulkan devices once, then read
 * from $XDG_CACHE_HOME/vkgpt2/peaks-<uuid>.txt). Returns 0, or -1 with err. */
int vkg_session_profile(vkg_session *s, char *err, size_t errlen);
/* The host clock the profile uses (CLOCK_MONOTONIC) in ms, and an event of the caller's own
 * (e.g. "tokenize") from t0_ms to t1_ms on the trace's host track. No-op without a profile. */
double vkg_now_ms(void);
void vkg_profile_event(vkg_session *s, const char *name, double t0_ms, double t1_ms);
/* The per-kernel tables (markdown, one per phase: decode and prompt) on file (a FILE *). */
void vkg_profile_print(const vkg_session *s, void *file);
/* The same as one JSON object ("null" without a profile). */
void vkg_profile_json(const vkg_session *s, void *file);
/* Writes a Chrome trace-event file (Perfetto, chrome://tracing) as "writing files" says; flags:
 * VKG_OUT_FORCE or 0. Returns 0, or -1 (VKG_OUT_EXISTS) with err. */
int vkg_profile_trace(const vkg_session *s, const char *path, unsigned flags, char *err, size_t errlen);

/* ---- batched generation: many sequences at once, each with its own KV cache slot ----
 *
 * Up to n_parallel sequences live at once, one per KV slot of the session (vkg_session_params.n_seq
 * must be >= n_parallel). Every decode step feeds one token of each live sequence through the model
 * together (the weights are read once per step for all of them); attention runs per sequence over
 * its own slot and length. A sequence that finishes frees its slot for the next waiting one
 * (continuous batching), so n_seqs may exceed n_parallel. A prompt that a slot already holds (the
 * same tokens as an earlier sequence's prompt, e.g. N continuations of one prompt) is not computed
 * again: its KV cache is copied from that slot on the device (or memcpy'd on the CPU). Each
 * sequence produces what vkg_generate produces for it alone with the same sample params (its own
 * seed, draw counter and repetition window). The session's context is left empty (n_past 0). */
typedef struct vkg_batch_seq {
    const int32_t *prompt; /* prompt tokens (n_prompt == 0: start from <|endoftext|>) */
    size_t n_prompt;
    vkg_sample_params params; /* this sequence's n_predict, sampling settings and seed */
} vkg_batch_seq;

typedef struct vkg_batch_result {
    int32_t *ids; /* generated tokens (free with vkg_batch_results_free) */
    size_t n_ids;
    int prompt_tokens;  /* tokens of its prompt */
    bool prompt_shared; /* its prompt's KV cache was copied from another slot */
    int slot;           /* the KV slot it ran in */
    int decode_tokens;  /* decode steps it took part in */
    double decode_ms;   /* their time (each step serves every live sequence) */
    double decode_ms_per_token;
    double sample_ms;     /* host time choosing its tokens */
    double prompt_ms;     /* time evaluating (or copying) its prompt */
    double total_ms;      /* from the call until it finished */
    bool hit_eos;         /* stopped at <|endoftext|> */
    bool hit_context_end; /* stopped because its context was full */
    bool stopped;         /* its callback returned non-zero */
} vkg_batch_result;

/* Called for each generated token of sequence `seq` (an index into seqs) with the text that became
 * complete; return non-zero to stop that sequence (the others go on). When a sequence finishes the
 * callback is called once more with id -1 and whatever bytes its stream still held (len may be 0). */
typedef int (*vkg_batch_cb)(void *user, int seq, int32_t id, const char *text, size_t len);

/* Generates every sequence of seqs[0..n_seqs), at most n_parallel at once (<= 0: n_seq of the
 * session). results (NULL: none) gets one entry per sequence; stats the totals (prompt_tokens:
 * prompt tokens actually computed, decode_tokens: rows of all decode steps, decode_steps: steps).
 * Returns 0, or -1 with a one-line message in err. */
int vkg_generate_batch(vkg_session *s, const vkg_batch_seq *seqs, size_t n_seqs, int n_parallel,
                       vkg_batch_cb cb, void *user, vkg_batch_result *results, vkg_stats *stats, char *err,
                       size_t errlen);
void vkg_batch_results_free(vkg_batch_result *results, size_t n);

#ifdef __cplusplus
}
#endif
#endif
