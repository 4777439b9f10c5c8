// Math data sets: download the public source files and convert them to pionrl's JSONL.
#include "core/hub_dataset.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/json.h"
#include "core/sha256.h"

static const char *const TRAIN_TEST[] = {"train", "test", NULL};
static const char *const TEST_ONLY[] = {"test", NULL};

int hub_dataset_known(const char *name) {
    return name && (!strcmp(name, "gsm8k") || !strcmp(name, "math") || !strcmp(name, "math500"));
}

const char *const *hub_dataset_splits(const char *name) {
    if (!hub_dataset_known(name)) return NULL;
    return strcmp(name, "math500") ? TRAIN_TEST : TEST_ONLY;
}

static int split_allowed(const char *name, const char *split) {
    const char *const *s = hub_dataset_splits(name);
    for (; s && *s; s++)
        if (!strcmp(*s, split)) return 1;
    return 0;
}

int hub_dataset_source(const HubOptions *o, const char *name, const char *split, const char *const *overrides,
                       char *url, size_t n, Error *err) {
    if (!hub_dataset_known(name)) return error_set(err, "unknown data set '%s' (gsm8k, math, math500)", name);
    if (!split_allowed(name, split)) return error_set(err, "data set %s has no split '%s'", name, split);
    size_t sl = strlen(split);
    for (const char *const *ov = overrides; ov && *ov; ov++) {
        if (!strncmp(*ov, split, sl) && (*ov)[sl] == '=') {
            if ((size_t)snprintf(url, n, "%s", *ov + sl + 1) >= n) return error_set(err, "URL too long");
            return 0;
        }
    }
    char env[64];
    snprintf(env, sizeof env, "PIONRL_%s_%s_URL", name, split);
    for (char *p = env; *p; p++) *p = (char)toupper((unsigned char)*p);
    const char *v = getenv(env);
    int w;
    if (v && v[0])
        w = snprintf(url, n, "%s", v);
    else if (!strcmp(name, "gsm8k"))
        w = snprintf(url, n, "%s/%s.jsonl", HUB_GSM8K_URL_BASE, split);
    else if (!strcmp(name, "math"))
        w = snprintf(url, n, "%s", HUB_MATH_TAR_URL);
    else
        w = snprintf(url, n, "%s%s", o->endpoint, HUB_MATH500_PATH);
    if (w < 0 || (size_t)w >= n) return error_set(err, "URL too long");
    return 0;
}

// ---- \boxed{} ----

int math_last_boxed(const char *text, char *out, size_t n) {
    const char *at = NULL;
    size_t skip = 0;
    for (const char *p = text; (p = strchr(p, '\\')) != NULL; p++) {
        if (!strncmp(p, "\\boxed", 6) && !isalpha((unsigned char)p[6])) {
            at = p;
            skip = 6;
        } else if (!strncmp(p, "\\fbox", 5) && !isalpha((unsigned char)p[5])) {
            at = p;
            skip = 5;
        }
    }
    if (!at) return -1;
    const char *p = at + skip;
    const char *start, *end;
    if (*p == '{') {
        int depth = 0;
        start = p + 1;
        end = NULL;
        for (; *p; p++) {
            if (*p == '\\' && (p[1] == '{' || p[1] == '}')) {
                p++;  // an escaped brace is content, not structure
                continue;
            }
            if (*p == '{') depth++;
            if (*p == '}' && --depth == 0) {
                end = p;
                break;
            }
        }
        if (!end) return -1;
    } else if (*p == ' ') {
        // "\boxed 5$": the answer runs to the next '$' or whitespace.
        while (*p == ' ') p++;
        start = p;
        while (*p && *p != '$' && !isspace((unsigned char)*p)) p++;
        end = p;
    } else {
        return -1;
    }
    size_t len = (size_t)(end - start);
    while (len && isspace((unsigned char)*start)) start++, len--;
    while (len && isspace((unsigned char)start[len - 1])) len--;
    if (len == 0 || len + 1 > n) return -1;
    memcpy(out, start, len);
    out[len] = 0;
    return 0;
}

// ---- output buffer ----

typedef struct {
    char *buf;
    size_t len, cap;
} Buf;

static int buf_add(Buf *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 20;
        while (cap < b->len + n + 2) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) return -1;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len++] = '\n';
    b->buf[b->len] = 0;
    return 0;
}

// Prints obj as one JSONL line into b and frees it.
static int emit(Buf *b, cJSON *obj, Error *err) {
    char *line = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    int rc = line ? buf_add(b, line) : -1;
    free(line);
    return rc == 0 ? 0 : error_set(err, "out of memory");
}

static int finish(Buf *b, const char *dst, long count, const char *src, Error *err) {
    if (count == 0) {
        free(b->buf);
        return error_set(err, "%s: no records found", src);
    }
    int rc = file_write_atomic(dst, b->buf ? b->buf : "", b->len, err);
    free(b->buf);
    return rc;
}

static const char *str_field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// Calls fn on each non-blank line of a JSONL file; errors name file:line.
typedef int (*LineFn)(const cJSON *rec, const char *where, void *ctx, Error *err);

static int each_jsonl(const char *src, char *text, LineFn fn, void *ctx, Error *err) {
    int line = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        char *q = p;
        while (isspace((unsigned char)*q)) q++;
        if (*q) {
            char where[1100];
            snprintf(where, sizeof where, "%s:%d", src, line);
            cJSON *rec = json_parse_text(q, where, err);
            if (!rec) return -1;
            if (!cJSON_IsObject(rec)) {
                cJSON_Delete(rec);
                return error_set(err, "%s: expected a JSON object", where);
            }
            int rc = fn(rec, where, ctx, err);
            cJSON_Delete(rec);
            if (rc != 0) return -1;
        }
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}

typedef struct {
    Buf out;
    long count, skipped;
    const char *unique_id;  // tar member name for records without one
} Conv;

static int gsm8k_line(const cJSON *rec, const char *where, void *ctx, Error *err) {
    Conv *c = ctx;
    const char *q = str_field(rec, "question"), *a = str_field(rec, "answer");
    if (!q || !a) return error_set(err, "%s: GSM8K record needs string fields 'question' and 'answer'", where);
    if (!strstr(a, "####")) return error_set(err, "%s: GSM8K answer has no '#### <number>' line", where);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "question", q);
    cJSON_AddStringToObject(o, "answer", a);
    c->count++;
    return emit(&c->out, o, err);
}

// Converts a JSONL file line by line with `line` and writes the result to dst.
static int convert_jsonl(const char *src, const char *dst, LineFn line,
                         long *count, Error *err) {
    char *text = file_read_all(src, NULL, err);
    if (!text) return -1;
    Conv c = {{0}, 0, 0, NULL};
    int rc = each_jsonl(src, text, line, &c, err);
    free(text);
    if (rc != 0) {
        free(c.out.buf);
        return -1;
    }
    if (count) *count = c.count;
    return finish(&c.out, dst, c.count, src, err);
}

int hub_convert_gsm8k(const char *src, const char *dst, long *count, Error *err) {
    return convert_jsonl(src, dst, gsm8k_line, count, err);
}

static int math500_line(const cJSON *rec, const char *where, void *ctx, Error *err) {
    Conv *c = ctx;
    const char *p = str_field(rec, "problem"), *a = str_field(rec, "answer");
    if (!p || !a) return error_set(err, "%s: MATH-500 record needs string fields 'problem' and 'answer'", where);
    cJSON *o = cJSON_CreateObject();
    static const char *const keep[] = {"problem", "solution", "answer", "subject", "level", "unique_id", NULL};
    for (int i = 0; keep[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, keep[i]);
        if (v && (cJSON_IsString(v) || cJSON_IsNumber(v))) cJSON_AddItemToObject(o, keep[i], cJSON_Duplicate(v, 0));
    }
    c->count++;
    return emit(&c->out, o, err);
}

int hub_convert_math500(const char *src, const char *dst, long *count, Error *err) {
    return convert_jsonl(src, dst, math500_line, count, err);
}

// One MATH record (original fields problem/level/type/solution, or already converted ones).
static int math_record(const cJSON *rec, const char *where, void *ctx, Error *err) {
    Conv *c = ctx;
    const char *problem = str_field(rec, "problem");
    const char *solution = str_field(rec, "solution");
    const char *answer = str_field(rec, "answer");
    const char *subject = str_field(rec, "subject");
    if (!subject) subject = str_field(rec, "type");
    const char *uid = str_field(rec, "unique_id");
    if (!uid) uid = c->unique_id;
    if (!problem) return error_set(err, "%s: MATH record needs a string field 'problem'", where);
    char boxed[4096];
    if (!answer) {
        if (!solution || math_last_boxed(solution, boxed, sizeof boxed) != 0) {
            c->skipped++;  // no gradable answer: useless for RL
            return 0;
        }
        answer = boxed;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "problem", problem);
    if (solution) cJSON_AddStringToObject(o, "solution", solution);
    cJSON_AddStringToObject(o, "answer", answer);
    if (subject) cJSON_AddStringToObject(o, "subject", subject);
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(rec, "level");
    if (level && (cJSON_IsString(level) || cJSON_IsNumber(level)))
        cJSON_AddItemToObject(o, "level", cJSON_Duplicate(level, 0));
    if (uid) cJSON_AddStringToObject(o, "unique_id", uid);
    c->count++;
    return emit(&c->out, o, err);
}

// ---- tar ----

typedef struct {
    char *name;   // "train/algebra/1.json"
    char *json;
} Member;

static long long tar_octal(const unsigned char *p, int n) {
    if (p[0] & 0x80) {  // GNU base-256 for large sizes
        long long v = p[0] & 0x7f;
        for (int i = 1; i < n; i++) v = (v << 8) | p[i];
        return v;
    }
    long long v = 0;
    int i = 0;
    while (i < n && (p[i] == ' ' || p[i] == 0)) i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) v = v * 8 + (p[i] - '0');
    return v;
}

static int member_cmp(const void *a, const void *b) {
    return strverscmp(((const Member *)a)->name, ((const Member *)b)->name);
}

// Member name relative to the split ("MATH/train/algebra/1.json" -> "train/algebra/1.json"), or
// NULL when the member is not under <split>/ or not a .json file.
static const char *split_relative(const char *name, const char *split) {
    size_t sl = strlen(split), nl = strlen(name);
    if (nl < 5 || strcmp(name + nl - 5, ".json") != 0) return NULL;
    for (const char *p = name; p; p = strchr(p, '/')) {
        if (*p == '/') p++;
        if (!strncmp(p, split, sl) && p[sl] == '/') return p;
    }
    return NULL;
}

static int convert_tar(const char *src, const unsigned char *data, size_t len, const char *split, Conv *c,
                       Error *err) {
    Member *m = NULL;
    size_t nm = 0, cap = 0;
    char longname[4096] = "";
    int rc = 0;
    size_t off = 0;
    int ended = 0;
    while (off + 512 <= len) {
        const unsigned char *h = data + off;
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
        if (zero) {
            ended = 1;  // end-of-archive marker
            break;
        }
        unsigned sum = 0;
        for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if ((long long)sum != tar_octal(h + 148, 8)) {
            rc = error_set(err, "%s: corrupt tar header at byte %zu (checksum)", src, off);
            break;
        }
        long long size = tar_octal(h + 124, 12);
        char type = (char)h[156];
        size_t body = off + 512;
        size_t padded = (size_t)((size + 511) / 512 * 512);
        if (size < 0 || body + (size_t)size > len) {
            rc = error_set(err, "%s: truncated tar archive (member at byte %zu runs past the end)", src, off);
            break;
        }
        char name[4096];
        if (longname[0]) {
            snprintf(name, sizeof name, "%s", longname);
            longname[0] = 0;
        } else if (!memcmp(h + 257, "ustar", 5) && h[345]) {
            snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h + 0);
        } else {
            snprintf(name, sizeof name, "%.100s", (const char *)h);
        }
        if (type == 'L') {  // GNU long name: the body is the next member's name
            size_t k = (size_t)size < sizeof longname - 1 ? (size_t)size : sizeof longname - 1;
            memcpy(longname, data + body, k);
            longname[k] = 0;
        } else if (type == 'x') {  // pax header: take its path= record
            const char *p = (const char *)data + body, *e = p + size;
            while (p < e) {
                long rl = strtol(p, NULL, 10);
                const char *sp = memchr(p, ' ', (size_t)(e - p));
                if (rl <= 0 || !sp || p + rl > e) break;
                if (!strncmp(sp + 1, "path=", 5)) {
                    size_t k = (size_t)(p + rl - 1 - (sp + 6));
                    if (k < sizeof longname) {
                        memcpy(longname, sp + 6, k);
                        longname[k] = 0;
                    }
                }
                p += rl;
            }
        } else if (type == '0' || type == 0) {
            const char *rel = split_relative(name, split);
            if (rel) {
                if (nm == cap) {
                    cap = cap ? cap * 2 : 1024;
                    Member *nmv = realloc(m, cap * sizeof *m);
                    if (!nmv) {
                        rc = error_set(err, "out of memory");
                        break;
                    }
                    m = nmv;
                }
                m[nm].name = strdup(rel);
                m[nm].json = strndup((const char *)data + body, (size_t)size);
                if (!m[nm].name || !m[nm].json) {
                    free(m[nm].name);
                    free(m[nm].json);
                    rc = error_set(err, "out of memory");
                    break;
                }
                nm++;
            }
        }
        off = body + padded;
    }
    // A download cut at a block boundary still lacks the end-of-archive marker.
    if (rc == 0 && !ended)
        rc = error_set(err, "%s: truncated tar archive (ends at byte %zu without the end marker)", src, len);
    if (rc == 0 && nm > 1) qsort(m, nm, sizeof *m, member_cmp);
    for (size_t i = 0; i < nm; i++) {
        if (rc == 0) {
            char where[4200];
            snprintf(where, sizeof where, "%s:%s", src, m[i].name);
            cJSON *rec = json_parse_text(m[i].json, where, err);
            if (!rec) {
                rc = -1;
            } else {
                c->unique_id = m[i].name;
                if (!cJSON_IsObject(rec))
                    rc = error_set(err, "%s: expected a JSON object", where);
                else
                    rc = math_record(rec, where, c, err);
                c->unique_id = NULL;
                cJSON_Delete(rec);
            }
        }
        free(m[i].name);
        free(m[i].json);
    }
    free(m);
    if (rc == 0 && nm == 0) rc = error_set(err, "%s: the tar archive has no %s/*.json members", src, split);
    return rc;
}

int hub_convert_math(const char *src, const char *split, const char *dst, long *count, long *skipped, Error *err) {
    size_t len = 0;
    char *text = file_read_all(src, &len, err);
    if (!text) return -1;
    Conv c = {{0}, 0, 0, NULL};
    int rc;
    const char *q = text;
    while (isspace((unsigned char)*q)) q++;
    if (len >= 512 && !memcmp(text + 257, "ustar", 5)) {
        rc = convert_tar(src, (const unsigned char *)text, len, split, &c, err);
    } else if (*q == '[') {
        cJSON *arr = json_parse_text(text, src, err);
        rc = arr ? 0 : -1;
        if (arr && !cJSON_IsArray(arr)) rc = error_set(err, "%s: expected a JSON array", src);
        int i = 0;
        for (const cJSON *e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
            char where[1100];
            snprintf(where, sizeof where, "%s[%d]", src, i);
            rc = cJSON_IsObject(e) ? math_record(e, where, &c, err) : error_set(err, "%s: expected an object", where);
        }
        cJSON_Delete(arr);
    } else if (*q == '{') {
        rc = each_jsonl(src, text, math_record, &c, err);
    } else {
        rc = error_set(err, "%s: not a tar archive, JSON array or JSONL file", src);
    }
    free(text);
    if (rc != 0) {
        free(c.out.buf);
        return -1;
    }
    if (count) *count = c.count;
    if (skipped) *skipped = c.skipped;
    return finish(&c.out, dst, c.count, src, err);
}

// ---- download + convert ----

static int source_path(const char *dir, const char *url, char *out, size_t n, Error *err) {
    // One file per distinct URL (math's splits share MATH.tar): short hash + the URL's base name.
    char hex[65];
    sha256_buffer_hex(url, strlen(url), hex);
    const char *q = strchr(url, '?');
    size_t ul = q ? (size_t)(q - url) : strlen(url);
    const char *base = url + ul;
    while (base > url && base[-1] != '/') base--;
    char name[200];
    size_t k = 0;
    for (const char *p = base; p < url + ul && k + 1 < sizeof name; p++)
        name[k++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '_';
    name[k] = 0;
    int w = snprintf(out, n, "%s/.source/%.12s-%s", dir, hex, k ? name : "data");
    if (w < 0 || (size_t)w >= n) return error_set(err, "%s: path too long", dir);
    return 0;
}

int hub_dataset_download(const HubOptions *o, const char *name, const char *to_dir, const char *const *overrides,
                         int force, Error *err) {
    if (!hub_dataset_known(name)) return error_set(err, "unknown data set '%s' (gsm8k, math, math500)", name);
    for (const char *const *ov = overrides; ov && *ov; ov++) {
        const char *eq = strchr(*ov, '=');
        char split[32];
        size_t sl = eq ? (size_t)(eq - *ov) : 0;
        if (!eq || sl == 0 || sl >= sizeof split || !eq[1])
            return error_set(err, "--url '%s': expected SPLIT=URL", *ov);
        memcpy(split, *ov, sl);
        split[sl] = 0;
        if (!split_allowed(name, split)) return error_set(err, "--url '%s': %s has no split '%s'", *ov, name, split);
    }
    char dir[4096];
    const char *sub = !strcmp(name, "gsm8k") ? "gsm8k" : "math";
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", to_dir, sub) >= sizeof dir)
        return error_set(err, "%s: path too long", to_dir);
    char srcdir[4200];
    snprintf(srcdir, sizeof srcdir, "%s/.source", dir);
    if (dir_create(srcdir, err) != 0) return -1;
    for (const char *const *s = hub_dataset_splits(name); *s; s++) {
        char url[2048], raw[4400], out[4400];
        if (hub_dataset_source(o, name, *s, overrides, url, sizeof url, err) != 0) return -1;
        if (source_path(dir, url, raw, sizeof raw, err) != 0) return -1;
        if (!strcmp(name, "math500"))
            snprintf(out, sizeof out, "%s/test500.jsonl", dir);
        else
            snprintf(out, sizeof out, "%s/%s.jsonl", dir, *s);
        if (force && !o->offline) unlink(raw);
        if (!file_exists(raw)) {
            if (o->offline)
                return error_set(err, "offline: %s (from %s) is not downloaded; run without --offline", raw, url);
            if (o->log && o->progress) fprintf(o->log, "fetching %s\n", url);
            if (hub_fetch(o, url, raw, -1, NULL, NULL, err) != 0) return error_prefix(err, "%s %s", name, *s);
        }
        long count = 0, skipped = 0;
        int rc;
        if (!strcmp(name, "gsm8k"))
            rc = hub_convert_gsm8k(raw, out, &count, err);
        else if (!strcmp(name, "math"))
            rc = hub_convert_math(raw, *s, out, &count, &skipped, err);
        else
            rc = hub_convert_math500(raw, out, &count, err);
        if (rc != 0) return error_prefix(err, "converting %s %s (source %s)", name, *s, url);
        if (o->log && o->progress) {
            fprintf(o->log, "wrote %s: %ld records", out, count);
            if (skipped) fprintf(o->log, " (%ld without a \\boxed{} answer skipped)", skipped);
            fprintf(o->log, "\n");
        }
    }
    return 0;
}
