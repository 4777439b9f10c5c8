// The spectrum-preserving optimizer step (spectral.h, sp_update) on the GPU: the same arithmetic on device
// arrays. Generators from fp32 cuBLAS products, moments in fp32, the rotation in fp64 (cuBLAS DGEMM; the Cayley
// map through cuSOLVER's LU solve, as LAPACK's dgesv on the CPU). Implementation:
// src/optim/cuda/spectral_cuda.cu (make CUDA=1); tests: tests/test_cuda_optim.c against the CPU optimizer.
#ifndef PIONRL_SPECTRAL_CUDA_H
#define PIONRL_SPECTRAL_CUDA_H

#include "core/error.h"
#include "optim/spectral.h"

#ifdef __cplusplus
extern "C" {
#endif

// Workspace (cuBLAS and cuSOLVER handles, fp64 buffers) for matrices of up to max_rows x max_cols.
typedef struct CudaSpectral CudaSpectral;
int cuda_sp_create(int max_rows, int max_cols, CudaSpectral **out, Error *err);
void cuda_sp_free(CudaSpectral *s);

// sp_update on device arrays: W (rows x cols) rotated in place from its gradient G; m_out, v_out rows^2 and m_in,
// v_in cols^2 floats of state; step is 1-based. The sum of the squared changes of W is added to *d_dsum (a device
// double). Queued on the stream, nothing waits for the device.
int cuda_sp_update(CudaSpectral *s, float *W, const float *G, float *m_out, float *v_out, float *m_in, float *v_in,
                   int rows, int cols, const SpConfig *c, float lr, long step, double *d_dsum, Error *err);

#ifdef __cplusplus
}
#endif

#endif
