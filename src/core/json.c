#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

static void line_col(const char *text, const char *at, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

cJSON *json_parse_text(const char *text, const char *where, Error *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        int line = 0, col = 0;
        if (end) line_col(text, end, &line, &col);
        error_set(err, "%s: invalid JSON near line %d column %d", where, line, col);
    }
    return root;
}

cJSON *json_parse_file(const char *path, Error *err) {
    char *text = file_read_all(path, NULL, err);
    if (!text) return NULL;
    cJSON *root = json_parse_text(text, path, err);
    free(text);
    return root;
}

int json_check_keys(const cJSON *obj, const char *const *allowed, const char *where, Error *err) {
    if (!cJSON_IsObject(obj)) return error_set(err, "%s: expected a JSON object", where);
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, it->string) == 0) ok = 1;
        if (!ok) return error_set(err, "%s: unknown key '%s'", where, it->string);
    }
    return 0;
}

static const cJSON *lookup(const cJSON *obj, const char *key, int required, const char *where, Error *err,
                           int *status) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *status = 0;
    if (!v || cJSON_IsNull(v)) {
        if (required) *status = error_set(err, "%s: missing required key '%s'", where, key);
        return NULL;
    }
    return v;
}

int json_get_double(const cJSON *obj, const char *key, int required, double *out, const char *where,
                    Error *err) {
    int st;
    const cJSON *v = lookup(obj, key, required, where, err, &st);
    if (!v) return st;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return error_set(err, "%s: key '%s' must be a finite number", where, key);
    *out = v->valuedouble;
    return 0;
}

int json_get_float(const cJSON *obj, const char *key, int required, float *out, const char *where, Error *err) {
    double d = *out;
    if (json_get_double(obj, key, required, &d, where, err)) return -1;
    *out = (float)d;
    return 0;
}

int json_get_int(const cJSON *obj, const char *key, int required, int *out, const char *where, Error *err) {
    int st;
    const cJSON *v = lookup(obj, key, required, where, err, &st);
    if (!v) return st;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 2147483647.0)
        return error_set(err, "%s: key '%s' must be an integer", where, key);
    *out = (int)v->valuedouble;
    return 0;
}

int json_get_bool(const cJSON *obj, const char *key, int required, int *out, const char *where, Error *err) {
    int st;
    const cJSON *v = lookup(obj, key, required, where, err, &st);
    if (!v) return st;
    if (!cJSON_IsBool(v)) return error_set(err, "%s: key '%s' must be true or false", where, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

int json_get_string(const cJSON *obj, const char *key, int required, char *out, size_t n, const char *where,
                    Error *err) {
    int st;
    const cJSON *v = lookup(obj, key, required, where, err, &st);
    if (!v) return st;
    if (!cJSON_IsString(v)) return error_set(err, "%s: key '%s' must be a string", where, key);
    size_t len = strlen(v->valuestring);
    if (len >= n) return error_set(err, "%s: key '%s' is too long (%zu bytes, max %zu)", where, key, len, n - 1);
    memcpy(out, v->valuestring, len + 1);
    return 0;
}
