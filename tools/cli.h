/* cli.h - shared helpers of the vkgpt2 command: strict number parsing, whole-file reads, JSON out. */
#ifndef VKG_CLI_H
#define VKG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vkgpt2.h"

/* Each prints "vkgpt2: FLAG: 'VALUE' is not ..." on stderr and returns -1 on bad input. */
int cli_int(const char *flag, const char *s, long lo, long hi, int *out);
int cli_u64(const char *flag, const char *s, uint64_t *out);
/* A seed: a non-negative integer, or a negative one (*random set: draw one with cli_random_seed). */
int cli_seed(const char *flag, const char *s, uint64_t *out, bool *random);
/* 64 bits from the kernel's entropy source (getrandom; /dev/urandom if that is refused). */
uint64_t cli_random_seed(void);
int cli_float(const char *flag, const char *s, double lo, double hi, float *out);
/* The words a flag takes and what each means ({NULL, 0} ends a table). */
typedef struct cli_choice {
    const char *name; /* the word on the command line */
    int value;        /* what it sets */
} cli_choice;
/* --backend (auto, cpu, vulkan: vkg_backend) and --kv (f16, f32: vkg_kv_type) of every command. */
extern const cli_choice cli_backends[];
extern const cli_choice cli_kv_types[];
/* *out = the value of word v in choices; else "vkgpt2: FLAG: 'V' is not A, B or C" on stderr and -1. */
int cli_choose(const char *flag, const char *v, const cli_choice *choices, int *out);
/* What --device takes, in every command's --help (with "see vkgpt2 devices"). */
#define CLI_DEVICE_FORMS "an index, a deviceUUID prefix or a name substring"
/* --device of every command (CLI_DEVICE_FORMS): a short decimal number is an index (0..1000) and
 * goes to *index, anything else to *name (the engine matches it, a longer number as an index too).
 * Returns 0, or -1 with "vkgpt2: FLAG: 'V' is not a device index, UUID prefix or name" (or the
 * index's range) on stderr for an empty value or one that starts with '-'. */
int cli_device(const char *flag, const char *v, int *index, const char **name);
/* Reads a whole file of any kind (or stdin for "-") into a malloc'ed buffer with gpt2_read_input
 * (core/file.h); prints the error itself. */
char *cli_read_file(const char *path, size_t *len);
/* The value of the flag at argv[*i] (advancing *i), or NULL with a message if it is missing. */
const char *cli_value(int argc, char **argv, int *i);
/* Caps a thread count at 4 x the online CPUs, with a notice; returns 1 when it did. */
int cli_cap_threads(int *n_threads);
/* one when n == 1, else many ("1 token", "2 tokens"). */
const char *cli_plural(long n, const char *one, const char *many);
/* The error for argv word arg that cmd does not take: an unknown option or an unexpected word. */
void cli_unexpected(const char *cmd, const char *arg);
/* Rewrites argv so that every "--name=value" becomes "--name" "value" (a word after an option that
 * takes a value is left alone: it is that value). Returns 0, or -1 with a message ("--json=1": the
 * option takes no value). */
int cli_split_equals(int *argc, char ***argv);

/* Replaces stdout by a stream that remembers why a write failed and where the text stands
 * (call first in main). */
void cli_stdout_init(void);
/* errno of the first failed write to stdout (EPIPE also for a reader that is gone), 0 if none. */
int cli_stdout_errno(void);
/* The libvkgpt2 notice handler: "vkgpt2: MSG" on stderr, on a new line if the text on stdout
 * stopped mid-line and stderr shows on the same terminal or file. */
void cli_notice(void *user, vkg_notice_kind kind, const char *msg);

#endif
