// CUDA implementation of src/core/cuda_ops.h: device probe and memory, the optimizer's elementwise kernels (AdamW,
// momentum, scaled update) and the batched Newton-Schulz iteration on cuBLAS. Row-major matrices are handed to
// column-major cuBLAS as their transposes; the comments at each GEMM say which product that is.
#include "core/cuda_ops.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda/cuda_common.cuh"

static int cuda_check(cudaError_t rc, const char *what, Error *err) {
    if (rc == cudaSuccess) return 0;
    return error_set(err, "cuda: %s: %s", what, cudaGetErrorString(rc));
}

int cuda_device_probe(char *name, size_t name_len, size_t *mem_bytes, Error *err) {
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) return error_set(err, "no usable CUDA device: %s", cudaGetErrorString(rc));
    if (count < 1) return error_set(err, "no CUDA device found");
    cudaDeviceProp prop;
    if (cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties", err)) return -1;
    if (name && name_len) {
        strncpy(name, prop.name, name_len - 1);
        name[name_len - 1] = 0;
    }
    if (mem_bytes) *mem_bytes = prop.totalGlobalMem;
    return 0;
}

int cuda_memory_in_use(size_t *bytes, Error *err) {
    size_t free_bytes = 0, total = 0;
    if (cuda_check(cudaMemGetInfo(&free_bytes, &total), "cudaMemGetInfo", err)) return -1;
    *bytes = total - free_bytes;
    return 0;
}

int cuda_alloc(void **d_ptr, size_t bytes, Error *err) {
    *d_ptr = NULL;
    if (cudaMalloc(d_ptr, bytes ? bytes : 1) != cudaSuccess) {
        *d_ptr = NULL;
        cudaGetLastError();  // clear it, so the next launch check does not report it again
        return error_set(err, "cuda: out of device memory (%.1f MB requested)", bytes / 1e6);
    }
    return 0;
}

void cuda_release(void *d_ptr) {
    if (d_ptr) cudaFree(d_ptr);
}

int cuda_to_device(void *d_dst, const void *src, size_t bytes, Error *err) {
    return cuda_check(cudaMemcpy(d_dst, src, bytes, cudaMemcpyHostToDevice), "copy to device", err);
}

int cuda_to_host(void *dst, const void *d_src, size_t bytes, Error *err) {
    return cuda_check(cudaMemcpy(dst, d_src, bytes, cudaMemcpyDeviceToHost), "copy to host", err);
}

int cuda_alloc_table(const CudaBuf *t, int n, Error *err) {
    for (int i = 0; i < n; i++)
        if (cuda_alloc(t[i].p, t[i].bytes, err)) return -1;
    return 0;
}

void cuda_release_table(const CudaBuf *t, int n) {
    for (int i = 0; i < n; i++) cuda_release(*t[i].p);
}

int cuda_copy(void *d_dst, const void *d_src, size_t bytes, Error *err) {
    return cuda_check(cudaMemcpy(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice), "copy on device", err);
}

int cuda_zero(void *d_ptr, size_t bytes, Error *err) { return cuda_check(cudaMemset(d_ptr, 0, bytes), "memset", err); }

struct CudaGraph {
    cudaGraphExec_t exec;
    size_t nodes;
};

int cuda_graph_begin(Error *err) {
    // thread-local: only this thread's unsafe calls (a synchronous copy, an allocation) break the capture
    return cuda_check(cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeThreadLocal), "begin capture",
                      err);
}

int cuda_graph_end(CudaGraph **out, Error *err) {
    *out = NULL;
    cudaGraph_t g = NULL;
    cudaError_t rc = cudaStreamEndCapture(cudaStreamPerThread, &g);
    if (rc != cudaSuccess || !g) {
        cudaGetLastError();  // a failed capture is reported here, not at the next launch check
        return error_set(err, "cuda: capture: %s", cudaGetErrorString(rc));
    }
    CudaGraph *cg = (CudaGraph *)calloc(1, sizeof *cg);
    rc = cg ? cudaGraphInstantiate(&cg->exec, g, 0) : cudaErrorMemoryAllocation;
    if (rc == cudaSuccess && cudaGraphGetNodes(g, NULL, &cg->nodes) != cudaSuccess) {
        cudaGetLastError();  // only a statistic
        cg->nodes = 0;
    }
    cudaGraphDestroy(g);
    if (rc != cudaSuccess) {
        cudaGetLastError();
        free(cg);
        return error_set(err, "cuda: graph instantiate: %s", cudaGetErrorString(rc));
    }
    *out = cg;
    return 0;
}

int cuda_graph_launch(const CudaGraph *g, Error *err) {
    return cuda_check(cudaGraphLaunch(g->exec, cudaStreamPerThread), "graph launch", err);
}

size_t cuda_graph_num_nodes(const CudaGraph *g) { return g ? g->nodes : 0; }

void cuda_graph_free(CudaGraph *g) {
    if (!g) return;
    cudaGraphExecDestroy(g->exec);
    free(g);
}

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float step_size,
                                    float bc2_sqrt, float decay, float b1, float b2, float eps, double *dsum) {
    double local = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float old = p[i], q = old * decay, gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        q -= step_size * (mi / denom);
        p[i] = q;
        double d = (double)q - (double)old;
        local += d * d;
    }
    double s = cuda_block_sum(local);
    if (threadIdx.x == 0) atomicAdd(dsum, s);
}

int cuda_adamw(float *d_p, const float *d_g, float *d_m, float *d_v, size_t n, float lr, float beta1, float beta2,
               float eps, float weight_decay, long step, double *d_dsum, Error *err) {
    // bias corrections in double on the host, exactly as adamw_update does
    double bc1 = 1.0 - pow((double)beta1, (double)step), bc2 = 1.0 - pow((double)beta2, (double)step);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), decay = 1.0f - lr * weight_decay;
    adamw_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(d_p, d_g, d_m, d_v, n, step_size, bc2_sqrt, decay, beta1, beta2,
                                                     eps, d_dsum);
    return cuda_launch_check("adamw kernel", err);
}

__global__ static void momentum_kernel(float *m, const float *g, float *in, size_t n, float mu, float gk,
                                       int nesterov) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float mi = mu * m[i] + gk * g[i];
        m[i] = mi;
        in[i] = nesterov ? gk * g[i] + mu * mi : mi;
    }
}

int cuda_momentum(float *d_m, const float *d_g, float *d_in, size_t n, float mu, float gk, int nesterov, Error *err) {
    momentum_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(d_m, d_g, d_in, n, mu, gk, nesterov);
    return cuda_launch_check("momentum kernel", err);
}

__global__ static void scaled_update_kernel(float *w, const float *u, size_t n, float step, float decay, double *dsum) {
    double local = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float old = w[i], nw = old * decay - step * u[i];
        w[i] = nw;
        double d = (double)nw - (double)old;
        local += d * d;
    }
    double s = cuda_block_sum(local);
    if (threadIdx.x == 0) atomicAdd(dsum, s);
}

int cuda_scaled_update(float *d_w, const float *d_u, size_t n, float step, float decay, double *d_dsum, Error *err) {
    scaled_update_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(d_w, d_u, n, step, decay, d_dsum);
    return cuda_launch_check("update kernel", err);
}

// ---- Newton-Schulz ------------------------------------------------------------------------------

struct CudaNs {
    cublasHandle_t blas;
    int max_blocks, bf16;
    size_t max_numel, max_gram;
    float *X, *Y;  // max_numel: a batch's blocks, contiguous row-major
    float *A, *B;  // max_gram: their Gram matrices (short side squared each)
    float *inv;    // 1 / (||G_b|| + eps) per block
    __nv_bfloat16 *Xh, *Ah, *Bh;  // bf16: the rounded operands of X, A, B
};

__global__ static void round_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

int cuda_round_bf16(void *d_dst, const float *d_src, size_t n, Error *err) {
    if (n == 0) return 0;
    round_bf16_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>((__nv_bfloat16 *)d_dst, d_src, n);
    return cuda_launch_check("round to bf16", err);
}

// One strided-batched product C = alpha op(A) op(B) + beta C (column-major, fp32 C): cublasSgemmStridedBatched, or
// with bf16 operands (A16/B16 given) cublasGemmStridedBatchedEx with fp32 accumulation.
static cublasStatus_t ns_gemm(const CudaNs *ns, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              float alpha, const float *A, const __nv_bfloat16 *A16, int lda, long long sa,
                              const float *B, const __nv_bfloat16 *B16, int ldb, long long sb, float beta, float *C,
                              int ldc, long long sc, int batch) {
    if (!ns->bf16)
        return cublasSgemmStridedBatched(ns->blas, ta, tb, m, n, k, &alpha, A, lda, sa, B, ldb, sb, &beta, C, ldc, sc,
                                         batch);
    return cublasGemmStridedBatchedEx(ns->blas, ta, tb, m, n, k, &alpha, A16, CUDA_R_16BF, lda, sa, B16, CUDA_R_16BF,
                                      ldb, sb, &beta, C, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT);
}

void cuda_ns_free(CudaNs *ns) {
    if (!ns) return;
    if (ns->blas) cublasDestroy(ns->blas);
    cuda_release(ns->X);
    cuda_release(ns->Y);
    cuda_release(ns->A);
    cuda_release(ns->B);
    cuda_release(ns->inv);
    cuda_release(ns->Xh);
    cuda_release(ns->Ah);
    cuda_release(ns->Bh);
    free(ns);
}

int cuda_ns_create(size_t max_numel, size_t max_gram, int max_blocks, int bf16, CudaNs **out, Error *err) {
    *out = NULL;
    CudaNs *ns = (CudaNs *)calloc(1, sizeof *ns);
    if (!ns) return error_set(err, "cuda ns: out of memory");
    ns->max_blocks = max_blocks;
    ns->max_numel = max_numel;
    ns->max_gram = max_gram;
    ns->bf16 = bf16;
    size_t xb = sizeof(float) * max_numel, ab = sizeof(float) * max_gram;
    if (cuda_blas_check(cublasCreate(&ns->blas), "cublasCreate", err) ||
        cuda_blas_check(cublasSetStream(ns->blas, cudaStreamPerThread), "cublasSetStream", err) ||
        // fp32 GEMMs stay fp32 (no TF32): this path is compared against the CPU reference
        cuda_blas_check(cublasSetMathMode(ns->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", err) ||
        cuda_alloc((void **)&ns->X, xb, err) || cuda_alloc((void **)&ns->Y, xb, err) ||
        cuda_alloc((void **)&ns->A, ab, err) || cuda_alloc((void **)&ns->B, ab, err) ||
        cuda_alloc((void **)&ns->inv, sizeof(float) * max_blocks, err) ||
        (bf16 && (cuda_alloc((void **)&ns->Xh, xb / 2, err) || cuda_alloc((void **)&ns->Ah, ab / 2, err) ||
                  cuda_alloc((void **)&ns->Bh, ab / 2, err)))) {
        cuda_ns_free(ns);
        return error_prefix(err, "cuda ns workspace");
    }
    *out = ns;
    return 0;
}

// Where block b of a batch starts: blocks come `per` to a matrix, matrix j at j * m_stride, its block h at
// h * stride from there (one matrix: per = the block count).
__device__ static inline size_t block_at(size_t b, int per, size_t stride, size_t m_stride) {
    return (b / per) * m_stride + (b % per) * stride;
}

// inv[b] = 1 / (||block b||_F + eps); one thread block per matrix block.
__global__ static void block_norm_kernel(const float *g, int rows, int cols, int ldg, int per, size_t g_stride,
                                         size_t g_mstride, float eps, float *inv) {
    const float *gb = g + block_at(blockIdx.x, per, g_stride, g_mstride);
    size_t n = (size_t)rows * cols;
    double local = 0.0;
    for (size_t k = threadIdx.x; k < n; k += blockDim.x) {
        double x = gb[(k / cols) * (size_t)ldg + k % cols];
        local += x * x;
    }
    double s = cuda_block_sum(local);
    if (threadIdx.x == 0) inv[blockIdx.x] = (float)(1.0 / (sqrt(s) + (double)eps));
}

// X (contiguous blocks) = inv[b] * G blocks (strided).
__global__ static void gather_kernel(const float *g, int nblocks, int rows, int cols, int ldg, int per_m,
                                     size_t g_stride, size_t g_mstride, const float *inv, float *x) {
    size_t per = (size_t)rows * cols, n = per * nblocks;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        size_t b = k / per, r = k % per;
        x[k] = g[block_at(b, per_m, g_stride, g_mstride) + (r / cols) * (size_t)ldg + r % cols] * inv[b];
    }
}

// out blocks (strided) = X (contiguous blocks).
__global__ static void scatter_kernel(const float *x, int nblocks, int rows, int cols, float *out, int ldo, int per_m,
                                      size_t o_stride, size_t o_mstride) {
    size_t per = (size_t)rows * cols, n = per * nblocks;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        size_t b = k / per, r = k % per;
        out[block_at(b, per_m, o_stride, o_mstride) + (r / cols) * (size_t)ldo + r % cols] = x[k];
    }
}

// B = bA + aI for every r x r block.
__global__ static void poly_init_kernel(const float *A, float *B, int nblocks, int r, float a, float b) {
    size_t per = (size_t)r * r, n = per * nblocks;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        size_t e = k % per;
        B[k] = b * A[k] + (e / r == e % r ? a : 0.0f);
    }
}

int cuda_ns_matrices(CudaNs *ns, const float *a, const float *b, const float *c, int steps, int count, const float *d_g,
                     size_t g_mstride, int per_m, int rows, int cols, int ldg, size_t g_stride, float *d_out,
                     size_t o_mstride, int ldo, size_t o_stride, float eps, Error *err) {
    int tall = rows > cols, r = tall ? cols : rows, cl = tall ? rows : cols;
    size_t per = (size_t)rows * cols, rr = (size_t)r * r;
    long long total = (long long)count * per_m;
    if (count < 1 || per_m < 1 || rows < 1 || cols < 1 || total > ns->max_blocks || total * per > ns->max_numel ||
        total * rr > ns->max_gram)
        return error_set(err,
                         "cuda ns: %d x %d blocks of %d x %d exceed the workspace (%d blocks, %zu elements, %zu "
                         "Gram elements)",
                         count, per_m, rows, cols, ns->max_blocks, ns->max_numel, ns->max_gram);
    int nblocks = (int)total;
    block_norm_kernel<<<nblocks, CUDA_THREADS>>>(d_g, rows, cols, ldg, per_m, g_stride, g_mstride, eps, ns->inv);
    gather_kernel<<<cuda_grid_for(per * nblocks), CUDA_THREADS>>>(d_g, nblocks, rows, cols, ldg, per_m, g_stride,
                                                                  g_mstride, ns->inv, ns->X);
    if (cuda_launch_check("ns gather", err)) return -1;
    float *X = ns->X, *Y = ns->Y;
    long long sx = (long long)per, sa = (long long)rr;
    // bf16: each operand is rounded once where it is made (X before the Gram product and the update, A before A^2,
    // B before the update); the fp32 values stay for the b A term and the next step.
    for (int t = 0; t < steps; t++) {
        cublasStatus_t st;
        if (ns->bf16 && cuda_round_bf16(ns->Xh, X, per * nblocks, err)) return -1;
        if (!tall)  // A = X X^T: column-major X^T (cl x r) as Xc, A = Xc^T Xc
            st = ns_gemm(ns, CUBLAS_OP_T, CUBLAS_OP_N, r, r, cl, 1.0f, X, ns->Xh, cl, sx, X, ns->Xh, cl, sx, 0.0f, ns->A,
                         r, sa, nblocks);
        else  // A = X^T X: column-major X^T (r x cl) as Xc, A = Xc Xc^T
            st = ns_gemm(ns, CUBLAS_OP_N, CUBLAS_OP_T, r, r, cl, 1.0f, X, ns->Xh, r, sx, X, ns->Xh, r, sx, 0.0f, ns->A,
                         r, sa, nblocks);
        if (cuda_blas_check(st, "ns gram", err)) return -1;
        poly_init_kernel<<<cuda_grid_for(rr * nblocks), CUDA_THREADS>>>(ns->A, ns->B, nblocks, r, a[t], b[t]);
        if (cuda_launch_check("ns poly", err)) return -1;
        if (ns->bf16 && cuda_round_bf16(ns->Ah, ns->A, rr * nblocks, err)) return -1;
        // B += c A A (A symmetric: the layout question does not arise)
        st = ns_gemm(ns, CUBLAS_OP_N, CUBLAS_OP_N, r, r, r, c[t], ns->A, ns->Ah, r, sa, ns->A, ns->Ah, r, sa, 1.0f,
                     ns->B, r, sa, nblocks);
        if (cuda_blas_check(st, "ns A^2", err)) return -1;
        if (ns->bf16 && cuda_round_bf16(ns->Bh, ns->B, rr * nblocks, err)) return -1;
        if (!tall)  // X <- B X; column-major: Xc <- Xc B (B symmetric)
            st = ns_gemm(ns, CUBLAS_OP_N, CUBLAS_OP_N, cl, r, r, 1.0f, X, ns->Xh, cl, sx, ns->B, ns->Bh, r, sa, 0.0f, Y,
                         cl, sx, nblocks);
        else  // X <- X B; column-major: Xc <- B Xc
            st = ns_gemm(ns, CUBLAS_OP_N, CUBLAS_OP_N, r, cl, r, 1.0f, ns->B, ns->Bh, r, sa, X, ns->Xh, r, sx, 0.0f, Y,
                         r, sx, nblocks);
        if (cuda_blas_check(st, "ns update", err)) return -1;
        float *tmp = X;
        X = Y;
        Y = tmp;
    }
    scatter_kernel<<<cuda_grid_for(per * nblocks), CUDA_THREADS>>>(X, nblocks, rows, cols, d_out, ldo, per_m, o_stride,
                                                                   o_mstride);
    return cuda_launch_check("ns scatter", err);
}
