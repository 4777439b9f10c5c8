// safetensors: round trips for every dtype, each kind of corrupt file (written by hand into a temp
// directory), bf16/f16 rounding against the compiler's _Float16 and hand-checked cases, NaN/Inf checks.
#include "test.h"

#include <stdint.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "core/safetensors.h"

static char tmp_root[64];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *out = buf[k++ % 8];
    snprintf(out, 512, "%s/%s", tmp_root, name);
    return out;
}

// Writes a raw file: 8-byte little-endian header length (hlen_override when not 0), header, data.
static const char *raw_file(const char *name, const char *header, const void *data, size_t data_len,
                            uint64_t hlen_override) {
    const char *path = tmp_path(name);
    size_t hl = strlen(header);
    uint64_t stated = hlen_override ? hlen_override : hl;
    size_t total = 8 + hl + data_len;
    unsigned char *buf = malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(stated >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len) memcpy(buf + 8 + hl, data, data_len);
    Error e;
    if (file_write_atomic(path, buf, total, &e)) fprintf(stderr, "raw_file: %s\n", e.msg);
    free(buf);
    return path;
}

// st_open on a raw file, expecting failure; returns the message.
static const char *open_error(const char *name, const char *header, const void *data, size_t len, uint64_t hlen) {
    static Error e;
    StFile f;
    const char *path = raw_file(name, header, data, len, hlen);
    if (st_open(path, &f, &e) == 0) {
        st_close(&f);
        return NULL;
    }
    return e.msg;
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// ---------------------------------------------------------------------------------------------

static void test_writer_round_trip(void) {
    float a[6] = {1.0f, -2.5f, 3.14159265f, 1e-8f, -0.0f, 65504.0f};
    int32_t ids[4] = {0, -7, 2147483647, -2147483647 - 1};
    int64_t sa[2] = {2, 3}, si[1] = {4}, s0[1] = {0};
    Error e;
    StWriter *w = st_writer_new();
    CHECK(st_writer_add_f32(w, "a.f32", ST_F32, 2, sa, a, &e) == 0);
    CHECK(st_writer_add_f32(w, "a.bf16", ST_BF16, 2, sa, a, &e) == 0);
    CHECK(st_writer_add_f32(w, "a.f16", ST_F16, 2, sa, a, &e) == 0);
    CHECK(st_writer_add_i32(w, "ids", 1, si, ids, &e) == 0);
    CHECK(st_writer_add_f32(w, "empty", ST_F32, 1, s0, NULL, &e) == 0);
    CHECK(st_writer_add_f32(w, "scalar", ST_F32, 0, NULL, a, &e) == 0);
    CHECK(st_writer_set_metadata(w, "step", "12", &e) == 0);
    CHECK(st_writer_set_metadata(w, "quote\"key", "back\\slash", &e) == 0);
    // Writer misuse.
    CHECK(st_writer_add_f32(w, "a.f32", ST_F32, 2, sa, a, &e) == -1 && strstr(e.msg, "added twice"));
    CHECK(st_writer_add_f32(w, "x", ST_F64, 2, sa, a, &e) == -1 && strstr(e.msg, "F64"));
    CHECK(st_writer_add_f32(w, "__metadata__", ST_F32, 2, sa, a, &e) == -1);
    const char *path = tmp_path("rt.safetensors");
    CHECK_MSG(st_writer_save(w, path, &e) == 0, "%s", e.msg);
    st_writer_free(w);

    StFile f;
    CHECK_MSG(st_open(path, &f, &e) == 0, "%s", e.msg);
    CHECK(f.num_tensors == 6);
    CHECK(!strcmp(f.tensors[0].name, "a.f32") && !strcmp(f.tensors[3].name, "ids"));  // header order
    const StTensor *t = st_find(&f, "a.f32");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6);
    CHECK(t->nbytes == 24);
    float out[6];
    CHECK(st_read_f32(&f, t, out, 1, &e) == 0 && memcmp(out, a, sizeof a) == 0);
    t = st_find(&f, "a.bf16");
    CHECK(t && t->dtype == ST_BF16 && t->nbytes == 12);
    CHECK(st_read_f32(&f, t, out, 1, &e) == 0);
    for (int i = 0; i < 6; i++) CHECK(out[i] == st_bf16_to_f32(st_f32_to_bf16(a[i])));
    CHECK(out[0] == 1.0f && out[1] == -2.5f && out[2] == 3.140625f);
    t = st_find(&f, "a.f16");
    CHECK(t && t->dtype == ST_F16);
    CHECK(st_read_f32(&f, t, out, 1, &e) == 0);
    for (int i = 0; i < 6; i++) CHECK(out[i] == (float)(_Float16)a[i]);
    CHECK(out[5] == 65504.0f && bits_of(out[4]) == 0x80000000u);
    t = st_find(&f, "ids");
    int32_t ib[4];
    CHECK(t && t->dtype == ST_I32 && st_read_i32(&f, t, ib, &e) == 0 && memcmp(ib, ids, sizeof ids) == 0);
    t = st_find(&f, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0);
    t = st_find(&f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && st_read_f32(&f, t, out, 1, &e) == 0 && out[0] == 1.0f);
    CHECK(st_find(&f, "nope") == NULL);
    // Header: length padded to a multiple of 8, format and user metadata present.
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | ((unsigned char *)f.map)[i];
    CHECK(hl % 8 == 0);
    char *hdr = strndup((char *)f.map + 8, hl);
    CHECK(strstr(hdr, "\"format\":\"pt\"") && strstr(hdr, "\"step\":\"12\"") &&
          strstr(hdr, "\"quote\\\"key\":\"back\\\\slash\""));
    free(hdr);
    st_close(&f);
    // No temp file left behind.
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    CHECK(!file_exists(tmp));
    // Saving into a missing directory fails cleanly.
    w = st_writer_new();
    CHECK(st_writer_add_f32(w, "a", ST_F32, 2, sa, a, &e) == 0);
    CHECK(st_writer_save(w, "/nonexistent-dir/x.safetensors", &e) == -1 && strstr(e.msg, "/nonexistent-dir/"));
    st_writer_free(w);
}

// Dtypes the writer does not produce (F64, I64, U8, I8, BOOL), from a hand-made file.
static void test_read_other_dtypes(void) {
    unsigned char data[8 * 3 + 8 * 3 + 3 + 3 + 3];
    double d[3] = {0.1, -1e-3, 12345.678};
    int64_t l[3] = {5, -6, 7000000000LL};
    unsigned char u8[3] = {0, 200, 255};
    signed char i8[3] = {-128, 0, 127};
    unsigned char bl[3] = {1, 0, 1};
    size_t at = 0;
    memcpy(data + at, d, 24), at += 24;
    memcpy(data + at, l, 24), at += 24;
    memcpy(data + at, u8, 3), at += 3;
    memcpy(data + at, i8, 3), at += 3;
    memcpy(data + at, bl, 3), at += 3;
    const char *hdr = "{\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]},"
                      "\"l\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[24,48]},"
                      "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[48,51]},"
                      "\"i\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[51,54]},"
                      "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[54,57]},"
                      "\"__metadata__\":{\"format\":\"pt\"}}";
    const char *path = raw_file("dtypes.safetensors", hdr, data, at, 0);
    StFile f;
    Error e;
    CHECK_MSG(st_open(path, &f, &e) == 0, "%s", e.msg);
    CHECK(f.num_tensors == 5);
    float o[3];
    int32_t oi[3];
    CHECK(st_read_f32(&f, st_find(&f, "d"), o, 1, &e) == 0);
    for (int i = 0; i < 3; i++) CHECK(o[i] == (float)d[i]);
    CHECK(st_read_f32(&f, st_find(&f, "l"), o, 1, &e) == 0 && o[1] == -6.0f && o[2] == 7e9f);
    CHECK(st_read_i32(&f, st_find(&f, "l"), oi, &e) == -1 && strstr(e.msg, "does not fit in int32") &&
          strstr(e.msg, "'l'"));
    CHECK(st_read_i32(&f, st_find(&f, "u"), oi, &e) == 0 && oi[1] == 200 && oi[2] == 255);
    CHECK(st_read_i32(&f, st_find(&f, "i"), oi, &e) == 0 && oi[0] == -128 && oi[2] == 127);
    CHECK(st_read_f32(&f, st_find(&f, "i"), o, 1, &e) == 0 && o[0] == -128.0f);
    CHECK(st_read_i32(&f, st_find(&f, "b"), oi, &e) == 0 && oi[0] == 1 && oi[1] == 0);
    CHECK(st_read_i32(&f, st_find(&f, "d"), oi, &e) == -1 && strstr(e.msg, "expected an integer dtype"));
    st_close(&f);
    CHECK(st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_I64) == 8 && !strcmp(st_dtype_name(ST_BOOL), "BOOL"));
    StDtype dt;
    CHECK(st_dtype_from_name("F16", &dt) == 0 && dt == ST_F16 && st_dtype_from_name("F8_E4M3", &dt) == -1);
}

static void test_corrupt_files(void) {
    float x[4] = {1, 2, 3, 4};
    const char *ok = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    const char *m;
    CHECK(open_error("ok.st", ok, x, 16, 0) == NULL);

    m = open_error("hlen-big.st", ok, x, 16, 1000);
    CHECK(m && strstr(m, "beyond the file size") && strstr(m, "hlen-big.st"));
    m = open_error("hlen-huge.st", ok, x, 16, 200000000ull);
    CHECK(m && strstr(m, "100 MB"));
    m = open_error("hlen-max.st", ok, x, 16, UINT64_MAX);
    CHECK(m && strstr(m, "100 MB"));
    m = open_error("short.st", "", NULL, 0, 0);  // only the 8 length bytes, header empty
    CHECK(m && strstr(m, "valid JSON"));
    {
        Error e;
        StFile f;
        const char *p = tmp_path("tiny.st");
        CHECK(file_write_atomic(p, "abc", 3, &e) == 0);
        CHECK(st_open(p, &f, &e) == -1 && strstr(e.msg, "too short"));
        CHECK(st_open(tmp_path("missing.st"), &f, &e) == -1 && strstr(e.msg, "cannot open"));
        CHECK(st_open(tmp_root, &f, &e) == -1 && strstr(e.msg, "not a regular file"));
    }
    m = open_error("json.st", "{\"x\":{\"dtype\":\"F32\",", x, 16, 0);
    CHECK(m && strstr(m, "not valid JSON") && strstr(m, "json.st"));
    m = open_error("array.st", "[1,2]", x, 16, 0);
    CHECK(m && strstr(m, "not a JSON object"));
    m = open_error("dtype.st", "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", x, 16, 0);
    CHECK(m && strstr(m, "unsupported dtype 'F8_E4M3'") && strstr(m, "'x'"));
    m = open_error("nbytes.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", x, 16, 0);
    CHECK(m && strstr(m, "tensor 'w'") && strstr(m, "cover 16 bytes") && strstr(m, "3 elements"));
    m = open_error("outside.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", x, 16, 0);
    CHECK(m && strstr(m, "tensor 'w'") && strstr(m, "beyond the data area"));
    m = open_error("overlap.st",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                   x, 16, 0);
    CHECK(m && strstr(m, "overlapping") && strstr(m, "'a'") && strstr(m, "'b'"));
    m = open_error("same.st",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                   x, 16, 0);
    CHECK(m && strstr(m, "overlapping"));
    // An empty tensor sorted between two overlapping ones must not hide the overlap.
    m = open_error("overlap-empty.st",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                   "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                   x, 16, 0);
    CHECK(m && strstr(m, "overlapping") && strstr(m, "'a'") && strstr(m, "'b'"));
    // Nested inside a longer range, after a shorter one.
    m = open_error("overlap-nested.st",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   x, 16, 0);
    CHECK(m && strstr(m, "overlapping"));
    m = open_error("trailing.st",
                   "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} xx", x, 16, 0);
    CHECK(m && strstr(m, "not valid JSON"));
    CHECK(open_error("padded.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}     ",
                     x, 16, 0) == NULL);
    m = open_error("dup.st",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                   x, 16, 0);
    CHECK(m && strstr(m, "'a' appears twice"));
    m = open_error("trunc.st", ok, x, 12, 0);  // data area 4 bytes short
    CHECK(m && strstr(m, "truncated"));
    m = open_error("endbegin.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", x, 16, 0);
    CHECK(m && strstr(m, "end before begin"));
    m = open_error("negshape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", x, 16, 0);
    CHECK(m && strstr(m, "non-negative integers"));
    m = open_error("fracoff.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0.5,16]}}", x, 16, 0);
    CHECK(m && strstr(m, "data_offsets"));
    m = open_error("nooff.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", x, 16, 0);
    CHECK(m && strstr(m, "data_offsets must be [begin, end]"));
    m = open_error("nodtype.st", "{\"w\":{\"shape\":[4],\"data_offsets\":[0,16]}}", x, 16, 0);
    CHECK(m && strstr(m, "dtype"));
    m = open_error("extrakey.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"x\":1}}", x, 16,
                   0);
    CHECK(m && strstr(m, "unknown header key 'x'"));
    m = open_error("ndim.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}", x,
                   16, 0);
    CHECK(m && strstr(m, "9 dimensions"));
    m = open_error("overflow.st",
                   "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}",
                   x, 16, 0);
    CHECK(m && strstr(m, "overflow"));
    m = open_error("meta.st", "{\"__metadata__\":[1],\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                   x, 16, 0);
    CHECK(m && strstr(m, "__metadata__"));
    char longname[400];
    snprintf(longname, sizeof longname, "{\"%0200d\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 7);
    m = open_error("longname.st", longname, x, 16, 0);
    CHECK(m && strstr(m, "longer than"));
    // A NUL inside the header.
    char nul_hdr[80];
    size_t hl = strlen(ok);
    memcpy(nul_hdr, ok, hl + 1);
    nul_hdr[5] = 0;
    {
        const char *p = tmp_path("nul.st");
        unsigned char buf[128];
        for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        memcpy(buf + 8, nul_hdr, hl);
        memcpy(buf + 8 + hl, x, 16);
        Error e;
        StFile f;
        CHECK(file_write_atomic(p, buf, 8 + hl + 16, &e) == 0);
        CHECK(st_open(p, &f, &e) == -1 && strstr(e.msg, "NUL"));
    }
}

// Deterministic mutation fuzzing: random byte changes and truncations of a valid file must give
// either a valid file or an error, never a crash (run under make asan to catch overreads).
static void test_mutations_never_crash(void) {
    float a[64];
    for (int i = 0; i < 64; i++) a[i] = (float)i;
    int64_t s2[2] = {8, 8}, s1[1] = {16};
    StWriter *w = st_writer_new();
    Error e;
    CHECK(st_writer_add_f32(w, "m", ST_BF16, 2, s2, a, &e) == 0);
    CHECK(st_writer_add_f32(w, "v", ST_F32, 1, s1, a, &e) == 0);
    const char *src = tmp_path("fuzz-src.st");
    CHECK(st_writer_save(w, src, &e) == 0);
    st_writer_free(w);
    size_t n;
    char *orig = file_read_all(src, &n, &e);
    CHECK(orig);
    char *buf = malloc(n);
    Rng rng;
    rng_seed(&rng, 7);
    int opened = 0, failed = 0;
    const char *dst = tmp_path("fuzz.st");
    for (int it = 0; it < 600; it++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int kind = (int)rng_below(&rng, 3);
        if (kind == 0) {
            int flips = 1 + (int)rng_below(&rng, 4);
            for (int k = 0; k < flips; k++) buf[rng_below(&rng, n)] = (char)rng_below(&rng, 256);
        } else if (kind == 1) {
            len = (size_t)rng_below(&rng, n);
        } else {
            // Digit changes inside the header hit offsets and shapes.
            size_t hl = (unsigned char)buf[0] | ((size_t)(unsigned char)buf[1] << 8);
            for (int k = 0; k < 3; k++) {
                size_t p = 8 + rng_below(&rng, hl);
                if (buf[p] >= '0' && buf[p] <= '9') buf[p] = (char)('0' + rng_below(&rng, 10));
            }
        }
        CHECK(file_write_atomic(dst, buf, len, &e) == 0);
        StFile f;
        if (st_open(dst, &f, &e) == 0) {
            opened++;
            float out[64];
            int32_t oi[64];
            for (int i = 0; i < f.num_tensors; i++) {
                if (f.tensors[i].numel > 64) continue;
                st_read_f32(&f, &f.tensors[i], out, 1, &e);
                st_read_i32(&f, &f.tensors[i], oi, &e);
            }
            st_close(&f);
        } else {
            CHECK(e.msg[0] && strstr(e.msg, "fuzz.st"));
            failed++;
        }
    }
    CHECK(opened > 0 && failed > 0);
    free(buf);
    free(orig);
}

static void test_bf16_rounding(void) {
    CHECK(st_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(st_f32_to_bf16(-2.0f) == 0xC000);
    CHECK(st_f32_to_bf16(float_of(0x3F808000u)) == 0x3F80);  // tie, even below: stays
    CHECK(st_f32_to_bf16(float_of(0x3F818000u)) == 0x3F82);  // tie, odd below: rounds up to even
    CHECK(st_f32_to_bf16(float_of(0x3F808001u)) == 0x3F81);  // just above the tie
    CHECK(st_f32_to_bf16(float_of(0x3F807FFFu)) == 0x3F80);  // just below the tie
    CHECK(st_f32_to_bf16(float_of(0xBF818000u)) == 0xBF82);  // sign symmetric
    CHECK(st_f32_to_bf16(float_of(0x7F7FFFFFu)) == 0x7F80);  // FLT_MAX rounds to Inf, as in torch
    CHECK(st_f32_to_bf16(INFINITY) == 0x7F80 && st_f32_to_bf16(-INFINITY) == 0xFF80);
    CHECK(st_f32_to_bf16(-0.0f) == 0x8000 && st_f32_to_bf16(0.0f) == 0x0000);
    CHECK(st_f32_to_bf16(float_of(0x00000001u)) == 0x0000);  // smallest subnormal rounds to 0
    CHECK(st_f32_to_bf16(float_of(0x00018000u)) == 0x0002);  // subnormal tie to even
    // NaN stays NaN, including payloads that truncation would turn into Inf.
    uint16_t nans[] = {st_f32_to_bf16(NAN), st_f32_to_bf16(float_of(0x7F800001u)), st_f32_to_bf16(float_of(0xFF800001u)),
                       st_f32_to_bf16(float_of(0x7FFFFFFFu))};
    for (int i = 0; i < 4; i++) CHECK((nans[i] & 0x7F80) == 0x7F80 && (nans[i] & 0x7F) != 0);
    CHECK(nans[2] & 0x8000);
    // Every bf16 value survives bf16 -> f32 -> bf16.
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_bf16_to_f32((uint16_t)h);
        if (isnan(f)) CHECK(isnan(st_bf16_to_f32(st_f32_to_bf16(f))));
        else CHECK_MSG(st_f32_to_bf16(f) == h, "bf16 %04x", h);
    }
}

static void test_f16_matches_compiler(void) {
    // Every half: decode equals the compiler's, and re-encodes to itself.
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t hh = (uint16_t)h;
        _Float16 c;
        memcpy(&c, &hh, 2);
        float ours = st_f16_to_f32(hh), ref = (float)c;
        if (isnan(ref)) {
            CHECK(isnan(ours) && isnan(st_f16_to_f32(st_f32_to_f16(ours))));
            continue;
        }
        CHECK_MSG(bits_of(ours) == bits_of(ref), "f16 %04x decodes to %.9g, expected %.9g", h, ours, ref);
        CHECK_MSG(st_f32_to_f16(ours) == hh, "f16 %04x does not re-encode", h);
    }
    // Random fp32 bit patterns over the whole range, plus the half range densely: encode equals
    // the compiler's round-to-nearest-even conversion.
    Rng rng;
    rng_seed(&rng, 11);
    for (int i = 0; i < 400000; i++) {
        uint32_t u = rng_u32(&rng);
        if (i & 1) u = (u & 0x80000000u) | (0x33000000u + (u % (0x47800000u - 0x33000000u)));
        float f = float_of(u);
        _Float16 c = (_Float16)f;
        uint16_t ref;
        memcpy(&ref, &c, 2);
        uint16_t ours = st_f32_to_f16(f);
        if (isnan(f)) CHECK((ours & 0x7C00) == 0x7C00 && (ours & 0x3FF));
        else CHECK_MSG(ours == ref, "f32 %08x -> f16 %04x, compiler %04x", u, ours, ref);
    }
    CHECK(st_f32_to_f16(65519.99f) == 0x7BFF && st_f32_to_f16(65520.0f) == 0x7C00);
    CHECK(st_f32_to_f16(float_of(0x33000000u)) == 0 && st_f32_to_f16(float_of(0x33000001u)) == 1);
}

static void test_non_finite_detection(void) {
    float a[4] = {1, NAN, 3, 4}, b[3] = {1, 2, INFINITY};
    int64_t s4[1] = {4}, s3[1] = {3};
    StWriter *w = st_writer_new();
    Error e;
    CHECK(st_writer_add_f32(w, "has.nan", ST_F32, 1, s4, a, &e) == 0);
    CHECK(st_writer_add_f32(w, "has.inf.bf16", ST_BF16, 1, s3, b, &e) == 0);
    CHECK(st_writer_add_f32(w, "nan.f16", ST_F16, 1, s4, a, &e) == 0);
    const char *path = tmp_path("nonfinite.st");
    CHECK(st_writer_save(w, path, &e) == 0);
    st_writer_free(w);
    StFile f;
    CHECK(st_open(path, &f, &e) == 0);
    float out[4];
    CHECK(st_read_f32(&f, st_find(&f, "has.nan"), out, 1, &e) == -1);
    CHECK(strstr(e.msg, "nonfinite.st") && strstr(e.msg, "'has.nan'") && strstr(e.msg, "NaN") &&
          strstr(e.msg, "element 1"));
    CHECK(st_read_f32(&f, st_find(&f, "has.inf.bf16"), out, 1, &e) == -1 && strstr(e.msg, "Inf"));
    CHECK(st_read_f32(&f, st_find(&f, "nan.f16"), out, 1, &e) == -1 && strstr(e.msg, "NaN"));
    CHECK(st_read_f32(&f, st_find(&f, "has.nan"), out, 0, &e) == 0 && isnan(out[1]));
    st_close(&f);
    // A larger tensor with two offenders: the message counts them and names the first.
    enum { BIG = 300000 };
    float *big = malloc(sizeof(float) * BIG), *back = malloc(sizeof(float) * BIG);
    for (int i = 0; i < BIG; i++) big[i] = (float)(i % 1000) * 0.001f - 0.5f;
    big[299990] = NAN;
    big[299995] = INFINITY;
    int64_t sb[1] = {BIG};
    w = st_writer_new();
    CHECK(st_writer_add_f32(w, "big", ST_BF16, 1, sb, big, &e) == 0);
    path = tmp_path("big.st");
    CHECK(st_writer_save(w, path, &e) == 0);
    st_writer_free(w);
    CHECK(st_open(path, &f, &e) == 0);
    CHECK(st_read_f32(&f, st_find(&f, "big"), back, 1, &e) == -1);
    CHECK(strstr(e.msg, "has 2 non-finite values") && strstr(e.msg, "(NaN) at element 299990"));
    CHECK(st_read_f32(&f, st_find(&f, "big"), back, 0, &e) == 0);
    for (int i = 0; i < BIG; i++)
        if (i != 299990) CHECK(back[i] == st_bf16_to_f32(st_f32_to_bf16(big[i])));
    st_close(&f);
    free(big);
    free(back);
    // F64 beyond the fp32 range.
    double d[2] = {1.0, 1e300};
    const char *p = raw_file("f64big.st", "{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", d, 16, 0);
    CHECK(st_open(p, &f, &e) == 0);
    CHECK(st_read_f32(&f, st_find(&f, "d"), out, 1, &e) == -1 && strstr(e.msg, "fp32 range"));
    st_close(&f);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/pionrl-st-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_writer_round_trip);
    RUN(test_read_other_dtypes);
    RUN(test_corrupt_files);
    RUN(test_mutations_never_crash);
    RUN(test_bf16_rounding);
    RUN(test_f16_matches_compiler);
    RUN(test_non_finite_detection);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_summary("test_safetensors");
}
