/* test_vocab.c - vocabulary files: byte map, loading GPT-2's real files, errors, derive_merges,
 * the synthetic byte vocabulary and write/load round trips. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/vocab.h"

static const char *src_root(void)
{
    const char *r = getenv("VKGPT2_SOURCE_ROOT");
    return r && *r ? r : ".";
}

/* data/gpt2-vocab under the source root, fetched if missing. */
static const char *real_dir(void)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/data/gpt2-vocab", src_root());
    char enc[4200];
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    if (access(enc, R_OK) != 0) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "sh '%s/tools/fetch-vocab.sh' '%s'", src_root(), dir);
        int rc = system(cmd);
        cr_assert(rc == 0, "fetch-vocab.sh failed (%d): GPT-2's vocabulary is needed in %s", rc, dir);
    }
    return dir;
}

static void load_real(gpt2_vocab *v)
{
    char err[512] = "", enc[4200], bpe[4200];
    snprintf(enc, sizeof enc, "%s/encoder.json", real_dir());
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", real_dir());
    cr_assert_eq(gpt2_vocab_load_files(v, enc, bpe, err, sizeof err), 0, "%s", err);
}

static char tmpdir[256];

static void make_tmp(void)
{
    strcpy(tmpdir, "/tmp/vkg_vocab_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmp(void)
{
    if (!tmpdir[0]) return;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* The paths of vocab.json and merges.txt in the temporary directory (400 bytes each). */
static void tmp_vocab_paths(char *pj, char *pm)
{
    snprintf(pj, 400, "%s/vocab.json", tmpdir);
    snprintf(pm, 400, "%s/merges.txt", tmpdir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void assert_same_vocab(const gpt2_vocab *a, const gpt2_vocab *b)
{
    cr_assert_eq(a->n_tokens, b->n_tokens);
    cr_assert_eq(a->eot, b->eot);
    for (int32_t i = 0; i < a->n_tokens; i++) {
        cr_assert_eq(a->len[i], b->len[i], "token %d", (int)i);
        cr_assert(memcmp(a->tok[i], b->tok[i], a->len[i]) == 0, "token %d", (int)i);
    }
    cr_assert_eq(a->n_merges, b->n_merges);
    for (int32_t r = 0; r < a->n_merges; r++)
        cr_assert(a->merges[r][0] == b->merges[r][0] && a->merges[r][1] == b->merges[r][1], "merge %d",
                  (int)r);
}

Test(vocab, byte_map)
{
    int seen[512] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = gpt2_byte_to_unicode((uint8_t)b);
        cr_assert_lt(cp, 512u);
        cr_assert_eq(seen[cp], 0, "code point %u used twice", cp);
        seen[cp] = 1;
        cr_assert_eq(gpt2_unicode_to_byte(cp), b);
    }
    cr_assert_eq(gpt2_byte_to_unicode('A'), 'A');
    cr_assert_eq(gpt2_byte_to_unicode(0), 0x100u);
    cr_assert_eq(gpt2_byte_to_unicode('\n'), 0x10au);
    cr_assert_eq(gpt2_byte_to_unicode(' '), 0x120u);
    cr_assert_eq(gpt2_byte_to_unicode(0xad), 0x143u);
    cr_assert_eq(gpt2_unicode_to_byte(' '), -1);
    cr_assert_eq(gpt2_unicode_to_byte(0x144), -1);
    cr_assert_eq(gpt2_unicode_to_byte(0x4e00), -1);
}

Test(vocab, load_real_files)
{
    gpt2_vocab v;
    load_real(&v);
    cr_assert_eq(v.n_tokens, 50257);
    cr_assert_eq(v.eot, 50256);
    cr_assert_eq(v.n_merges, 50000);
    cr_assert(v.len[0] == 1 && v.tok[0][0] == '!');
    cr_assert(v.len[188] == 1 && v.tok[188][0] == 0);
    cr_assert(v.len[220] == 1 && v.tok[220][0] == ' ');
    cr_assert(v.len[198] == 1 && v.tok[198][0] == '\n');
    cr_assert(v.len[15496] == 5 && memcmp(v.tok[15496], "Hello", 5) == 0);
    cr_assert(v.merges[0][0] == 220 && v.merges[0][1] == 83, "first merge is 'Ġ t'");
    /* The property the BPE and derive_merges rely on: merge r makes id 256 + r out of older ids. */
    for (int32_t r = 0; r < v.n_merges; r++) {
        int32_t a = v.merges[r][0], b = v.merges[r][1], c = 256 + r;
        cr_assert(a < c && b < c, "merge %d uses a newer token", (int)r);
        cr_assert_eq(v.len[a] + v.len[b], v.len[c]);
        cr_assert(memcmp(v.tok[a], v.tok[c], v.len[a]) == 0 &&
                      memcmp(v.tok[b], v.tok[c] + v.len[a], v.len[b]) == 0,
                  "merge %d does not make token %d", (int)r, (int)c);
    }
    gpt2_vocab_free(&v);
}

Test(vocab, load_dir_and_copy)
{
    gpt2_vocab v, a, c;
    char err[512] = "";
    load_real(&a);
    cr_assert_eq(gpt2_vocab_load_dir(&v, real_dir(), err, sizeof err), 0, "%s", err);
    assert_same_vocab(&v, &a);
    cr_assert_eq(gpt2_vocab_copy(&c, &v), 0);
    gpt2_vocab_free(&v);
    assert_same_vocab(&c, &a);
    gpt2_vocab_free(&c);
    gpt2_vocab_free(&a);
}

Test(vocab, derive_merges_matches_real)
{
    gpt2_vocab v, d;
    load_real(&v);
    cr_assert_eq(gpt2_vocab_copy(&d, &v), 0);
    free(d.merges);
    d.merges = NULL;
    d.n_merges = 0;
    char err[512] = "";
    cr_assert_eq(gpt2_vocab_derive_merges(&d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.n_merges, v.n_merges);
    int differ = 0;
    for (int32_t r = 0; r < v.n_merges; r++)
        if (d.merges[r][0] != v.merges[r][0] || d.merges[r][1] != v.merges[r][1]) {
            if (differ < 5)
                fprintf(stderr, "merge %d: derived (%d %d), real (%d %d)\n", (int)r, (int)d.merges[r][0],
                        (int)d.merges[r][1], (int)v.merges[r][0], (int)v.merges[r][1]);
            differ++;
        }
    fprintf(stderr, "derive_merges: %d of %d merges differ from vocab.bpe\n", differ, (int)v.n_merges);
    cr_assert_eq(differ, 0);
    gpt2_vocab_free(&d);
    gpt2_vocab_free(&v);
}

Test(vocab, derive_merges_skips_tokens_that_are_no_merges)
{
    gpt2_vocab a, d;
    char err[256] = "";
    cr_assert_eq(gpt2_vocab_make_bytes(&a, 60), 0);
    cr_assert_eq(gpt2_vocab_copy(&d, &a), 0);
    free(d.merges);
    d.merges = NULL;
    d.n_merges = 0;
    d.eot = -1; /* as a loader that did not look for it leaves it */
    /* pad with a second spelling of token 300 and with bytes no two tokens make */
    d.tok = realloc(d.tok, (size_t)(d.n_tokens + 2) * sizeof *d.tok);
    d.len = realloc(d.len, (size_t)(d.n_tokens + 2) * sizeof *d.len);
    d.tok[d.n_tokens] = malloc(a.len[300] + 1);
    memcpy(d.tok[d.n_tokens], a.tok[300], a.len[300]);
    d.len[d.n_tokens] = a.len[300];
    d.tok[d.n_tokens + 1] = malloc(4);
    memcpy(d.tok[d.n_tokens + 1], "\xff\xfe\xfd", 4);
    d.len[d.n_tokens + 1] = 3;
    d.n_tokens += 2;
    cr_assert_eq(gpt2_vocab_derive_merges(&d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.n_merges, a.n_merges);
    for (int32_t r = 0; r < a.n_merges; r++)
        cr_assert(d.merges[r][0] == a.merges[r][0] && d.merges[r][1] == a.merges[r][1], "merge %d", (int)r);
    gpt2_vocab_free(&d);
    gpt2_vocab_free(&a);
}

Test(vocab, real_write_load_round_trip, .init = make_tmp, .fini = rm_tmp)
{
    gpt2_vocab v, w;
    char err[512] = "";
    load_real(&v);
    cr_assert_eq(gpt2_vocab_write_dir(&v, tmpdir, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gpt2_vocab_load_dir(&w, tmpdir, err, sizeof err), 0, "%s", err);
    assert_same_vocab(&v, &w);
    gpt2_vocab_free(&w);
    gpt2_vocab_free(&v);
}

Test(vocab, missing_file_named)
{
    gpt2_vocab v;
    char err[512] = "";
    cr_assert_eq(
        gpt2_vocab_load_files(&v, "/nonexistent/vocab.json", "/nonexistent/merges.txt", err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/vocab.json"), "message: %s", err);
    cr_assert_eq(gpt2_vocab_load_dir(&v, "/nonexistent", err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent"), "message: %s", err);
}

Test(vocab, missing_merges_file_named, .init = make_tmp, .fini = rm_tmp)
{
    gpt2_vocab v;
    char err[512] = "", pj[400], pm[400];
    tmp_vocab_paths(pj, pm);
    write_file(pj, "{\"a\": 0, \"b\": 1}");
    cr_assert_eq(gpt2_vocab_load_files(&v, pj, pm, err, sizeof err), -1);
    cr_assert(strstr(err, pm), "message: %s", err);
}

Test(vocab, bad_json_named, .init = make_tmp, .fini = rm_tmp)
{
    gpt2_vocab v;
    char err[512] = "", pj[400], pm[400];
    tmp_vocab_paths(pj, pm);
    write_file(pm, "#version: 0.2\n");
    const char *bad[] = {"{\"a\": 0, \"b\": ",   "[1, 2]",         "{\"a\": 0, \"b\": 0}",
                         "{\"a\": 0, \"b\": 5}", "{\"a\": \"x\"}", "{\"a\": 0, \"\\u0061\": 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(pj, bad[i]);
        err[0] = 0;
        cr_assert_eq(gpt2_vocab_load_files(&v, pj, pm, err, sizeof err), -1, "accepted %s", bad[i]);
        cr_assert(strstr(err, pj), "message for %s: %s", bad[i], err);
    }
}

Test(vocab, bad_merge_named_with_line, .init = make_tmp, .fini = rm_tmp)
{
    gpt2_vocab v;
    char err[512] = "", pj[400], pm[400];
    tmp_vocab_paths(pj, pm);
    write_file(pj, "{\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"\\u0120a\": 4, \"\\u0120\": 5}");
    /* good: version line optional, merges in the byte alphabet */
    write_file(pm, "a b\n\xc4\xa0 a\n");
    cr_assert_eq(gpt2_vocab_load_files(&v, pj, pm, err, sizeof err), 0, "%s", err);
    cr_assert_eq(v.n_merges, 2);
    cr_assert(v.merges[0][0] == 0 && v.merges[0][1] == 1);
    cr_assert(v.merges[1][0] == 5 && v.merges[1][1] == 0);
    cr_assert(v.len[4] == 2 && v.tok[4][0] == ' ' && v.tok[4][1] == 'a');
    cr_assert_eq(v.eot, -1);
    gpt2_vocab_free(&v);

    write_file(pm, "#version: 0.2\na b\nb c\n");
    cr_assert_eq(gpt2_vocab_load_files(&v, pj, pm, err, sizeof err), -1);
    cr_assert(strstr(err, pm), "message: %s", err);
    cr_assert(strstr(err, ":3:"), "message names line 3: %s", err);
    write_file(pm, "a x\n");
    cr_assert_eq(gpt2_vocab_load_files(&v, pj, pm, err, sizeof err), -1);
    cr_assert(strstr(err, ":1:") && strstr(err, pm), "message: %s", err);
    write_file(pm, "#version: 0.2\na b c\n");
    cr_assert_eq(gpt2_vocab_load_files(&v, pj, pm, err, sizeof err), -1);
    cr_assert(strstr(err, ":2:") && strstr(err, pm), "message: %s", err);
}

Test(vocab, make_bytes_deterministic_and_round_trips, .init = make_tmp, .fini = rm_tmp)
{
    gpt2_vocab a, b, r, real;
    char err[512] = "";
    cr_assert_eq(gpt2_vocab_make_bytes(&a, 300), 0);
    cr_assert_eq(gpt2_vocab_make_bytes(&b, 300), 0);
    assert_same_vocab(&a, &b);
    cr_assert_eq(a.n_tokens, 256 + 300 + 1);
    cr_assert_eq(a.eot, 556);
    cr_assert(a.len[556] == 13 && memcmp(a.tok[556], "<|endoftext|>", 13) == 0);
    /* ids 0..255 are GPT-2's byte tokens */
    load_real(&real);
    for (int i = 0; i < 256; i++)
        cr_assert(a.len[i] == 1 && a.tok[i][0] == real.tok[i][0], "byte token %d", i);
    gpt2_vocab_free(&real);
    /* merges make ids 256 + rank from older tokens */
    for (int32_t m = 0; m < a.n_merges; m++) {
        int32_t x = a.merges[m][0], y = a.merges[m][1];
        cr_assert(x < 256 + m && y < 256 + m);
        cr_assert_eq(a.len[x] + a.len[y], a.len[256 + m]);
    }
    /* a smaller vocabulary is a prefix of the larger one's merges */
    gpt2_vocab s;
    cr_assert_eq(gpt2_vocab_make_bytes(&s, 50), 0);
    for (int32_t m = 0; m < 50; m++)
        cr_assert(s.merges[m][0] == a.merges[m][0] && s.merges[m][1] == a.merges[m][1]);
    gpt2_vocab_free(&s);

    cr_assert_eq(gpt2_vocab_write_dir(&a, tmpdir, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gpt2_vocab_load_dir(&r, tmpdir, err, sizeof err), 0, "%s", err);
    assert_same_vocab(&a, &r);
    gpt2_vocab_free(&r);

    /* without merges (as a ggml file would carry it) the writer derives them */
    free(b.merges);
    b.merges = NULL;
    b.n_merges = 0;
    cr_assert_eq(gpt2_vocab_write_dir(&b, tmpdir, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gpt2_vocab_load_dir(&r, tmpdir, err, sizeof err), 0, "%s", err);
    assert_same_vocab(&a, &r);
    gpt2_vocab_free(&r);
    gpt2_vocab_free(&b);
    gpt2_vocab_free(&a);

    cr_assert_eq(gpt2_vocab_make_bytes(&a, 0), 0);
    cr_assert_eq(a.n_tokens, 257);
    cr_assert_eq(a.eot, 256);
    gpt2_vocab_free(&a);
    cr_assert_eq(gpt2_vocab_make_bytes(&a, 400), 0); /* the sample has room for 418 */
    gpt2_vocab_free(&a);
    cr_assert_eq(gpt2_vocab_make_bytes(&a, -1), -1);
    cr_assert_eq(gpt2_vocab_make_bytes(&a, 1000000), -1);
}
