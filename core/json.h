/* json.h - a small, strict JSON reader for config.json, safetensors headers, vocab.json, test data,
 * and the one JSON string writer of every JSON output.
 *
 * Parses a whole document into a tree allocated from one arena (freed by json_free). Strings are
 * decoded to UTF-8 with their byte length (they may hold NUL). Hostile input is bounded: nesting is
 * limited, and every error names the byte offset.
 *
 *     json_doc *d = json_parse(text, len, err, sizeof err);
 *     const json_value *v = json_get(json_root(d), "n_embd");
 *     int64_t n; if (v && json_as_int(v, &n)) ...
 *     json_free(d);
 */
#ifndef VKG_JSON_H
#define VKG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;     /* kind of value */
    bool b;             /* JSON_BOOL */
    double num;         /* JSON_NUMBER */
    bool is_int;        /* JSON_NUMBER written without fraction or exponent, fits int64 */
    int64_t i;          /* JSON_NUMBER when is_int */
    char *str;          /* JSON_STRING: UTF-8 bytes, NUL-terminated for convenience */
    size_t len;         /* JSON_STRING: byte length; ARRAY/OBJECT: element count */
    json_value **items; /* ARRAY: elements; OBJECT: values */
    char **keys;        /* OBJECT: keys (NUL-terminated) */
    size_t *key_lens;   /* OBJECT: key byte lengths */
};

typedef struct json_doc json_doc;

json_doc *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json_doc *d);
const json_value *json_root(const json_doc *d);

/* Object member by key (first match), or NULL if v is no object or has no such key. */
const json_value *json_get(const json_value *v, const char *key);
/* true and *out set if v is an integer number. */
bool json_as_int(const json_value *v, int64_t *out);
/* true and *out set if v is a number. */
bool json_as_num(const json_value *v, double *out);

/* Writes s[0..len) to f as a JSON string: quotes; '"', '\\', \n, \t, \r escaped, other control
 * bytes as \u00XX; well-formed UTF-8 kept as it is, every byte of a malformed sequence as \ufffd. */
void json_write_string(FILE *f, const char *s, size_t len);

#endif
