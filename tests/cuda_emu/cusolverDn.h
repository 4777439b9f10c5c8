// The cuSOLVER subset pionrl uses (dense LU: getrf, getrs), for the CUDA emulator (see cuda_runtime.h): LAPACK's
// dgetrf/dgetrs from the CPU BLAS library, column-major with 1-based pivots as cuSOLVER's.
#ifndef PIONRL_CUDA_EMU_CUSOLVER_H
#define PIONRL_CUDA_EMU_CUSOLVER_H

#include "cublas_v2.h"
#include "cuda_runtime.h"

typedef enum {
    CUSOLVER_STATUS_SUCCESS = 0,
    CUSOLVER_STATUS_NOT_INITIALIZED = 1,
    CUSOLVER_STATUS_INVALID_VALUE = 3,
} cusolverStatus_t;
typedef struct EmuSolver *cusolverDnHandle_t;

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle);
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle);
cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t stream);
cusolverStatus_t cusolverDnDgetrf_bufferSize(cusolverDnHandle_t handle, int m, int n, double *A, int lda, int *lwork);
// info (device int) is 0, or i > 0 when U(i, i) is exactly zero, as LAPACK reports it.
cusolverStatus_t cusolverDnDgetrf(cusolverDnHandle_t handle, int m, int n, double *A, int lda, double *work, int *ipiv,
                                  int *info);
cusolverStatus_t cusolverDnDgetrs(cusolverDnHandle_t handle, cublasOperation_t trans, int n, int nrhs, const double *A,
                                  int lda, const int *ipiv, double *B, int ldb, int *info);

#endif
