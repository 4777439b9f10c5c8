// bfloat16 <-> fp32 scalar conversions, inline so that the loops converting many values (GEMM
// operand packing, the KV cache, safetensors I/O) vectorise. fp32 -> bf16 rounds to nearest, ties
// to even; a NaN stays a (quiet) NaN.
#ifndef PIONRL_BF16_H
#define PIONRL_BF16_H

#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    // NaN: truncation could clear every mantissa bit left and turn it into Inf; force a quiet bit.
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u);
    // Round to nearest, ties to even: add 0x7FFF plus the lowest kept bit, then truncate.
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#endif
