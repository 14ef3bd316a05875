/* session.h - what a vkg_model and a vkg_session hold (shared by api.c and batch.c). */
#ifndef VKG_SESSION_H
#define VKG_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "vkgpt2.h"

#include "core/backend.h"
#include "core/model.h"
#include "core/profile.h"
#include "core/tokenizer.h"

struct vkg_model {
    gpt2_model m;        /* weights and vocabulary */
    gpt2_tokenizer *tok; /* built on first use; NULL if the model has no vocabulary */
};

struct vkg_session {
    vkg_model *model;       /* not owned */
    gpt2_backend *be;       /* executes steps */
    int n_past;             /* positions in the KV cache (slot 0) */
    int32_t *history;       /* every token in the cache, for the repetition penalty */
    float *logits;          /* last row of logits, n_vocab */
    vkg_backend want;       /* as asked for: AUTO may move from a failed device to the CPU */
    gpt2_backend_params bp; /* as created (for that CPU backend) */
    int n_moves;            /* times move_to_cpu replaced the backend */
    gpt2_prof *prof;        /* per-kernel profile (vkg_session_profile), or NULL */
    bool batch_active;      /* inside vkg_generate_batch (it restores its own slots) */
    int tokens_per_submit;  /* decode tokens per device submit (1 .. VKG_MAX_TOKENS_PER_SUBMIT) */
};

/* The Vulkan backend failed in a step (device lost, out of device memory): unless Vulkan was
 * forced, go on with a fresh CPU backend (same slots) that re-evaluates the n_past tokens of slot 0
 * (outside vkg_generate_batch), so the step that failed can be run again. Returns 0, or -1 leaving
 * err as it was. */
int session_move_to_cpu(vkg_session *s, char *err, size_t errlen);
/* Fills the parts of st every generation reports the same way: ms per token from decode_ms and
 * decode_tokens, total time since t0_ms, memory and the backend's counters. */
void session_fill_stats(const vkg_session *s, vkg_stats *st, double t0_ms);

#endif
