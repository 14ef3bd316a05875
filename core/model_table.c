/* model_table.c - the tensors of a GPT-2 addressed by one index: where each lives in the model,
 * its kind and expected shape, and its names in ggml legacy and Hugging Face files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_internal.h"

static const char *const ggml_layer_names[GPT2_L_COUNT] = {
    "ln_1/g", "ln_1/b", "attn/c_attn/w", "attn/c_attn/b", "attn/c_proj/w", "attn/c_proj/b",
    "ln_2/g", "ln_2/b", "mlp/c_fc/w",    "mlp/c_fc/b",    "mlp/c_proj/w",  "mlp/c_proj/b",
};
static const char *const ggml_global_names[GPT2_T_GLOBALS] = {
    "model/wte", "model/wpe", "model/ln_f/g", "model/ln_f/b", "model/lm_head",
};
static const char *const hf_layer_names[GPT2_L_COUNT] = {
    "ln_1.weight",        "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
    "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias",
};
static const char *const hf_global_names[GPT2_T_GLOBALS] = {
    "wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight",
};

gpt2_tensor *gpt2_tensor_at(gpt2_model *m, int id)
{
    switch (id) {
    case GPT2_T_WTE: return &m->w.wte;
    case GPT2_T_WPE: return &m->w.wpe;
    case GPT2_T_LNF_G: return &m->w.ln_f_g;
    case GPT2_T_LNF_B: return &m->w.ln_f_b;
    case GPT2_T_LM_HEAD: return &m->w.lm_head;
    default: break;
    }
    int l = (id - GPT2_T_GLOBALS) / GPT2_L_COUNT, k = (id - GPT2_T_GLOBALS) % GPT2_L_COUNT;
    gpt2_layer *L = &m->w.layers[l];
    switch (k) {
    case GPT2_L_LN1_G: return &L->ln1_g;
    case GPT2_L_LN1_B: return &L->ln1_b;
    case GPT2_L_ATTN_W: return &L->attn_w;
    case GPT2_L_ATTN_B: return &L->attn_b;
    case GPT2_L_PROJ_W: return &L->proj_w;
    case GPT2_L_PROJ_B: return &L->proj_b;
    case GPT2_L_LN2_G: return &L->ln2_g;
    case GPT2_L_LN2_B: return &L->ln2_b;
    case GPT2_L_FC_W: return &L->fc_w;
    case GPT2_L_FC_B: return &L->fc_b;
    case GPT2_L_FC2_W: return &L->fc2_w;
    default: return &L->fc2_b;
    }
}

const gpt2_tensor *gpt2_tensor_at_c(const gpt2_model *m, int id)
{
    return gpt2_tensor_at((gpt2_model *)m, id);
}

gpt2_tkind gpt2_tensor_kind(int id)
{
    if (id < GPT2_T_GLOBALS) return (id == GPT2_T_LNF_G || id == GPT2_T_LNF_B) ? GPT2_K_VEC : GPT2_K_EMB;
    int k = (id - GPT2_T_GLOBALS) % GPT2_L_COUNT;
    return (k == GPT2_L_ATTN_W || k == GPT2_L_PROJ_W || k == GPT2_L_FC_W || k == GPT2_L_FC2_W) ? GPT2_K_MAT
                                                                                               : GPT2_K_VEC;
}

bool gpt2_tensor_is_conv1d(int id) { return gpt2_tensor_kind(id) == GPT2_K_MAT; }

void gpt2_tensor_shape(const gpt2_hparams *hp, int id, int64_t ne[2])
{
    int64_t E = hp->n_embd;
    ne[1] = 1;
    switch (id) {
    case GPT2_T_WTE:
    case GPT2_T_LM_HEAD:
        ne[0] = E;
        ne[1] = hp->n_vocab;
        return;
    case GPT2_T_WPE:
        ne[0] = E;
        ne[1] = hp->n_ctx;
        return;
    case GPT2_T_LNF_G:
    case GPT2_T_LNF_B: ne[0] = E; return;
    default: break;
    }
    switch ((id - GPT2_T_GLOBALS) % GPT2_L_COUNT) {
    case GPT2_L_ATTN_W:
        ne[0] = E;
        ne[1] = 3 * E;
        return;
    case GPT2_L_ATTN_B: ne[0] = 3 * E; return;
    case GPT2_L_PROJ_W:
        ne[0] = E;
        ne[1] = E;
        return;
    case GPT2_L_FC_W:
        ne[0] = E;
        ne[1] = 4 * E;
        return;
    case GPT2_L_FC_B: ne[0] = 4 * E; return;
    case GPT2_L_FC2_W:
        ne[0] = 4 * E;
        ne[1] = E;
        return;
    default: ne[0] = E; return;
    }
}

void gpt2_tensor_name_ggml(int id, char *buf, size_t n)
{
    if (id < GPT2_T_GLOBALS)
        snprintf(buf, n, "%s", ggml_global_names[id]);
    else
        snprintf(buf, n, "model/h%d/%s", (id - GPT2_T_GLOBALS) / GPT2_L_COUNT,
                 ggml_layer_names[(id - GPT2_T_GLOBALS) % GPT2_L_COUNT]);
}

void gpt2_tensor_name_hf(int id, char *buf, size_t n)
{
    if (id < GPT2_T_GLOBALS)
        snprintf(buf, n, "%s", hf_global_names[id]);
    else
        snprintf(buf, n, "h.%d.%s", (id - GPT2_T_GLOBALS) / GPT2_L_COUNT,
                 hf_layer_names[(id - GPT2_T_GLOBALS) % GPT2_L_COUNT]);
}

/* Parses "<prefix><decimal layer><sep><suffix>". */
static int parse_layer_name(const char *name, size_t len, const char *prefix, char sep,
                            const char *const *suffixes, int n_layer)
{
    size_t pl = strlen(prefix);
    if (len <= pl || memcmp(name, prefix, pl) != 0) return -1;
    size_t i = pl;
    long layer = 0;
    if (i >= len || name[i] < '0' || name[i] > '9') return -1;
    if (name[i] == '0' && i + 1 < len && name[i + 1] >= '0' && name[i + 1] <= '9') return -1;
    while (i < len && name[i] >= '0' && name[i] <= '9') {
        layer = layer * 10 + (name[i] - '0');
        if (layer >= n_layer) return -1;
        i++;
    }
    if (i >= len || name[i] != sep) return -1;
    i++;
    for (int k = 0; k < GPT2_L_COUNT; k++) {
        size_t sl = strlen(suffixes[k]);
        if (len - i == sl && memcmp(name + i, suffixes[k], sl) == 0)
            return GPT2_T_GLOBALS + (int)layer * GPT2_L_COUNT + k;
    }
    return -1;
}

int gpt2_tensor_id_ggml(const char *name, size_t len, int n_layer)
{
    for (int i = 0; i < GPT2_T_GLOBALS; i++)
        if (strlen(ggml_global_names[i]) == len && memcmp(name, ggml_global_names[i], len) == 0) return i;
    return parse_layer_name(name, len, "model/h", '/', ggml_layer_names, n_layer);
}

int gpt2_tensor_id_hf(const char *name, size_t len, int n_layer)
{
    for (int i = 0; i < GPT2_T_GLOBALS; i++)
        if (strlen(hf_global_names[i]) == len && memcmp(name, hf_global_names[i], len) == 0) return i;
    return parse_layer_name(name, len, "h.", '.', hf_layer_names, n_layer);
}

/* ---------------------------------------------------------------- GGUF names */

static const char *const gguf_globals[GPT2_T_GLOBALS] = {
    "token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight",
};
static const char *const gguf_layer[GPT2_L_COUNT] = {
    "attn_norm.weight",   "attn_norm.bias",   "attn_qkv.weight", "attn_qkv.bias",
    "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",
    "ffn_up.weight",      "ffn_up.bias",      "ffn_down.weight", "ffn_down.bias",
};

void gpt2_tensor_name_gguf(int id, char *buf, size_t n)
{
    if (id < GPT2_T_GLOBALS)
        snprintf(buf, n, "%s", gguf_globals[id]);
    else
        snprintf(buf, n, "blk.%d.%s", (id - GPT2_T_GLOBALS) / GPT2_L_COUNT,
                 gguf_layer[(id - GPT2_T_GLOBALS) % GPT2_L_COUNT]);
}

/* "blk.<N>.<suffix>" or a global name -> id, or -1. */
int gpt2_tensor_id_gguf(const char *s, size_t n, int n_layer)
{
    for (int i = 0; i < GPT2_T_GLOBALS; i++)
        if (strlen(gguf_globals[i]) == n && memcmp(s, gguf_globals[i], n) == 0) return i;
    if (n < 6 || memcmp(s, "blk.", 4) != 0) return -1;
    size_t i = 4;
    long l = 0;
    if (s[i] < '0' || s[i] > '9' || (s[i] == '0' && i + 1 < n && s[i + 1] != '.')) return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        l = l * 10 + (s[i] - '0');
        if (l >= n_layer) return -1;
        i++;
    }
    if (i >= n || s[i] != '.') return -1;
    i++;
    for (int k = 0; k < GPT2_L_COUNT; k++)
        if (strlen(gguf_layer[k]) == n - i && memcmp(s + i, gguf_layer[k], n - i) == 0)
            return GPT2_T_GLOBALS + (int)l * GPT2_L_COUNT + k;
    return -1;
}
