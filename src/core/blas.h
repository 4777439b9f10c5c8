// Row-major SGEMM through CBLAS (OpenBLAS): C = alpha * op(A) op(B) + beta * C, where op(A) is
// m x k and op(B) is k x n. ta/tb nonzero mean transpose. Leading dimensions are row strides.
#ifndef PIONRL_BLAS_H
#define PIONRL_BLAS_H

void sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
           float beta, float *C, int ldc);
// sgemm, or with bf16 nonzero the same product from bfloat16-rounded inputs with fp32
// accumulation (core/gemm_bf16.h; beta must then be 0 or 1). Should the bf16 path's packing
// buffers not be allocatable, it computes the product with sgemm instead (fp32 inputs: only more
// precise).
void gemm_dt(int bf16, int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
             int ldb, float beta, float *C, int ldc);
// C (n x n) = alpha * A A^T for A n x k (trans = 0), or alpha * A^T A for A k x n (trans = 1).
// SYRK computes the upper triangle (half a GEMM's flops); it is then mirrored so C is a plain full
// matrix.
void ssyrk_full(int trans, int n, int k, float alpha, const float *A, int lda, float *C, int ldc);
// Threads OpenBLAS may use (0 = library default), and the current setting.
void blas_set_threads(int n);
int blas_get_threads(void);

#endif
