#include "core/blas.h"

#include <cblas.h>
#include <stddef.h>

void sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
           float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A,
                lda, B, ldb, beta, C, ldc);
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
