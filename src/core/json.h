// cJSON helpers for configs and data files: parse with file/line errors, reject unknown keys,
// typed getters that name the offending field.
#ifndef PIONRL_JSON_H
#define PIONRL_JSON_H

#include <cjson/cJSON.h>

#include "core/error.h"

// Parses a JSON file; the error names the file and the line/column of a syntax error.
cJSON *json_parse_file(const char *path, Error *err);
// Parses a string; `where` names the source (file:line for JSONL) in error messages.
cJSON *json_parse_text(const char *text, const char *where, Error *err);
// Fails when obj has a key not in the NULL-terminated list `allowed`; `where` prefixes the message.
int json_check_keys(const cJSON *obj, const char *const *allowed, const char *where, Error *err);

// Getters: when the key is absent, *out keeps its (default) value and 0 is returned unless
// `required`; a present key of the wrong type or out of range is an error naming where.key.
int json_get_int(const cJSON *obj, const char *key, int required, int *out, const char *where, Error *err);
int json_get_double(const cJSON *obj, const char *key, int required, double *out, const char *where,
                    Error *err);
int json_get_float(const cJSON *obj, const char *key, int required, float *out, const char *where,
                   Error *err);
int json_get_bool(const cJSON *obj, const char *key, int required, int *out, const char *where, Error *err);
// Copies the string into out (size n); too long is an error.
int json_get_string(const cJSON *obj, const char *key, int required, char *out, size_t n, const char *where,
                    Error *err);

#endif
