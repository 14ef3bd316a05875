/* file.h - whole files: the one reader of a small file (or of stdin, a pipe) into memory, and
 * read-only mappings of large ones (file.c). Errors are one line naming the file. */
#ifndef VKG_FILE_H
#define VKG_FILE_H

#include <stddef.h>

/* Maps a whole regular file read-only. Returns 0 or -1 with err naming the file. */
int gpt2_map_file(const char *path, void **map, size_t *size, char *err, size_t errlen);
/* Reads a whole regular file of at most max bytes into a NUL-terminated malloc'ed buffer. Returns
 * 0, or -1 with err naming the file (and *buf NULL). */
int gpt2_read_file(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen);
/* The same for a file of any kind read to its end (a pipe, a terminal, a regular file), "-" being
 * stdin (named "stdin" in err); more than max bytes is an error. */
int gpt2_read_input(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen);

#endif
