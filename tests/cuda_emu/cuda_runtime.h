// The part of the CUDA runtime that pionrl's .cu files use, emulated on the CPU so the CUDA tests run (slowly) on a
// machine without a GPU: `make CUDA=emu test`. Device memory is host memory, a kernel launch runs every block in turn
// and every thread of a block as a coroutine that yields at __syncthreads (so barriers and shared memory behave as on
// the device), and cuBLAS calls go to the CPU BLAS (cublas_v2.h beside this file). Build: C++17, .cu files rewritten
// by tests/cuda_emu/translate.pl (kernel<<<grid, block, shared>>>(args) -> a launch call).
//
// What it checks: results against the CPU reference, launch limits (threads per block, grid size, dynamic shared
// memory above 48 KB without cudaFuncSetAttribute), barrier divergence (a thread that skips a __syncthreads its
// block's first thread reached), reads of memory never written (cudaMalloc fills with NaN bytes), and with
// AddressSanitizer out-of-bounds accesses in kernels and shared memory; missing barriers, by running the kernel tests
// in index order and again in reverse (PIONRL_EMU_ORDER=reverse). What it cannot: races inside one barrier interval
// that no whole-thread order exposes, host code touching device pointers (both are host memory), speed.
#ifndef PIONRL_CUDA_EMU_RUNTIME_H
#define PIONRL_CUDA_EMU_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n) alignas(n)
// One block runs at a time, so a function-local static is exactly one block's shared array.
#define __shared__ static

typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureWrongThread = 908,
} cudaError_t;

typedef enum {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
} cudaMemcpyKind;

typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;

typedef struct CUstream_st *cudaStream_t;
#define cudaStreamPerThread ((cudaStream_t)0x2)
// Stream capture into a graph, replayed by cudaGraphLaunch: while a capture is open, launches, cuBLAS calls and the
// async copies are recorded instead of run; synchronous copies, memsets and cudaMalloc are refused (as the driver
// refuses them in thread-local mode) and invalidate the capture.
typedef struct EmuGraph *cudaGraph_t;
typedef struct EmuGraph *cudaGraphExec_t;
typedef enum {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
} cudaStreamCaptureMode;
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
// Each recorded launch, cuBLAS call or copy is one node (nodes must be NULL: only the count is emulated).
typedef struct EmuGraphNode *cudaGraphNode_t;
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *num_nodes);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
// 1 while a capture is open: the work is appended to it by emu_capture_push.
int emu_capturing(void);
void emu_capture_push(std::function<void()> work);

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(16) float4 {
    float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

typedef struct {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    size_t sharedMemPerBlockOptin;
    int major, minor;
    int multiProcessorCount;
    int maxThreadsPerBlock;
} cudaDeviceProp;

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
enum { warpSize = 32 };

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemset(void *ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream = 0);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t rc);
cudaError_t emu_func_set_attribute(const void *func, cudaFuncAttribute attr, int value);
template <typename F>
cudaError_t cudaFuncSetAttribute(F *func, cudaFuncAttribute attr, int value) {
    return emu_func_set_attribute((const void *)func, attr, value);
}

void __syncthreads(void);
// The base of the block's dynamic shared memory (extern __shared__ arrays; translate.pl rewrites their declarations).
void *emu_dynamic_shared(void);

// Threads run one at a time, so atomics are plain read-modify-writes.
template <typename T>
inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T>
inline T atomicMax(T *p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;  // never contracted into a neighbouring add
    return r;
}
inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// One launch: checks the configuration like the driver does, then runs body() once per thread of every block with
// blockIdx/threadIdx set. `func` identifies the kernel for the shared-memory attribute.
void emu_launch(const void *func, dim3 grid, dim3 block, size_t shared, void (*body)(void *), void *ctx);

struct EmuLaunch {
    dim3 grid, block;
    size_t shared;
    EmuLaunch(dim3 g, dim3 b, size_t s = 0, cudaStream_t stream = 0) : grid(g), block(b), shared(s) { (void)stream; }
    template <typename Body>
    void run(const void *kernel, Body body) {
        if (emu_capturing()) {  // recorded with its arguments (the lambda holds copies), run at each graph launch
            dim3 g = grid, b = block;
            size_t sh = shared;
            emu_capture_push([=]() {
                Body copy = body;
                emu_launch(kernel, g, b, sh, [](void *c) { (*(Body *)c)(); }, &copy);
            });
            return;
        }
        emu_launch(kernel, grid, block, shared, [](void *c) { (*(Body *)c)(); }, &body);
    }
};

#endif
