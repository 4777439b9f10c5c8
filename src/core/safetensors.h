// safetensors files: read (memory-mapped, validated) and write (atomic). Format: 8-byte
// little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {...}}, then the data; offsets are relative to the end of the header.
#ifndef PIONRL_SAFETENSORS_H
#define PIONRL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64, ST_F64, ST_U8, ST_I8, ST_BOOL } StDtype;

typedef struct {
    char name[160];
    StDtype dtype;
    int ndim;
    int64_t shape[8];
    size_t numel;
    const void *data;  // points into the mapping
    size_t nbytes;
} StTensor;

typedef struct {
    char path[1024];
    void *map;          // whole file, read-only
    size_t map_size;
    int num_tensors;
    StTensor *tensors;  // sorted as in the header
} StFile;

// Opens and validates a file: header size within the file and <= 100 MB, valid JSON, known dtypes,
// offsets inside the data area, nbytes == numel * dtype size, no overlapping ranges.
int st_open(const char *path, StFile *f, Error *err);
void st_close(StFile *f);
const StTensor *st_find(const StFile *f, const char *name);
size_t st_dtype_size(StDtype dt);
const char *st_dtype_name(StDtype dt);
// Parses a header dtype name ("F32", "BF16", ...); -1 when unknown.
int st_dtype_from_name(const char *name, StDtype *out);
// Scalar conversions. fp32 -> bf16/f16 round to nearest, ties to even; NaN stays NaN (quiet),
// values beyond the half range become Inf (as torch does).
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_bf16(float f);
float st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
// Converts a floating tensor (F32/F16/BF16/F64) to fp32 into out (numel floats); integer tensors
// are converted by value too. Fails on NaN/Inf when check_finite, naming file and tensor.
int st_read_f32(const StFile *f, const StTensor *t, float *out, int check_finite, Error *err);
// Converts an integer tensor (I32/I64/U8/I8/BOOL) to int32 into out.
int st_read_i32(const StFile *f, const StTensor *t, int32_t *out, Error *err);

// Writing: collect tensors (data is copied or referenced until st_writer_save), then save
// atomically (temp file + fsync + rename). F32 data may be stored as BF16/F16 (round to nearest even).
typedef struct StWriter StWriter;
StWriter *st_writer_new(void);
// Adds an fp32 tensor stored as `dtype` (ST_F32, ST_BF16 or ST_F16). data is referenced, not copied:
// it must stay valid until st_writer_save returns.
int st_writer_add_f32(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                      const float *data, Error *err);
// Adds an int32 tensor stored as I32 (referenced, as above).
int st_writer_add_i32(StWriter *w, const char *name, int ndim, const int64_t *shape, const int32_t *data,
                      Error *err);
// Optional string metadata ("format": "pt" is always written).
int st_writer_set_metadata(StWriter *w, const char *key, const char *value, Error *err);
int st_writer_save(StWriter *w, const char *path, Error *err);
void st_writer_free(StWriter *w);

#endif
