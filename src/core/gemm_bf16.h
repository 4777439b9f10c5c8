// bfloat16 matrix products with fp32 accumulation: C[m,n] (+)= A[m,k] B[n,k]^T, the product of a
// linear layer (y = x W^T) and, with the operands transposed while packing, of its backward.
//
// Both operands are rounded to bfloat16 (nearest, ties to even) and packed into pairs along k, the
// layout of the AVX512-BF16 dot product VDPBF16PS (two bf16 products summed into one fp32 lane).
// On a CPU without AVX512-BF16 a portable loop computes the same sums of exact bf16 products in
// fp32, so results agree across machines to fp32 rounding. B (a weight) can be packed once and
// reused across calls, which is what makes small-batch decode cheap: no per-call repacking and half
// the bytes of the fp32 weight.
#ifndef PIONRL_GEMM_BF16_H
#define PIONRL_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

// B operand: n rows of k, packed as [ceil(n/32) panels][ceil(k/2) pairs][32 rows] of bf16 pairs.
typedef struct {
    int n, k;
    uint32_t *data;
} Bf16Packed;

// Packs B (n x k) from src: trans = 0 reads src as n x k (row stride ld), trans = 1 as k x n.
int bf16_pack_b(Bf16Packed *p, const float *src, int ld, int trans, int n, int k, Error *err);
void bf16_packed_free(Bf16Packed *p);
size_t bf16_packed_bytes(int n, int k);

// C (m x n, row stride ldc) = alpha A B^T, or C += alpha A B^T when accumulate. A is m x k
// (trans_a = 0, row stride lda) or stored k x m (trans_a = 1). Returns nonzero only when out of
// memory (C is then untouched).
int gemm_bf16(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
              const Bf16Packed *B);

// Same with B packed inside the call (B is n x k, or stored k x n when trans_b).
int gemm_bf16_nt(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
                 const float *B, int ldb, int trans_b, int n, int k);

// gemm_bf16 through the portable loop whatever the CPU (tests compare it with the native kernel).
int gemm_bf16_portable(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
                       const Bf16Packed *B);

// 1 when gemm_bf16 runs the AVX512-BF16 kernel on this CPU.
int bf16_native(void);

#endif
