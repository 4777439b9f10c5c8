// The CUDA emulator's runtime (see cuda_runtime.h): device memory, launches, the block scheduler and cuBLAS on the CPU
// BLAS. Kernel threads are ucontext coroutines; a block runs its threads round-robin, each up to its next
// __syncthreads, so every thread reaches barrier k before any passes it.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_runtime.h"
#include "cusolverDn.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

enum {
    EMU_MAX_THREADS = 1024,
    EMU_STACK_BYTES = 256 * 1024,
    EMU_SHARED_DEFAULT = 48 * 1024,
    EMU_SHARED_OPTIN = 227 * 1024,  // an H100's per-block maximum
};

static cudaError_t last_error = cudaSuccess;
static std::map<const void *, int> max_dynamic_shared;  // cudaFuncSetAttribute per kernel

static cudaError_t fail(cudaError_t rc) {
    last_error = rc;
    return rc;
}

struct EmuGraph {
    std::vector<std::function<void()>> work;
};
static EmuGraph *capture;          // the open capture, or NULL
static bool capture_invalidated;  // a refused call happened inside it

int emu_capturing(void) { return capture != NULL; }
void emu_capture_push(std::function<void()> work) { capture->work.push_back(std::move(work)); }

// A synchronous call made while capturing: the driver refuses it and the capture can only end in failure.
static bool refused_in_capture(void) {
    if (!capture) return false;
    capture_invalidated = true;
    fail(cudaErrorStreamCaptureUnsupported);
    return true;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    if (capture || stream == 0) return fail(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot capture
    capture = new EmuGraph;
    capture_invalidated = false;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    *graph = NULL;
    if (!capture) return fail(cudaErrorInvalidValue);
    EmuGraph *g = capture;
    capture = NULL;
    if (capture_invalidated) {
        delete g;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    if (!graph) return fail(cudaErrorInvalidValue);
    *exec = new EmuGraph(*graph);
    return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *num_nodes) {
    if (!graph || nodes || !num_nodes) return fail(cudaErrorInvalidValue);
    *num_nodes = graph->work.size();
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (!exec || capture) return fail(cudaErrorInvalidValue);
    for (auto &w : exec->work) w();
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) { return refused_in_capture() ? last_error : cudaSuccess; }

// A fault inside a kernel would be a sticky device error; here it stops the program with the reason, as
// compute-sanitizer does.
[[noreturn]] static void emu_abort(const char *what) {
    fprintf(stderr,
            "cuda emulator: %s (block %u,%u,%u thread %u,%u,%u)\n", what, blockIdx.x, blockIdx.y, blockIdx.z,
            threadIdx.x, threadIdx.y, threadIdx.z);
    abort();
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (device != 0) return fail(cudaErrorInvalidValue);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "CUDA emulator (CPU)");
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    prop->totalGlobalMem = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : (size_t)16 << 30;
    prop->sharedMemPerBlock = EMU_SHARED_DEFAULT;
    prop->sharedMemPerBlockOptin = EMU_SHARED_OPTIN;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    prop->maxThreadsPerBlock = EMU_MAX_THREADS;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidValue); }

// Live allocations and their sizes: cudaMemGetInfo reports the device's total less what is allocated, as a GPU does.
static std::map<const void *, size_t> live_allocations;
static size_t live_bytes;

// Fresh device memory reads as NaN (0xFF bytes) so a kernel that uses what nothing wrote shows up in the results.
cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    if (refused_in_capture()) return last_error;
    *ptr = malloc(bytes ? bytes : 1);
    if (!*ptr) return fail(cudaErrorMemoryAllocation);
    memset(*ptr, 0xff, bytes);
    live_allocations[*ptr] = bytes;
    live_bytes += bytes;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    auto it = live_allocations.find(ptr);
    if (it != live_allocations.end()) {
        live_bytes -= it->second;
        live_allocations.erase(it);
    }
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (refused_in_capture()) return last_error;
    if ((int)kind < 0 || (int)kind > 4) return fail(cudaErrorInvalidValue);
    if (bytes && (!dst || !src)) return fail(cudaErrorInvalidValue);
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
    if (capture) {
        capture->work.push_back([=]() { memmove(dst, src, bytes); });
        return cudaSuccess;
    }
    return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
    if (refused_in_capture()) return last_error;
    if (bytes && !ptr) return fail(cudaErrorInvalidValue);
    if (bytes) memset(ptr, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream) {
    if (capture) {
        capture->work.push_back([=]() { memset(ptr, value, bytes); });
        return cudaSuccess;
    }
    return cudaMemset(ptr, value, bytes);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    *total_bytes = prop.totalGlobalMem;
    *free_bytes = live_bytes < prop.totalGlobalMem ? prop.totalGlobalMem - live_bytes : 0;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return refused_in_capture() ? last_error : cudaSuccess; }

cudaError_t cudaGetLastError(void) {
    cudaError_t rc = last_error;
    last_error = cudaSuccess;
    return rc;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorString(cudaError_t rc) {
    switch (rc) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorInvalidDevicePointer: return "invalid device pointer";
        case cudaErrorLaunchFailure: return "unspecified launch failure";
        case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
        case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
        case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
    }
    return "unknown error";
}

cudaError_t emu_func_set_attribute(const void *func, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > EMU_SHARED_OPTIN)
        return fail(cudaErrorInvalidValue);
    max_dynamic_shared[func] = value;
    return cudaSuccess;
}

// ---- the block scheduler ----

// Switching coroutines: on x86-64 a few instructions that save the callee-saved registers on the old stack and pop
// them from the new one (ucontext's swapcontext makes a system call per switch, which tripled the tests' time, and
// under ASan made them slower still). Under AddressSanitizer each switch is announced to it (fiber_leave /
// fiber_enter) so it tracks the stack in use. Other processors keep ucontext.
#if defined(__x86_64__)
#define EMU_FAST_SWITCH 1
extern "C" void emu_switch(void **save_sp, void *next_sp);
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".type emu_switch, @function\n"
    "emu_switch:\n"
    "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
    "    ret\n"
    ".size emu_switch, .-emu_switch\n");
#else
#define EMU_FAST_SWITCH 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
static const void *scheduler_stack;  // the scheduler's stack, learnt by the first thread that starts
static size_t scheduler_stack_size;
// Before a switch: the stack about to run (fake = NULL when the fiber leaving ends for good).
static void fiber_leave(void **fake, const void *bottom, size_t size) { __sanitizer_start_switch_fiber(fake, bottom, size); }
// After a switch, on the new stack: old_bottom/old_size receive the stack that was left.
static void fiber_enter(void *fake, const void **old_bottom, size_t *old_size) {
    __sanitizer_finish_switch_fiber(fake, old_bottom, old_size);
}
// A finished thread never unwound its frames: their redzones would poison the next thread on that stack.
static void fiber_stack_fresh(void *bottom, size_t size) { __asan_unpoison_memory_region(bottom, size); }
#else
static const void *scheduler_stack;
static size_t scheduler_stack_size;
static void fiber_leave(void **fake, const void *bottom, size_t size) {}
static void fiber_enter(void *fake, const void **old_bottom, size_t *old_size) {}
static void fiber_stack_fresh(void *bottom, size_t size) {}
#endif

typedef struct {
#if EMU_FAST_SWITCH
    void *sp;
#else
    ucontext_t uc;
#endif
    int done;
} EmuThread;

#if EMU_FAST_SWITCH
static void *scheduler_sp;
#else
static ucontext_t scheduler;
#endif
static EmuThread *threads;      // one per thread of the block
static char *stacks;            // EMU_MAX_THREADS stacks, mapped once (pages appear as they are touched)
static int current = -1;        // the coroutine running, or -1 when threads run directly (no barrier seen)
static unsigned *warp_calls;    // per thread of the block: warp-collective (wmma) calls made
static void (*run_body)(void *);
static void *run_ctx;
static void *dynamic_shared;

void *emu_dynamic_shared(void) { return dynamic_shared; }

static void set_thread_index(unsigned t) {
    threadIdx.x = t % blockDim.x;
    threadIdx.y = t / blockDim.x % blockDim.y;
    threadIdx.z = t / (blockDim.x * blockDim.y);
}

static void yield_to_scheduler(void) {
#if EMU_FAST_SWITCH
    void *fake = NULL;
    fiber_leave(threads[current].done ? NULL : &fake, scheduler_stack, scheduler_stack_size);
    emu_switch(&threads[current].sp, scheduler_sp);
    fiber_enter(fake, NULL, NULL);
#else
    swapcontext(&threads[current].uc, &scheduler);
#endif
}

static void thread_entry(void) {
#if EMU_FAST_SWITCH
    fiber_enter(NULL, &scheduler_stack, &scheduler_stack_size);
#endif
    run_body(run_ctx);
    threads[current].done = 1;
#if EMU_FAST_SWITCH
    yield_to_scheduler();  // never resumed
    __builtin_unreachable();
#endif
    // ucontext: returning resumes the scheduler (uc_link)
}

static unsigned linear_thread(void) { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

void emu_warp_collective(void) { warp_calls[linear_thread()]++; }
int emu_lane(void) { return (int)(linear_thread() % warpSize); }
void emu_fault(const char *what) { emu_abort(what); }

// A warp-collective call that some lanes of a warp skipped would hang or compute garbage on the device.
static void check_warp_calls(int nthreads) {
    for (int t = 0; t < nthreads; t++) {
        if (warp_calls[t] != warp_calls[t - t % warpSize]) {
            set_thread_index((unsigned)t);
            emu_abort("wmma: the lanes of a warp made different numbers of warp-collective calls");
        }
    }
    memset(warp_calls, 0, sizeof(unsigned) * nthreads);
}

void __syncthreads(void) {
    if (current < 0) emu_abort("barrier divergence: __syncthreads in a thread after the block's first thread finished without one");
    yield_to_scheduler();
}

static void switch_to(int t) {
    current = t;
    set_thread_index((unsigned)t);
#if EMU_FAST_SWITCH
    void *fake = NULL;
    fiber_leave(&fake, stacks + (size_t)t * EMU_STACK_BYTES, EMU_STACK_BYTES);
    emu_switch(&scheduler_sp, threads[t].sp);
    fiber_enter(fake, NULL, NULL);
#else
    swapcontext(&scheduler, &threads[t].uc);
#endif
}

static void start_thread(int t) {
    char *base = stacks + (size_t)t * EMU_STACK_BYTES;
    threads[t].done = 0;
#if EMU_FAST_SWITCH
    // emu_switch pops six registers and returns: the return address is thread_entry, which then starts with the
    // stack pointer 8 bytes below a 16-byte boundary, as after a call.
    fiber_stack_fresh(base, EMU_STACK_BYTES);
    void **sp = (void **)(base + EMU_STACK_BYTES - 64);
    for (int i = 0; i < 6; i++) sp[i] = NULL;
    sp[6] = (void *)thread_entry;
    sp[7] = NULL;
    threads[t].sp = sp;
#else
    getcontext(&threads[t].uc);
    threads[t].uc.uc_stack.ss_sp = base;
    threads[t].uc.uc_stack.ss_size = EMU_STACK_BYTES;
    threads[t].uc.uc_link = &scheduler;
    makecontext(&threads[t].uc, thread_entry, 0);
#endif
}

// Threads (and blocks) run in index order, or in reverse with PIONRL_EMU_ORDER=reverse: a missing barrier lets a
// thread read what another writes in the same interval, and which order exposes it depends on which thread is the
// reader, so the kernel tests run both ways (Makefile, EMU_REVERSE).
static int reverse_order(void) {
    static int reverse = -1;
    if (reverse < 0) {
        const char *o = getenv("PIONRL_EMU_ORDER");
        reverse = o && !strcmp(o, "reverse");
    }
    return reverse;
}

static int nth(int i, int n) { return reverse_order() ? n - 1 - i : i; }

// The first thread in the order runs first; if it finishes without a barrier the others run directly, one after
// another (most kernels: elementwise and grid-stride loops). Otherwise all run as coroutines in rounds, one barrier
// interval per round.
static void run_block(int nthreads) {
    int first = nth(0, nthreads);
    start_thread(first);
    switch_to(first);
    if (threads[first].done) {
        current = -1;
        for (int i = 1; i < nthreads; i++) {
            set_thread_index((unsigned)nth(i, nthreads));
            run_body(run_ctx);
        }
        return;
    }
    for (int i = 1; i < nthreads; i++) start_thread(nth(i, nthreads));
    for (int i = 1; i < nthreads; i++) switch_to(nth(i, nthreads));
    for (;;) {
        int live = 0;
        for (int i = 0; i < nthreads; i++) {
            int t = nth(i, nthreads);
            if (!threads[t].done) {
                switch_to(t);
                live = 1;
            }
        }
        if (!live) break;
    }
    current = -1;
}

void emu_launch(const void *func, dim3 grid, dim3 block, size_t shared, void (*body)(void *), void *ctx) {
    size_t nthreads = (size_t)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > EMU_MAX_THREADS || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    if (shared > EMU_SHARED_DEFAULT) {
        auto it = max_dynamic_shared.find(func);
        if (it == max_dynamic_shared.end() || shared > (size_t)it->second) {
            fail(cudaErrorInvalidValue);
            return;
        }
    }
    if (!stacks) {
        stacks = (char *)mmap(NULL, (size_t)EMU_MAX_THREADS * EMU_STACK_BYTES, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        threads = (EmuThread *)calloc(EMU_MAX_THREADS, sizeof *threads);
        warp_calls = (unsigned *)calloc(EMU_MAX_THREADS, sizeof *warp_calls);
        if (stacks == MAP_FAILED || !threads || !warp_calls) emu_abort("no memory for thread stacks");
    }
    // 128-byte aligned, as declared (__align__) by the kernels that cut it into wmma tiles
    dynamic_shared = shared ? aligned_alloc(128, (shared + 127) / 128 * 128) : NULL;
    if (shared) memset(dynamic_shared, 0xff, shared);
    run_body = body;
    run_ctx = ctx;
    gridDim = grid;
    blockDim = block;
    size_t nblocks = (size_t)grid.x * grid.y * grid.z;
    for (size_t i = 0; i < nblocks; i++) {
        size_t b = reverse_order() ? nblocks - 1 - i : i;
        blockIdx.x = (unsigned)(b % grid.x);
        blockIdx.y = (unsigned)(b / grid.x % grid.y);
        blockIdx.z = (unsigned)(b / ((size_t)grid.x * grid.y));
        run_block((int)nthreads);
        check_warp_calls((int)nthreads);
    }
    free(dynamic_shared);
    dynamic_shared = NULL;
}

// ---- cuBLAS ----

struct EmuBlas {
    int unused;
};

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    *handle = (cublasHandle_t)calloc(1, sizeof(EmuBlas));
    return *handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    free(handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

// cuBLAS's own argument checks, so a wrong leading dimension fails here as it would on the device.
static int gemm_args_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc) {
    int rows_a = ta == CUBLAS_OP_N ? m : k, rows_b = tb == CUBLAS_OP_N ? k : n;
    return m >= 0 && n >= 0 && k >= 0 && lda >= (rows_a > 1 ? rows_a : 1) && ldb >= (rows_b > 1 ? rows_b : 1) &&
           ldc >= (m > 1 ? m : 1);
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return cublasSgemmStridedBatched(handle, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasDgemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const double *alpha, const double *A, int lda, const double *B, int ldb, const double *beta,
                           double *C, int ldc) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    double a = *alpha, b = *beta;
    auto run = [=]() {
        if (k == 0) {
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) C[(size_t)j * ldc + i] = b == 0.0 ? 0.0 : b * C[(size_t)j * ldc + i];
            return;
        }
        cblas_dgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, a, A, lda, B, ldb, b, C, ldc);
    };
    if (capture) capture->work.push_back(run);
    else run();
    return CUBLAS_STATUS_SUCCESS;
}

// While capturing, a cuBLAS call is checked at once (as the library checks it) and recorded with its scalars read
// now: in host pointer mode cuBLAS reads alpha and beta at the call, so a graph keeps their values.

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                                         int n, int k, const float *alpha, const float *A, int lda, long long stride_a,
                                         const float *B, int ldb, long long stride_b, const float *beta, float *C,
                                         int ldc, long long stride_c, int batch) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc) || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    if (capture) {
        float a = *alpha, b = *beta;
        capture->work.push_back([=]() {
            cublasSgemmStridedBatched(handle, ta, tb, m, n, k, &a, A, lda, stride_a, B, ldb, stride_b, &b, C, ldc,
                                      stride_c, batch);
        });
        return CUBLAS_STATUS_SUCCESS;
    }
    for (int b = 0; b < batch; b++) {
        float *c = C + b * stride_c;
        if (k == 0) {  // BLAS leaves C * beta; spell it out (some CPU BLAS skip the call)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) c[(size_t)j * ldc + i] = *beta == 0.0f ? 0.0f : *beta * c[(size_t)j * ldc + i];
            continue;
        }
        cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, *alpha, A + b * stride_a, lda,
                    B + b * stride_b, ldb, *beta, c, ldc);
    }
    return CUBLAS_STATUS_SUCCESS;
}

// Operand X (stored rows x cols, column-major with leading dimension ld) as fp32, widening bf16 (NULL when out of
// memory or of an unsupported type).
static float *widen_operand(const void *X, cudaDataType_t type, int rows, int cols, int ld) {
    size_t n = (size_t)ld * (cols > 0 ? cols : 1);
    float *out = (float *)malloc(n * sizeof(float));
    if (!out) return NULL;
    if (type == CUDA_R_32F) {
        memcpy(out, X, ((size_t)ld * (cols - 1) + rows) * sizeof(float));
        return out;
    }
    if (type != CUDA_R_16BF) {
        free(out);
        return NULL;
    }
    const __nv_bfloat16 *h = (const __nv_bfloat16 *)X;
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++) out[(size_t)j * ld + i] = __bfloat162float(h[(size_t)j * ld + i]);
    return out;
}

// The checks cublasGemmEx and its strided-batched form make before any work: the types and algorithm the library
// emulates (fp32 or bf16 in, fp32 out and compute), then the shapes.
static cublasStatus_t gemm_ex_args(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                   int k, cudaDataType_t a_type, int lda, cudaDataType_t b_type, int ldb,
                                   cudaDataType_t c_type, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (c_type != CUDA_R_32F || compute != CUBLAS_COMPUTE_32F || algo != CUBLAS_GEMM_DEFAULT ||
        (a_type != CUDA_R_32F && a_type != CUDA_R_16BF) || (b_type != CUDA_R_32F && b_type != CUDA_R_16BF))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t a_type, int lda, const void *B,
                            cudaDataType_t b_type, int ldb, const void *beta, void *C, cudaDataType_t c_type, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    cublasStatus_t st = gemm_ex_args(handle, ta, tb, m, n, k, a_type, lda, b_type, ldb, c_type, ldc, compute, algo);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (capture) {
        float a = *(const float *)alpha, b = *(const float *)beta;
        capture->work.push_back([=]() {
            cublasGemmEx(handle, ta, tb, m, n, k, &a, A, a_type, lda, B, b_type, ldb, &b, C, c_type, ldc, compute, algo);
        });
        return CUBLAS_STATUS_SUCCESS;
    }
    if (m == 0 || n == 0 || k == 0)
        return cublasSgemm(handle, ta, tb, m, n, k, (const float *)alpha, (const float *)A, lda, (const float *)B, ldb,
                           (const float *)beta, (float *)C, ldc);
    float *a = widen_operand(A, a_type, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda);
    float *b = widen_operand(B, b_type, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb);
    cublasStatus_t rc = CUBLAS_STATUS_ALLOC_FAILED;
    if (a && b)
        rc = cublasSgemm(handle, ta, tb, m, n, k, (const float *)alpha, a, lda, b, ldb, (const float *)beta, (float *)C,
                         ldc);
    free(a);
    free(b);
    return rc;
}

// One cublasGemmEx per batch entry, at the entries' element offsets; recorded as one node while capturing (one
// kernel on a GPU), after the arguments are checked as cublasGemmEx checks them.
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                                          int n, int k, const void *alpha, const void *A, cudaDataType_t a_type, int lda,
                                          long long stride_a, const void *B, cudaDataType_t b_type, int ldb,
                                          long long stride_b, const void *beta, void *C, cudaDataType_t c_type, int ldc,
                                          long long stride_c, int batch, cublasComputeType_t compute,
                                          cublasGemmAlgo_t algo) {
    cublasStatus_t st = gemm_ex_args(handle, ta, tb, m, n, k, a_type, lda, b_type, ldb, c_type, ldc, compute, algo);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (capture) {
        float a = *(const float *)alpha, b = *(const float *)beta;
        capture->work.push_back([=]() {
            cublasGemmStridedBatchedEx(handle, ta, tb, m, n, k, &a, A, a_type, lda, stride_a, B, b_type, ldb, stride_b,
                                       &b, C, c_type, ldc, stride_c, batch, compute, algo);
        });
        return CUBLAS_STATUS_SUCCESS;
    }
    size_t ea = a_type == CUDA_R_16BF ? 2 : 4, eb = b_type == CUDA_R_16BF ? 2 : 4, ec = c_type == CUDA_R_16BF ? 2 : 4;
    for (int i = 0; i < batch; i++) {
        cublasStatus_t st = cublasGemmEx(handle, ta, tb, m, n, k, alpha, (const char *)A + i * stride_a * ea, a_type,
                                         lda, (const char *)B + i * stride_b * eb, b_type, ldb, beta,
                                         (char *)C + i * stride_c * ec, c_type, ldc, compute, algo);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    return CUBLAS_STATUS_SUCCESS;
}

// ---- cuSOLVER (dense LU) on LAPACK ----

extern "C" void dgetrf_(const int *m, const int *n, double *a, const int *lda, int *ipiv, int *info);
extern "C" void dgetrs_(const char *trans, const int *n, const int *nrhs, const double *a, const int *lda,
                        const int *ipiv, double *b, const int *ldb, int *info);

struct EmuSolver {
    int unused;
};

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle) {
    *handle = (cusolverDnHandle_t)calloc(1, sizeof(EmuSolver));
    return *handle ? CUSOLVER_STATUS_SUCCESS : CUSOLVER_STATUS_NOT_INITIALIZED;
}

cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle) {
    free(handle);
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t stream) {
    return handle ? CUSOLVER_STATUS_SUCCESS : CUSOLVER_STATUS_NOT_INITIALIZED;
}

cusolverStatus_t cusolverDnDgetrf_bufferSize(cusolverDnHandle_t handle, int m, int n, double *A, int lda, int *lwork) {
    if (!handle) return CUSOLVER_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || lda < (m > 1 ? m : 1)) return CUSOLVER_STATUS_INVALID_VALUE;
    *lwork = m * 64;  // LAPACK needs none; a size like cuSOLVER's, so the caller's buffer is exercised
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgetrf(cusolverDnHandle_t handle, int m, int n, double *A, int lda, double *work, int *ipiv,
                                  int *info) {
    if (!handle) return CUSOLVER_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || lda < (m > 1 ? m : 1) || !work) return CUSOLVER_STATUS_INVALID_VALUE;
    dgetrf_(&m, &n, A, &lda, ipiv, info);
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgetrs(cusolverDnHandle_t handle, cublasOperation_t trans, int n, int nrhs, const double *A,
                                  int lda, const int *ipiv, double *B, int ldb, int *info) {
    if (!handle) return CUSOLVER_STATUS_NOT_INITIALIZED;
    if (n < 0 || nrhs < 0 || lda < (n > 1 ? n : 1) || ldb < (n > 1 ? n : 1)) return CUSOLVER_STATUS_INVALID_VALUE;
    char t = trans == CUBLAS_OP_N ? 'N' : 'T';
    dgetrs_(&t, &n, &nrhs, A, &lda, ipiv, B, &ldb, info);
    return CUSOLVER_STATUS_SUCCESS;
}
