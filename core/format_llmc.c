/* format_llmc.c - llm.c's GPT-2 checkpoints (gpt2_124M.bin, gpt2_124M_bf16.bin) and its
 * tokenizer file (gpt2_tokenizer.bin): readers and writers.
 *
 * Checkpoint: i32 header[256] = {20240326, version (3: f32, 5: bf16), maxT, V, L, NH, C, Vp, 0...},
 * then every parameter of one kind for all layers before the next kind:
 *   wte [Vp][C], wpe [maxT][C], ln1w [L][C], ln1b [L][C], qkvw [L][3C][C], qkvb [L][3C],
 *   attprojw [L][C][C], attprojb [L][C], ln2w [L][C], ln2b [L][C], fcw [L][4C][C], fcb [L][4C],
 *   fcprojw [L][C][4C], fcprojb [L][C], lnfw [C], lnfb [C]
 * Matrices are [out][in] already; rows V..Vp-1 of wte are padding; the LM head is wte (tied).
 * Tokenizer: u32 header[256] = {20240328, version (1 or 2), n_tokens, eot (version 2)}, then per token
 * a u8 length and its raw bytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format_gguf.h"
#include "model.h"
#include "model_internal.h"
#include "vocab.h"

#define LLMC_HEADER_INTS 256
#define LLMC_HEADER_BYTES (LLMC_HEADER_INTS * 4)
#define LLMC_KINDS 16

static int32_t rd_i32(const unsigned char *b)
{
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* Elements of each of the 16 parameter kinds (all layers together), in file order. */
static void kind_sizes(const gpt2_hparams *hp, int32_t Vp, uint64_t sz[LLMC_KINDS])
{
    uint64_t C = (uint64_t)hp->n_embd, L = (uint64_t)hp->n_layer;
    uint64_t s[LLMC_KINDS] = {(uint64_t)Vp * C,
                              (uint64_t)hp->n_ctx * C,
                              L * C,
                              L * C,
                              L * 3 * C * C,
                              L * 3 * C,
                              L * C * C,
                              L * C,
                              L * C,
                              L * C,
                              L * 4 * C * C,
                              L * 4 * C,
                              L * C * 4 * C,
                              L * C,
                              C,
                              C};
    memcpy(sz, s, sizeof s);
}

/* The kind (0..15) and layer of tensor id; wte is kind 0, lm_head has none (-1). */
static int id_kind(int id, int *layer)
{
    *layer = 0;
    switch (id) {
    case GPT2_T_WTE: return 0;
    case GPT2_T_WPE: return 1;
    case GPT2_T_LNF_G: return 14;
    case GPT2_T_LNF_B: return 15;
    case GPT2_T_LM_HEAD: return -1;
    default: break;
    }
    *layer = (id - GPT2_T_GLOBALS) / GPT2_L_COUNT;
    /* gpt2_layer's field order is llm.c's kind order */
    return 2 + (id - GPT2_T_GLOBALS) % GPT2_L_COUNT;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---------------------------------------------------------------- tokenizer */

int gpt2_load_llmc_tokenizer(gpt2_vocab *v, const char *path, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    v->eot = -1;
    char *b;
    size_t n;
    if (gpt2_read_file(path, 64u << 20, &b, &n, err, errlen) != 0) return -1;
    const unsigned char *p = (const unsigned char *)b;
    int ret = -1;
    gpt2_vocab tmp;
    memset(&tmp, 0, sizeof tmp);
    if (n < LLMC_HEADER_BYTES) {
        gpt2_errf(err, errlen, "%s: file too short (%zu bytes) for llm.c's tokenizer header", path, n);
        goto out;
    }
    int32_t magic = rd_i32(p), version = rd_i32(p + 4), count = rd_i32(p + 8), eot = rd_i32(p + 12);
    if (magic != LLMC_TOKENIZER_MAGIC) {
        gpt2_errf(err, errlen, "%s: bad magic %d (expected llm.c tokenizer %d)", path, magic,
                  LLMC_TOKENIZER_MAGIC);
        goto out;
    }
    if (version != 1 && version != 2) {
        gpt2_errf(err, errlen, "%s: llm.c tokenizer version %d is not supported (1 or 2)", path, version);
        goto out;
    }
    /* every token takes at least 2 bytes */
    if (count <= 0 || count > GPT2_MAX_VOCAB || (size_t)count > (n - LLMC_HEADER_BYTES) / 2) {
        gpt2_errf(err, errlen, "%s: token count %d is out of range for a file of %zu bytes", path, count, n);
        goto out;
    }
    if (version == 2 && (eot < 0 || eot >= count)) {
        gpt2_errf(err, errlen, "%s: eot id %d is not a token id (0..%d)", path, eot, count - 1);
        goto out;
    }
    tmp.n_tokens = count;
    tmp.eot = version == 2 ? eot : -1;
    tmp.tok = calloc((size_t)count, sizeof *tmp.tok);
    tmp.len = calloc((size_t)count, sizeof *tmp.len);
    if (!tmp.tok || !tmp.len) {
        gpt2_errf(err, errlen, "%s: out of memory for %d tokens", path, count);
        goto out;
    }
    size_t pos = LLMC_HEADER_BYTES;
    for (int32_t i = 0; i < count; i++) {
        unsigned len = pos < n ? p[pos] : 0;
        if (pos >= n || len == 0 || len > n - pos - 1) {
            gpt2_errf(err, errlen, "%s: %s at token %d (offset %zu)", path,
                      pos < n && len == 0 ? "empty token" : "truncated", i, pos);
            goto out;
        }
        tmp.tok[i] = b + pos + 1;
        tmp.len[i] = len;
        pos += 1 + len;
    }
    if (pos != n) {
        gpt2_errf(err, errlen, "%s: %zu stray bytes after %d tokens", path, n - pos, count);
        goto out;
    }
    if (version == 1)
        for (int32_t i = count - 1; i >= 0 && tmp.eot < 0; i--)
            if (tmp.len[i] == 13 && memcmp(tmp.tok[i], "<|endoftext|>", 13) == 0) tmp.eot = i;
    if (gpt2_vocab_copy(v, &tmp) != 0) {
        gpt2_errf(err, errlen, "%s: out of memory copying the vocabulary", path);
        goto out;
    }
    char e2[200] = "";
    if (gpt2_vocab_derive_merges(v, e2, sizeof e2) != 0) {
        gpt2_vocab_free(v);
        gpt2_errf(err, errlen, "%s: cannot derive BPE merges from the vocabulary: %s", path, e2);
        goto out;
    }
    ret = 0;
out:
    free(tmp.tok);
    free(tmp.len);
    free(b);
    return ret;
}

int gpt2_write_llmc_tokenizer(const gpt2_vocab *v, const char *path, char *err, size_t errlen)
{
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->len[i] == 0 || v->len[i] > 255) {
            gpt2_errf(err, errlen, "%s: token %d has %u bytes; llm.c's tokenizer takes 1..255", path, i,
                      v->len[i]);
            return -1;
        }
    gpt2_out o;
    if (gpt2_out_open(&o, path, 0, err, errlen) != 0) return -1;
    unsigned char h[LLMC_HEADER_BYTES] = {0};
    int32_t hv[4] = {LLMC_TOKENIZER_MAGIC, 2, v->n_tokens, v->eot};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 4; i++) h[4 * k + i] = (unsigned char)((uint32_t)hv[k] >> (8 * i));
    gpt2_out_write(&o, h, sizeof h);
    for (int32_t i = 0; i < v->n_tokens; i++) {
        unsigned char l = (unsigned char)v->len[i];
        gpt2_out_write(&o, &l, 1);
        gpt2_out_write(&o, v->tok[i], v->len[i]);
    }
    return gpt2_out_close(&o, err, errlen);
}

/* The vocabulary next to a checkpoint: vocab.json + merges.txt, encoder.json + vocab.bpe, or
 * gpt2_tokenizer.bin; none is not an error. */
static int load_vocab_near(gpt2_model *m, const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(dl + 40), *f = malloc(dl + 40);
    if (!dir || !f) {
        free(dir);
        free(f);
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (slash) {
        memcpy(dir, path, dl);
        dir[dl] = 0;
    } else {
        strcpy(dir, ".");
    }
    int ret = 0;
    char e2[512] = "";
    sprintf(f, "%s/vocab.json", dir);
    bool hf = exists(f);
    sprintf(f, "%s/merges.txt", dir);
    hf = hf && exists(f);
    sprintf(f, "%s/encoder.json", dir);
    bool oa = exists(f);
    sprintf(f, "%s/vocab.bpe", dir);
    oa = oa && exists(f);
    sprintf(f, "%s/gpt2_tokenizer.bin", dir);
    if (hf || oa) {
        if (gpt2_vocab_load_dir(&m->vocab, dir, e2, sizeof e2) != 0) {
            gpt2_errf(err, errlen, "%s: vocabulary: %s", path, e2);
            ret = -1;
        }
    } else if (exists(f)) {
        if (gpt2_load_llmc_tokenizer(&m->vocab, f, e2, sizeof e2) != 0) {
            gpt2_errf(err, errlen, "%s: vocabulary: %s", path, e2);
            ret = -1;
        }
    }
    free(dir);
    free(f);
    return ret;
}

/* ---------------------------------------------------------------- checkpoint reader */

int gpt2_load_llmc(gpt2_model *m, const char *path, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->vocab.eot = -1;
    snprintf(m->format, sizeof m->format, "llm.c");
    if (gpt2_map_file(path, &m->map, &m->map_size, err, errlen) != 0) return -1;
    const unsigned char *p = m->map;
    size_t n = m->map_size;
    if (n < LLMC_HEADER_BYTES) {
        gpt2_errf(err, errlen, "%s: file too short (%zu bytes) for llm.c's 1024-byte header", path, n);
        goto fail;
    }
    int32_t h[8];
    for (int i = 0; i < 8; i++) h[i] = rd_i32(p + 4 * i);
    if (h[0] != LLMC_MAGIC) {
        gpt2_errf(err, errlen, "%s: bad magic %d (expected llm.c %d)", path, h[0], LLMC_MAGIC);
        goto fail;
    }
    if (h[1] != 3 && h[1] != 5) {
        gpt2_errf(err, errlen, "%s: llm.c checkpoint version %d is not supported (3: f32, 5: bf16)", path,
                  h[1]);
        goto fail;
    }
    gpt2_dtype st = h[1] == 3 ? GPT2_F32 : GPT2_BF16;
    gpt2_hparams *hp = &m->hp;
    hp->n_ctx = h[2];
    hp->n_vocab = h[3];
    hp->n_layer = h[4];
    hp->n_head = h[5];
    hp->n_embd = h[6];
    hp->ln_eps = 1e-5f;
    hp->gelu = GPT2_GELU_TANH;
    int32_t Vp = h[7];
    if (gpt2_hparams_check(hp, path, err, errlen) != 0) goto fail;
    if (Vp < hp->n_vocab || Vp > GPT2_MAX_VOCAB) {
        gpt2_errf(err, errlen, "%s: padded vocabulary %d is out of range (%d..%d)", path, Vp, hp->n_vocab,
                  GPT2_MAX_VOCAB);
        goto fail;
    }
    uint64_t sz[LLMC_KINDS], off[LLMC_KINDS], total = 0, es = gpt2_dtype_size(st);
    kind_sizes(hp, Vp, sz);
    for (int k = 0; k < LLMC_KINDS; k++) {
        off[k] = LLMC_HEADER_BYTES + total * es;
        total += sz[k]; /* the hparams limits keep this below 2^50 */
    }
    uint64_t want = LLMC_HEADER_BYTES + total * es;
    if ((uint64_t)n != want) {
        gpt2_errf(err, errlen, "%s: file has %zu bytes, but its header describes %" PRIu64 " (%s)", path, n,
                  want, (uint64_t)n < want ? "truncated" : "trailing data");
        goto fail;
    }
    m->wtype = GPT2_F32;
    if (gpt2_mem_check(gpt2_expected_bytes(hp, GPT2_F32, false), path, err, errlen) != 0) goto fail;
    if (gpt2_alloc_layers(m, err, errlen) != 0) goto fail;
    int nt = gpt2_n_tensors(hp);
    for (int id = 0; id < nt; id++) {
        int layer, k = id_kind(id, &layer);
        if (k < 0) continue;
        int64_t ne[2];
        gpt2_tensor_shape(hp, id, ne);
        uint64_t at = off[k] + (uint64_t)layer * (uint64_t)ne[0] * (uint64_t)ne[1] * es;
        if (gpt2_place_tensor(m, id, p + at, st, false, path, err, errlen) != 0) goto fail;
    }
    m->w.lm_head = m->w.wte;
    if (load_vocab_near(m, path, err, errlen) != 0) goto fail;
    if (gpt2_model_check(m, path, "", err, errlen) != 0) goto fail;
    return 0;
fail:
    gpt2_model_free(m);
    return -1;
}

/* ---------------------------------------------------------------- checkpoint writer */

int gpt2_write_llmc(const gpt2_model *m, const char *path, bool bf16, char *err, size_t errlen)
{
    if (gpt2_model_check(m, path, "cannot write an invalid model: ", err, errlen) != 0) return -1;
    if (m->w.lm_head.data != m->w.wte.data) {
        gpt2_errf(err, errlen, "%s: llm.c checkpoints tie the LM head to wte; this model has its own", path);
        return -1;
    }
    if (m->hp.gelu != GPT2_GELU_TANH) {
        gpt2_errf(err, errlen, "%s: llm.c's GPT-2 uses the tanh GELU; this model uses erf", path);
        return -1;
    }
    const gpt2_hparams *hp = &m->hp;
    int nt = gpt2_n_tensors(hp);
    for (int id = 0; id < nt; id++)
        if (gpt2_dtype_is_quant(gpt2_tensor_at_c(m, id)->type)) {
            gpt2_errf(err, errlen, "%s: llm.c checkpoints hold f32 or bf16; this model is quantized", path);
            return -1;
        }
    int32_t Vp = (hp->n_vocab + 127) / 128 * 128;
    gpt2_dtype dt = bf16 ? GPT2_BF16 : GPT2_F32;
    size_t es = gpt2_dtype_size(dt);
    size_t chunk = 1u << 16;
    void *buf = calloc(chunk, 4);
    if (!buf) {
        gpt2_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    gpt2_out o;
    if (gpt2_out_open(&o, path, 0, err, errlen) != 0) {
        free(buf);
        return -1;
    }
    uint64_t total = LLMC_HEADER_BYTES + (uint64_t)(Vp - hp->n_vocab) * (uint64_t)hp->n_embd * es;
    for (int id = 0; id < nt; id++) {
        const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
        if (id != GPT2_T_LM_HEAD) total += (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * es;
    }
    gpt2_out_expect(&o, total);
    unsigned char h[LLMC_HEADER_BYTES] = {0};
    int32_t hv[8] = {LLMC_MAGIC,  bf16 ? 5 : 3, hp->n_ctx,  hp->n_vocab,
                     hp->n_layer, hp->n_head,   hp->n_embd, Vp};
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < 4; i++) h[4 * k + i] = (unsigned char)((uint32_t)hv[k] >> (8 * i));
    gpt2_out_write(&o, h, sizeof h);
    /* kind by kind, layer by layer */
    for (int k = 0; k < LLMC_KINDS; k++) {
        int n_l = k >= 2 && k < 14 ? hp->n_layer : 1;
        for (int l = 0; l < n_l; l++) {
            int id = k == 0 ? GPT2_T_WTE
                : k == 1    ? GPT2_T_WPE
                : k == 14   ? GPT2_T_LNF_G
                : k == 15   ? GPT2_T_LNF_B
                            : GPT2_T_GLOBALS + l * GPT2_L_COUNT + (k - 2);
            const gpt2_tensor *t = gpt2_tensor_at_c(m, id);
            size_t cnt = (size_t)t->ne[0] * (size_t)t->ne[1], ts = gpt2_dtype_size(t->type);
            for (size_t i = 0; i < cnt; i += chunk) {
                size_t c = cnt - i < chunk ? cnt - i : chunk;
                gpt2_convert(buf, dt, (const char *)t->data + i * ts, t->type, c);
                gpt2_out_write(&o, buf, c * es);
            }
            if (k == 0) { /* padding rows */
                memset(buf, 0, chunk * 4);
                size_t pad = (size_t)(Vp - hp->n_vocab) * (size_t)hp->n_embd;
                for (size_t i = 0; i < pad; i += chunk)
                    gpt2_out_write(&o, buf, (pad - i < chunk ? pad - i : chunk) * es);
            }
        }
    }
    free(buf);
    return gpt2_out_close(&o, err, errlen);
}
