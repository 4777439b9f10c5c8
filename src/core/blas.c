#include "core/blas.h"

#include <cblas.h>
#include <stddef.h>

#include "core/gemm_bf16.h"

void sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
           float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

void gemm_dt(int bf16, int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
             int ldb, float beta, float *C, int ldc) {
    // op(B) is k x n, so the n x k operand gemm_bf16 wants is B itself when tb, else B read transposed
    if (bf16 && k > 0 && (beta == 0.0f || beta == 1.0f) &&
        gemm_bf16_nt(C, ldc, alpha, beta == 1.0f, A, lda, ta, m, B, ldb, !tb, n, k) == 0)
        return;
    sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ssyrk_full(int trans, int n, int k, float alpha, const float *A, int lda, float *C, int ldc) {
    cblas_ssyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, n, k, alpha, A, lda, 0.0f, C, ldc);
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) C[(size_t)i * ldc + j] = C[(size_t)j * ldc + i];
}

void blas_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}

int blas_get_threads(void) { return openblas_get_num_threads(); }
