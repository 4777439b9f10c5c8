// Row-major SGEMM through CBLAS (OpenBLAS): C = alpha * op(A) op(B) + beta * C, where op(A) is
// m x k and op(B) is k x n. ta/tb nonzero mean transpose. Leading dimensions are row strides.
#ifndef PIONRL_BLAS_H
#define PIONRL_BLAS_H

void sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
           float beta, float *C, int ldc);
// Threads OpenBLAS may use (0 = library default).
void blas_set_threads(int n);

#endif
