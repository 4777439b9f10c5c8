// safetensors reader (mmap + strict validation) and writer (streamed to a temp file, fsync, rename).
// Every check names the file and, where there is one, the tensor, because a user's first contact with
// a broken download is this error message.
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/bf16.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)  // the format's own cap (safetensors MAX_HEADER_SIZE)

// ---------------------------------------------------------------------------------------------
// dtypes

static const struct {
    StDtype dt;
    const char *name;
    size_t size;
} DTYPES[] = {
    {ST_F32, "F32", 4}, {ST_F16, "F16", 2}, {ST_BF16, "BF16", 2}, {ST_I32, "I32", 4}, {ST_I64, "I64", 8},
    {ST_F64, "F64", 8}, {ST_U8, "U8", 1},   {ST_I8, "I8", 1},     {ST_BOOL, "BOOL", 1},
};
#define NUM_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

size_t st_dtype_size(StDtype dt) {
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].size;
    return 0;
}

const char *st_dtype_name(StDtype dt) {
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].name;
    return "?";
}

int st_dtype_from_name(const char *name, StDtype *out) {
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (!strcmp(DTYPES[i].name, name)) {
            *out = DTYPES[i].dt;
            return 0;
        }
    return -1;
}

// ---------------------------------------------------------------------------------------------
// scalar conversions (bit-level, so they do not depend on compiler half-float support)

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) { return bf16_to_f32(h); }

uint16_t st_f32_to_bf16(float f) { return bf16_from_f32(f); }

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | (man << 13));  // Inf / NaN
    if (exp == 0) {
        // Zero or subnormal: man * 2^-24, exact in fp32.
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t st_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return sign | 0x7E00u | (uint16_t)((ax >> 13) & 0x3FFu);  // NaN stays NaN
    if (ax >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to Inf (65504 is the largest half)
    if (ax >= 0x38800000u) {                       // normal half range, >= 2^-14
        uint32_t r = ax - 0x38000000u;             // rebias exponent 127 -> 15
        r += 0xFFFu + ((r >> 13) & 1u);            // round to nearest even on the 13 dropped bits
        return sign | (uint16_t)(r >> 13);
    }
    if (ax <= 0x33000000u) return sign;  // <= 2^-25: rounds to zero (the tie goes to even 0)
    // Subnormal half: value = m * 2^(e-150), in units of 2^-24 that is m >> (126 - e).
    uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e;  // 14 .. 24
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return sign | (uint16_t)q;
}

// ---------------------------------------------------------------------------------------------
// reading

static int cmp_by_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    return px < py ? -1 : px > py ? 1 : 0;
}

static int cmp_by_name(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    return strcmp(x->name, y->name);
}

// A JSON number that is a non-negative integer exactly representable in a double.
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d != floor(d) || d > 9007199254740992.0) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_tensor(const char *path, const cJSON *it, size_t data_size, const char *data, StTensor *t,
                        Error *err) {
    const char *name = it->string;
    if (strlen(name) >= sizeof t->name)
        return error_set(err, "%s: tensor name '%.60s...' is longer than %zu bytes", path, name,
                         sizeof t->name - 1);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!cJSON_IsObject(it)) return error_set(err, "%s: tensor '%s': header entry is not an object", path, name);
    for (const cJSON *k = it->child; k; k = k->next)
        if (strcmp(k->string, "dtype") && strcmp(k->string, "shape") && strcmp(k->string, "data_offsets"))
            return error_set(err, "%s: tensor '%s': unknown header key '%s'", path, name, k->string);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt)) return error_set(err, "%s: tensor '%s': missing or non-string dtype", path, name);
    if (st_dtype_from_name(dt->valuestring, &t->dtype))
        return error_set(err, "%s: tensor '%s': unsupported dtype '%s' (supported: F32 F16 BF16 F64 I64 I32 I8 "
                              "U8 BOOL)",
                         path, name, dt->valuestring);
    if (!cJSON_IsArray(shape)) return error_set(err, "%s: tensor '%s': missing or non-array shape", path, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > 8) return error_set(err, "%s: tensor '%s': %d dimensions (at most 8 supported)", path, name, nd);
    t->ndim = nd;
    uint64_t numel = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (json_uint(d, &v))
            return error_set(err, "%s: tensor '%s': shape entries must be non-negative integers", path, name);
        t->shape[i] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / 2 / v)
            return error_set(err, "%s: tensor '%s': shape overflows", path, name);
        numel *= v;
    }
    for (; i < 8; i++) t->shape[i] = 0;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return error_set(err, "%s: tensor '%s': data_offsets must be [begin, end]", path, name);
    uint64_t begin, end;
    if (json_uint(cJSON_GetArrayItem(offs, 0), &begin) || json_uint(cJSON_GetArrayItem(offs, 1), &end))
        return error_set(err, "%s: tensor '%s': data_offsets must be non-negative integers", path, name);
    if (end < begin)
        return error_set(err, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin", path, name,
                         (unsigned long long)begin, (unsigned long long)end);
    size_t esize = st_dtype_size(t->dtype);
    if (numel > UINT64_MAX / 8 || numel * esize != end - begin)
        return error_set(err,
                         "%s: tensor '%s': data_offsets cover %llu bytes but %s shape needs %llu elements x %zu "
                         "bytes",
                         path, name, (unsigned long long)(end - begin), dt->valuestring, (unsigned long long)numel,
                         esize);
    if (end > data_size)
        return error_set(err,
                         "%s: tensor '%s': data_offsets [%llu, %llu] extend beyond the data area (%zu bytes; "
                         "file truncated?)",
                         path, name, (unsigned long long)begin, (unsigned long long)end, data_size);
    t->numel = (size_t)numel;
    t->nbytes = (size_t)(end - begin);
    t->data = data + begin;
    return 0;
}

static int parse_header(StFile *f, const char *json, size_t data_size, const char *data, Error *err) {
    const char *path = f->path;
    // Only whitespace (the format's padding) may follow the JSON object.
    cJSON *root = cJSON_ParseWithOpts(json, NULL, 1);
    if (!root) return error_set(err, "%s: header is not valid JSON", path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return error_set(err, "%s: header is not a JSON object", path);
    }
    int n = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__")) n++;
    f->tensors = calloc(n > 0 ? n : 1, sizeof(StTensor));
    if (!f->tensors) {
        cJSON_Delete(root);
        return error_set(err, "%s: out of memory for %d tensor entries", path, n);
    }
    int k = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                cJSON_Delete(root);
                return error_set(err, "%s: __metadata__ must be an object of strings", path);
            }
            continue;
        }
        if (parse_tensor(path, it, data_size, data, &f->tensors[k], err)) {
            cJSON_Delete(root);
            return -1;
        }
        k++;
    }
    f->num_tensors = n;
    cJSON_Delete(root);

    // Duplicate names and overlapping ranges: sort pointers by name, then by start.
    StTensor **order = malloc(sizeof(StTensor *) * (n > 0 ? n : 1));
    if (!order) return error_set(err, "%s: out of memory", path);
    for (int i = 0; i < n; i++) order[i] = &f->tensors[i];
    qsort(order, n, sizeof *order, cmp_by_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name)) {
            error_set(err, "%s: tensor '%s' appears twice in the header", path, order[i]->name);
            free(order);
            return -1;
        }
    qsort(order, n, sizeof *order, cmp_by_begin);
    // Compare each range with the furthest end seen so far, so an empty tensor sorted in between
    // cannot hide an overlap.
    const StTensor *reach = NULL;
    for (int i = 0; i < n; i++) {
        const StTensor *b = order[i];
        if (b->nbytes == 0) continue;
        if (reach && (const char *)reach->data + reach->nbytes > (const char *)b->data) {
            error_set(err, "%s: tensors '%s' and '%s' have overlapping data ranges", path, reach->name, b->name);
            free(order);
            return -1;
        }
        if (!reach || (const char *)b->data + b->nbytes > (const char *)reach->data + reach->nbytes) reach = b;
    }
    free(order);
    return 0;
}

int st_open(const char *path, StFile *f, Error *err) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) return error_set(err, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return error_set(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return error_set(err, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return error_set(err, "%s: file is %zu bytes, too short for a safetensors header", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return error_set(err, "%s: mmap failed: %s", path, strerror(e));
    f->map = map;
    f->map_size = size;

    const unsigned char *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];  // little-endian
    if (hlen > ST_MAX_HEADER) {
        error_set(err, "%s: header length %llu exceeds the 100 MB limit (not a safetensors file?)", path,
                  (unsigned long long)hlen);
        st_close(f);
        return -1;
    }
    if (hlen > size - 8) {
        error_set(err, "%s: header length %llu is beyond the file size %zu (truncated or not safetensors)", path,
                  (unsigned long long)hlen, size);
        st_close(f);
        return -1;
    }
    char *json = malloc(hlen + 1);
    if (!json) {
        error_set(err, "%s: out of memory for a %llu-byte header", path, (unsigned long long)hlen);
        st_close(f);
        return -1;
    }
    memcpy(json, p + 8, hlen);
    json[hlen] = 0;
    if (strlen(json) != hlen) {
        // The format pads with spaces; an embedded NUL means corruption.
        free(json);
        error_set(err, "%s: header contains a NUL byte", path);
        st_close(f);
        return -1;
    }
    int rc = parse_header(f, json, size - 8 - hlen, (const char *)p + 8 + hlen, err);
    free(json);
    if (rc) {
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(StFile *f) {
    if (f->map) munmap(f->map, f->map_size);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->num_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

// Single-threaded on purpose: conversion is memory-bound (several GB/s on one core once the
// destination uses huge pages), and OpenMP regions per tensor were 5-10x slower on a shared,
// oversubscribed machine.
int st_read_f32(const StFile *f, const StTensor *t, float *out, int check_finite, Error *err) {
    const unsigned char *p = t->data;
    const long long n = (long long)t->numel;
    switch (t->dtype) {
    case ST_F32: memcpy(out, p, t->numel * 4); break;
    case ST_F16:
        for (long long i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = st_f16_to_f32(h);
        }
        break;
    case ST_BF16:
        for (long long i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = st_bf16_to_f32(h);
        }
        break;
    case ST_F64:
        for (long long i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        break;
    case ST_I32:
        for (long long i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = (float)v;
        }
        break;
    case ST_I64:
        for (long long i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        break;
    case ST_U8:
    case ST_BOOL:
        for (long long i = 0; i < n; i++) out[i] = (float)p[i];
        break;
    case ST_I8:
        for (long long i = 0; i < n; i++) out[i] = (float)(int8_t)p[i];
        break;
    default: return error_set(err, "%s: tensor '%s': unsupported dtype", f->path, t->name);
    }
    if (check_finite) {
        // Count them all (a branch-free loop), then find the first offender for the message.
        long long bad = 0;
        for (long long i = 0; i < n; i++) bad += !isfinite(out[i]);
        if (bad)
            for (long long i = 0; i < n; i++)
                if (!isfinite(out[i]))
                    return error_set(err, "%s: tensor '%s' has %lld non-finite values; the first (%s) at element %lld%s",
                                     f->path, t->name, bad, isnan(out[i]) ? "NaN" : "Inf", i,
                                     t->dtype == ST_F64 ? " (or a value beyond the fp32 range)" : "");
    }
    return 0;
}

int st_read_i32(const StFile *f, const StTensor *t, int32_t *out, Error *err) {
    const unsigned char *p = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case ST_I32: memcpy(out, p, n * 4); break;
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return error_set(err, "%s: tensor '%s': element %zu (%lld) does not fit in int32", f->path,
                                 t->name, i, (long long)v);
            out[i] = (int32_t)v;
        }
        break;
    case ST_U8:
    case ST_BOOL:
        for (size_t i = 0; i < n; i++) out[i] = p[i];
        break;
    case ST_I8:
        for (size_t i = 0; i < n; i++) out[i] = (int8_t)p[i];
        break;
    default:
        return error_set(err, "%s: tensor '%s' has dtype %s, expected an integer dtype", f->path, t->name,
                         st_dtype_name(t->dtype));
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// writing

typedef struct {
    char name[160];
    StDtype dtype;  // on-disk dtype
    int is_i32;     // source is int32 (else fp32)
    int ndim;
    int64_t shape[8];
    size_t numel;
    const void *data;
} StEntry;

struct StWriter {
    StEntry *entries;
    int n, cap;
    char (*meta)[2][256];
    int num_meta;
};

StWriter *st_writer_new(void) { return calloc(1, sizeof(StWriter)); }

void st_writer_free(StWriter *w) {
    if (!w) return;
    free(w->entries);
    free(w->meta);
    free(w);
}

static int writer_add(StWriter *w, const char *name, StDtype dtype, int is_i32, int ndim, const int64_t *shape,
                      const void *data, Error *err) {
    if (!w) return error_set(err, "safetensors writer is NULL");
    if (!name || !name[0] || strlen(name) >= sizeof w->entries[0].name)
        return error_set(err, "safetensors writer: bad tensor name '%s'", name ? name : "(null)");
    if (!strcmp(name, "__metadata__")) return error_set(err, "safetensors writer: '__metadata__' is reserved");
    if (ndim < 0 || ndim > 8) return error_set(err, "safetensors writer: tensor '%s': ndim %d", name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->entries[i].name, name))
            return error_set(err, "safetensors writer: tensor '%s' added twice", name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return error_set(err, "safetensors writer: tensor '%s': negative dimension", name);
        numel *= (size_t)shape[i];
    }
    if (numel > 0 && !data) return error_set(err, "safetensors writer: tensor '%s': NULL data", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        StEntry *e = realloc(w->entries, sizeof(StEntry) * cap);
        if (!e) return error_set(err, "safetensors writer: out of memory");
        w->entries = e;
        w->cap = cap;
    }
    StEntry *e = &w->entries[w->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->dtype = dtype;
    e->is_i32 = is_i32;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->numel = numel;
    e->data = data;
    return 0;
}

int st_writer_add_f32(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                      const float *data, Error *err) {
    if (dtype != ST_F32 && dtype != ST_BF16 && dtype != ST_F16)
        return error_set(err, "safetensors writer: tensor '%s': fp32 data can be stored as F32, BF16 or F16, not %s",
                         name, st_dtype_name(dtype));
    return writer_add(w, name, dtype, 0, ndim, shape, data, err);
}

int st_writer_add_i32(StWriter *w, const char *name, int ndim, const int64_t *shape, const int32_t *data,
                      Error *err) {
    return writer_add(w, name, ST_I32, 1, ndim, shape, data, err);
}

int st_writer_set_metadata(StWriter *w, const char *key, const char *value, Error *err) {
    if (!key || !value || strlen(key) >= 256 || strlen(value) >= 256)
        return error_set(err, "safetensors writer: metadata key/value missing or longer than 255 bytes");
    for (int i = 0; i < w->num_meta; i++)
        if (!strcmp(w->meta[i][0], key)) {
            snprintf(w->meta[i][1], 256, "%s", value);
            return 0;
        }
    void *m = realloc(w->meta, sizeof(*w->meta) * (w->num_meta + 1));
    if (!m) return error_set(err, "safetensors writer: out of memory");
    w->meta = m;
    snprintf(w->meta[w->num_meta][0], 256, "%s", key);
    snprintf(w->meta[w->num_meta][1], 256, "%s", value);
    w->num_meta++;
    return 0;
}

// Growable text buffer for the header.
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_json_string(Buf *b, const char *s) {
    buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\', tmp[1] = (char)c;
            buf_put(b, tmp, 2);
        } else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            buf_put(b, tmp, 6);
        } else {
            buf_put(b, (const char *)&c, 1);
        }
    }
    buf_put(b, "\"", 1);
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

// Converts and writes one tensor in chunks so a multi-GB model needs no second full copy.
static int write_entry(int fd, const StEntry *e) {
    if (e->is_i32 || e->dtype == ST_F32) return write_all(fd, e->data, e->numel * 4);
    enum { CHUNK = 1 << 16 };
    uint16_t tmp[CHUNK];
    const float *src = e->data;
    for (size_t i = 0; i < e->numel; i += CHUNK) {
        size_t k = e->numel - i < CHUNK ? e->numel - i : CHUNK;
        for (size_t j = 0; j < k; j++)
            tmp[j] = e->dtype == ST_BF16 ? st_f32_to_bf16(src[i + j]) : st_f32_to_f16(src[i + j]);
        if (write_all(fd, tmp, k * 2)) return -1;
    }
    return 0;
}

int st_writer_save(StWriter *w, const char *path, Error *err) {
    if (!w) return error_set(err, "%s: safetensors writer is NULL", path);
    Buf b = {0};
    char num[64];
    buf_str(&b, "{\"__metadata__\":{\"format\":\"pt\"");
    for (int i = 0; i < w->num_meta; i++) {
        if (!strcmp(w->meta[i][0], "format")) continue;
        buf_str(&b, ",");
        buf_json_string(&b, w->meta[i][0]);
        buf_str(&b, ":");
        buf_json_string(&b, w->meta[i][1]);
    }
    buf_str(&b, "}");
    size_t at = 0;
    for (int i = 0; i < w->n; i++) {
        const StEntry *e = &w->entries[i];
        size_t nbytes = e->numel * st_dtype_size(e->dtype);
        buf_str(&b, ",");
        buf_json_string(&b, e->name);
        buf_str(&b, ":{\"dtype\":\"");
        buf_str(&b, st_dtype_name(e->dtype));
        buf_str(&b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            buf_str(&b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", at, at + nbytes);
        buf_str(&b, num);
        at += nbytes;
    }
    buf_str(&b, "}");
    // Pad with spaces to a multiple of 8 so the data area is 8-byte aligned (what the Rust writer does).
    while (!b.oom && (b.len % 8) != 0) buf_str(&b, " ");
    if (b.oom) {
        free(b.s);
        return error_set(err, "%s: out of memory building the header", path);
    }

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        free(b.s);
        return error_set(err, "%s: path too long", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int e = errno;
        free(b.s);
        return error_set(err, "%s: cannot create: %s", tmp, strerror(e));
    }
    unsigned char len8[8];
    uint64_t hl = b.len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    int bad = write_all(fd, len8, 8) || write_all(fd, b.s, b.len);
    free(b.s);
    for (int i = 0; i < w->n && !bad; i++) bad = write_entry(fd, &w->entries[i]);
    if (bad) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return error_set(err, "%s: write failed: %s", tmp, strerror(e));
    }
    int sync_bad = fsync(fd) != 0;
    int e_sync = errno;
    if (close(fd) != 0 && !sync_bad) sync_bad = 1, e_sync = errno;
    if (sync_bad) {
        unlink(tmp);
        return error_set(err, "%s: sync/close failed: %s", tmp, strerror(e_sync));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return error_set(err, "%s: rename failed: %s", path, strerror(e));
    }
    return 0;
}
