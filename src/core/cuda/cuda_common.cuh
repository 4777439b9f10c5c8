// Helpers shared by the .cu files: launch geometry, error checks and block reductions.
#ifndef PIONRL_CUDA_COMMON_CUH
#define PIONRL_CUDA_COMMON_CUH

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

// Sum over the block (blockDim.x == CUDA_THREADS); the result is valid in every thread, and the shared buffer is free
// again on return.
__device__ static inline double cuda_block_sum(double v) {
    __shared__ double sh[CUDA_THREADS];
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = CUDA_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

__device__ static inline float cuda_block_max(float v) {
    __shared__ float sh[CUDA_THREADS];
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = CUDA_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] = fmaxf(sh[t], sh[t + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

#endif
