// The two LAPACK routines optim uses, declared by hand: OpenBLAS ships LAPACK inside libopenblas,
// but Debian does not always install lapack.h next to cblas.h. Fortran calling convention.
#ifndef PIONRL_LAPACK_MIN_H
#define PIONRL_LAPACK_MIN_H

// Solves A X = B (A n x n, B n x nrhs, both column-major, overwritten); info != 0 on failure.
void dgesv_(const int *n, const int *nrhs, double *a, const int *lda, int *ipiv, double *b, const int *ldb, int *info);
// Eigenvalues (jobz "N") of a symmetric column-major matrix, ascending into w.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info);

#endif
