// Helpers shared by the .cu files: launch geometry, error checks (launches, cuBLAS) and block reductions.
#ifndef PIONRL_CUDA_COMMON_CUH
#define PIONRL_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>

#include "core/error.h"

enum { CUDA_THREADS = 256, CUDA_MAX_GRID = 4096 };

// Blocks for a grid-stride loop over n elements.
static inline unsigned cuda_grid_for(size_t n) {
    size_t g = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    return (unsigned)(g < 1 ? 1 : g > (size_t)CUDA_MAX_GRID ? (size_t)CUDA_MAX_GRID : g);
}

// A launch error (bad configuration) shows up at once; errors inside a kernel surface at the next synchronising call.
static inline int cuda_launch_check(const char *what, Error *err) {
    cudaError_t rc = cudaGetLastError();
    return rc == cudaSuccess ? 0 : error_set(err, "cuda: %s: %s", what, cudaGetErrorString(rc));
}

// A cuBLAS call's status as a return code: 0, or -1 with err naming the call.
static inline int cuda_blas_check(cublasStatus_t rc, const char *what, Error *err) {
    return rc == CUBLAS_STATUS_SUCCESS ? 0 : error_set(err, "cublas: %s failed (status %d)", what, (int)rc);
}

// A launch with more than the default 48 KB of dynamic shared memory needs the kernel's opt-in first (sm_80 allows up
// to 163 KB a block, sm_90 227 KB); beyond the device's limit the error names the kernel and the size.
template <typename F>
static inline int cuda_opt_in_shared(F *kernel, size_t bytes, const char *what, Error *err) {
    if (bytes <= 48 * 1024) return 0;
    cudaError_t rc = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    return rc == cudaSuccess
               ? 0
               : error_set(err, "cuda: %s: %zu bytes of shared memory: %s", what, bytes, cudaGetErrorString(rc));
}

// Reduces v over the block (blockDim.x == CUDA_THREADS) with op; the result is valid in every thread, and the shared
// buffer is free again on return.
template <typename T, typename Op>
__device__ static inline T cuda_block_reduce(T v, Op op) {
    __shared__ T sh[CUDA_THREADS];
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = CUDA_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] = op(sh[t], sh[t + s]);
        __syncthreads();
    }
    T r = sh[0];
    __syncthreads();
    return r;
}

struct CudaSum {
    template <typename T>
    __device__ T operator()(T a, T b) const {
        return a + b;
    }
};
struct CudaMax {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
    __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};
struct CudaMin {
    __device__ int operator()(int a, int b) const { return a < b ? a : b; }
};

__device__ static inline double cuda_block_sum(double v) { return cuda_block_reduce(v, CudaSum()); }
__device__ static inline float cuda_block_max(float v) { return cuda_block_reduce(v, CudaMax()); }

#endif
