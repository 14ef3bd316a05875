/* fuzz_vocab.c - libFuzzer harness: vocab.json + merges.txt through gpt2_vocab_load_files. The
 * input is split by fuzz_split: vocab.json, a NUL byte, merges.txt. A vocabulary that loads is also
 * handed to the tokenizer builder (which may refuse it) and, when built, encodes a short text. */
#include <stdint.h>
#include <stdlib.h>

#include "core/tokenizer.h"
#include "core/vocab.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char pv[512], pm[512], err[512];
    size_t n1, n2;
    const uint8_t *second;
    fuzz_split(data, size, &n1, &second, &n2);
    fuzz_write("vocab.json", data, n1, pv, sizeof pv);
    fuzz_write("merges.txt", second, n2, pm, sizeof pm);
    gpt2_vocab v = {0};
    if (gpt2_vocab_load_files(&v, pv, pm, err, sizeof err) != 0) return 0;
    gpt2_tokenizer *t = gpt2_tokenizer_create(&v, err, sizeof err);
    if (t) {
        static const char text[] = "Hello world, it's 2024! \xc3\xa9t\xc3\xa9 \xe2\x82\xac  ok";
        int32_t *ids = NULL;
        size_t n = 0;
        if (gpt2_tokenize(t, text, sizeof text - 1, &ids, &n, err, sizeof err) == 0) {
            /* Encoding then decoding gives the text back, whatever the merges. */
            size_t len;
            char *back = gpt2_detokenize_alloc(gpt2_tokenizer_vocab(t), ids, n, &len, err, sizeof err);
            if (!back || len != sizeof text - 1 || memcmp(back, text, len) != 0) abort();
            free(back);
            free(ids);
        }
        gpt2_tokenizer_free(t);
    }
    gpt2_vocab_free(&v);
    return 0;
}
