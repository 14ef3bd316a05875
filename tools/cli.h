/* cli.h - shared helpers of the vkgpt2 command: strict number parsing, whole-file reads, JSON out. */
#ifndef VKG_CLI_H
#define VKG_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Each prints "vkgpt2: FLAG: 'VALUE' is not ..." on stderr and returns -1 on bad input. */
int cli_int(const char *flag, const char *s, long lo, long hi, int *out);
int cli_u64(const char *flag, const char *s, uint64_t *out);
int cli_float(const char *flag, const char *s, double lo, double hi, float *out);
/* Reads a whole file (or stdin for "-") into a malloc'ed buffer; prints the error itself. */
char *cli_read_file(const char *path, size_t *len);
/* Writes s as a JSON string literal (escaping control characters and invalid UTF-8 as \ufffd). */
void cli_json_string(FILE *f, const char *s, size_t len);
/* The value of the flag at argv[*i] (advancing *i), or NULL with a message if it is missing. */
const char *cli_value(int argc, char **argv, int *i);

#endif
