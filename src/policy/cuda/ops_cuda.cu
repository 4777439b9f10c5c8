// CUDA twins of the ops in src/policy/ops.c (see ops_cuda.h). Each kernel follows the CPU code's arithmetic (double
// accumulation where the CPU uses double, fp32 RoPE angles) so the CPU-vs-CUDA tests can be tight; the GEMMs round
// the same operands as the CPU in bf16 mode. Row-major matrices go to column-major cuBLAS as transposes.
#include "policy/ops_cuda.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/cuda/cuda_common.cuh"

struct CudaBlas {
    cublasHandle_t h;
    int bf16;  // GEMM operands rounded to bfloat16, fp32 accumulation and output
    // a resident bf16 copy of the fp32 array [copy_base, copy_base + copy_n) (the weights): operands inside it are
    // read from the copy instead of being rounded on every call
    const float *copy_base;
    const __nv_bfloat16 *copy;
    size_t copy_n;
    __nv_bfloat16 *scratch[2];  // rounded operands A and B of the current GEMM
    size_t scratch_n[2];
    unsigned long generation;  // counts scratch reallocations: a captured graph holds the old addresses
    // cuda_blas_reuse_operands: while on, a scratch slot that still holds the rounding of the same operand (address,
    // shape, leading dimension) is used again instead of rounding it anew
    int reuse;
    struct {
        const float *x;
        int rows, cols, ld;
    } held[2];
    unsigned long roundings;
};

int cuda_blas_create(CudaBlas **out, Error *err) {
    *out = NULL;
    CudaBlas *b = (CudaBlas *)calloc(1, sizeof *b);
    if (!b) return error_set(err, "cuda: out of memory");
    if (cuda_blas_check(cublasCreate(&b->h), "cublasCreate", err) ||
        cuda_blas_check(cublasSetStream(b->h, cudaStreamPerThread), "cublasSetStream", err) ||
        cuda_blas_check(cublasSetMathMode(b->h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", err)) {
        cuda_blas_free(b);
        return -1;
    }
    *out = b;
    return 0;
}

void cuda_blas_free(CudaBlas *b) {
    if (!b) return;
    if (b->h) cublasDestroy(b->h);
    cudaFree(b->scratch[0]);
    cudaFree(b->scratch[1]);
    free(b);
}

void cuda_blas_set_bf16(CudaBlas *cb, int on) { cb->bf16 = on; }

unsigned long cuda_blas_generation(const CudaBlas *cb) { return cb->generation; }

void cuda_blas_set_bf16_copy(CudaBlas *cb, const float *base, const void *copy, size_t n) {
    cb->copy_base = base;
    cb->copy = (const __nv_bfloat16 *)copy;
    cb->copy_n = copy ? n : 0;
}

// rows x cols of a column-major matrix with leading dimension ld, packed (leading dimension rows) as bf16
__global__ static void round_bf16_2d_kernel(__nv_bfloat16 *dst, const float *src, int rows, int cols, int ld) {
    size_t n = (size_t)rows * cols;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[(i / rows) * (size_t)ld + i % rows]);
}

// Operand X (stored rows x cols, column-major, leading dimension *ld) as bf16: a view into the resident copy when X
// lies inside it, else rounded into scratch slot `slot` (*ld becomes rows).
static int bf16_operand(CudaBlas *cb, int slot, const float *X, int rows, int cols, int *ld, const void **out,
                        Error *err) {
    // addresses compared as integers: X is usually not inside the registered array at all
    size_t span = rows > 0 && cols > 0 ? (size_t)*ld * (cols - 1) + rows : 0;
    uintptr_t x = (uintptr_t)X, base = (uintptr_t)cb->copy_base;
    if (cb->copy && x >= base && (x - base) % sizeof(float) == 0 && (x - base) / sizeof(float) + span <= cb->copy_n) {
        *out = cb->copy + (x - base) / sizeof(float);
        return 0;
    }
    if (cb->reuse && cb->held[slot].x == X && cb->held[slot].rows == rows && cb->held[slot].cols == cols &&
        cb->held[slot].ld == *ld) {
        *out = cb->scratch[slot];
        *ld = rows;
        return 0;
    }
    size_t n = (size_t)rows * cols;
    cb->held[slot].x = NULL;
    if (n > cb->scratch_n[slot]) {
        cudaFree(cb->scratch[slot]);
        cb->scratch[slot] = NULL;
        cb->scratch_n[slot] = 0;
        if (cudaMalloc((void **)&cb->scratch[slot], n * sizeof(__nv_bfloat16)) != cudaSuccess) {
            cudaGetLastError();  // clear the sticky allocation error
            return error_set(err, "cuda: out of device memory for a bf16 operand (%zu elements)", n);
        }
        cb->scratch_n[slot] = n;
        cb->generation++;
    }
    *out = cb->scratch[slot];
    if (n == 0) return 0;
    round_bf16_2d_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(cb->scratch[slot], X, rows, cols, *ld);
    cb->held[slot].x = X, cb->held[slot].rows = rows, cb->held[slot].cols = cols, cb->held[slot].ld = *ld;
    cb->roundings++;
    *ld = rows;
    return cuda_launch_check("bf16 operand", err);
}

void cuda_blas_reuse_operands(CudaBlas *cb, int on) {
    cb->reuse = on;
    cb->held[0].x = cb->held[1].x = NULL;
}

unsigned long cuda_blas_roundings(const CudaBlas *cb) { return cb->roundings; }

// Column-major C = alpha op(A) op(B) + beta C: cublasSgemm, or in bf16 mode cublasGemmEx on bf16-rounded operands
// with fp32 accumulation (tensor cores), the device form of the CPU's gemm_bf16.
static int gemm(CudaBlas *cb, cublasOperation_t oa, cublasOperation_t ob, int m, int n, int k, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc, const char *what,
                Error *err) {
    if (!cb->bf16)
        return cuda_blas_check(cublasSgemm(cb->h, oa, ob, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc), what, err);
    const void *a16 = NULL, *b16 = NULL;
    int ra = oa == CUBLAS_OP_N ? m : k, ca = oa == CUBLAS_OP_N ? k : m;
    int rb = ob == CUBLAS_OP_N ? k : n, cbb = ob == CUBLAS_OP_N ? n : k;
    if (bf16_operand(cb, 0, A, ra, ca, &lda, &a16, err) || bf16_operand(cb, 1, B, rb, cbb, &ldb, &b16, err))
        return error_prefix(err, "%s", what);
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    return cuda_blas_check(cublasGemmEx(cb->h, oa, ob, m, n, k, &alpha, a16, CUDA_R_16BF, lda, b16, CUDA_R_16BF, ldb,
                                        &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                           what, err);
}

__global__ static void embedding_kernel(float *out, const float *table, const int *tokens, int N, int D) {
    size_t n = (size_t)N * D;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x)
        out[k] = table[(size_t)tokens[k / D] * D + k % D];
}

int cuda_embedding_forward(float *out, const float *table, const int *tokens, int N, int D, Error *err) {
    embedding_kernel<<<cuda_grid_for((size_t)N * D), CUDA_THREADS>>>(out, table, tokens, N, D);
    return cuda_launch_check("embedding", err);
}

__global__ static void embedding_backward_kernel(float *dtable, const float *dout, const int *tokens, int N, int D) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= D) return;
    for (int n = 0; n < N; n++) dtable[(size_t)tokens[n] * D + c] += dout[(size_t)n * D + c];
}

int cuda_embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int D, Error *err) {
    embedding_backward_kernel<<<(D + CUDA_THREADS - 1) / CUDA_THREADS, CUDA_THREADS>>>(dtable, dout, tokens, N, D);
    return cuda_launch_check("embedding backward", err);
}

int cuda_sgemm(CudaBlas *cb, int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc, Error *err) {
    // row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    return gemm(cb, ob, oa, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc, "sgemm", err);
}

// ---- linear -------------------------------------------------------------------------------------

__global__ static void rows_fill_kernel(float *out, const float *b, int N, int O) {
    size_t n = (size_t)N * O;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x)
        out[k] = b[k % O];
}

__global__ static void column_sum_kernel(float *db, const float *dout, int N, int O) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= O) return;
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += dout[(size_t)n * O + o];
    db[o] += s;
}

int cuda_linear_forward(CudaBlas *cb, float *out, const float *in, const float *W, const float *b, int N, int I, int O,
                        Error *err) {
    float one = 1.0f, beta = b ? 1.0f : 0.0f;
    if (b) {
        rows_fill_kernel<<<cuda_grid_for((size_t)N * O), CUDA_THREADS>>>(out, b, N, O);
        if (cuda_launch_check("linear bias", err)) return -1;
    }
    // out^T (O x N) = W (O x I) in^T: W is the column-major I x O matrix W^T, hence op T
    return gemm(cb, CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, one, W, I, in, I, beta, out, O, "linear forward", err);
}

static int linear_backward_products(CudaBlas *cb, float *din, float bd, float *dW, const float *dout, const float *in,
                                    const float *W, int N, int I, int O, Error *err) {
    // din^T (I x N) = W^T (I x O) dout^T (O x N)
    if (din &&
        gemm(cb, CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, 1.0f, W, I, dout, O, bd, din, I, "linear backward (input)", err))
        return -1;
    // dW^T (I x O) += in^T (I x N) dout (N x O)
    if (dW &&
        gemm(cb, CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, 1.0f, in, I, dout, O, 1.0f, dW, I, "linear backward (weight)", err))
        return -1;
    return 0;
}

int cuda_linear_backward(CudaBlas *cb, float *din, int din_accumulate, float *dW, float *db, const float *dout,
                         const float *in, const float *W, int N, int I, int O, Error *err) {
    float bd = din_accumulate ? 1.0f : 0.0f;
    // dout is an operand of both products and neither writes it: rounded once (bf16 mode)
    int outer = cb->reuse;
    if (!outer) cuda_blas_reuse_operands(cb, 1);
    int rc = linear_backward_products(cb, din, bd, dW, dout, in, W, N, I, O, err);
    if (!outer) cuda_blas_reuse_operands(cb, 0);
    if (rc) return -1;
    if (db) {
        column_sum_kernel<<<(O + CUDA_THREADS - 1) / CUDA_THREADS, CUDA_THREADS>>>(db, dout, N, O);
        if (cuda_launch_check("linear bias backward", err)) return -1;
    }
    return 0;
}

// ---- RMSNorm ------------------------------------------------------------------------------------

__global__ static void rmsnorm_forward_kernel(float *y, float *rstd, const float *x, const float *w, int C, float eps) {
    const float *xr = x + (size_t)blockIdx.x * C;
    float *yr = y + (size_t)blockIdx.x * C;
    double ss = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) ss += (double)xr[c] * xr[c];
    ss = cuda_block_sum(ss);
    float r = (float)(1.0 / sqrt(ss / C + eps));
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int c = threadIdx.x; c < C; c += blockDim.x) yr[c] = xr[c] * r * w[c];
}

int cuda_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int C, float eps, Error *err) {
    rmsnorm_forward_kernel<<<N, CUDA_THREADS>>>(y, rstd, x, w, C, eps);
    return cuda_launch_check("rmsnorm forward", err);
}

__global__ static void rmsnorm_dx_kernel(float *dx, int accumulate, const float *dy, const float *x, const float *w,
                                         const float *rstd, int C) {
    size_t off = (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x];
    double dot = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)dy[off + c] * w[c] * x[off + c] * r;
    dot = cuda_block_sum(dot);
    float m = (float)(dot / C);
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float g = r * (dy[off + c] * w[c] - x[off + c] * r * m);
        dx[off + c] = accumulate ? dx[off + c] + g : g;
    }
}

// dw[c] += sum over rows of dy * x * rstd: one thread per column, rows in order (deterministic).
__global__ static void rmsnorm_dw_kernel(float *dw, const float *dy, const float *x, const float *rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += dy[(size_t)n * C + c] * x[(size_t)n * C + c] * rstd[n];
    dw[c] += s;
}

int cuda_rmsnorm_backward(float *dx, int accumulate, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, int N, int C, Error *err) {
    rmsnorm_dw_kernel<<<(C + CUDA_THREADS - 1) / CUDA_THREADS, CUDA_THREADS>>>(dw, dy, x, rstd, N, C);
    rmsnorm_dx_kernel<<<N, CUDA_THREADS>>>(dx, accumulate, dy, x, w, rstd, C);
    return cuda_launch_check("rmsnorm backward", err);
}

// ---- RoPE (rotate-half) -------------------------------------------------------------------------

// One thread per (row, head, pair i < hd/2); angles in fp32 from an fp32 inv_freq, as on the CPU.
__global__ static void rope_kernel(float *x, const int *pos, int N, int H, int hd, double theta, float sign) {
    int half = hd / 2;
    size_t n = (size_t)N * H * half;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(k % half);
        size_t row = k / half;  // (token, head)
        int tok = (int)(row / H);
        float inv = (float)pow(theta, -2.0 * i / hd);
        float ang = (float)pos[tok] * inv;
        float c = cosf(ang), s = sign * sinf(ang);
        float *v = x + row * hd;
        float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

int cuda_rope_forward(float *x, const int *pos, int N, int H, int hd, double theta, Error *err) {
    rope_kernel<<<cuda_grid_for((size_t)N * H * (hd / 2)), CUDA_THREADS>>>(x, pos, N, H, hd, theta, 1.0f);
    return cuda_launch_check("rope forward", err);
}

int cuda_rope_backward(float *dx, const int *pos, int N, int H, int hd, double theta, Error *err) {
    rope_kernel<<<cuda_grid_for((size_t)N * H * (hd / 2)), CUDA_THREADS>>>(dx, pos, N, H, hd, theta, -1.0f);
    return cuda_launch_check("rope backward", err);
}

// ---- SwiGLU -------------------------------------------------------------------------------------

__device__ static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ static void swiglu_forward_kernel(float *h, const float *g, const float *u, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        h[i] = g[i] * sigmoid(g[i]) * u[i];
}

__global__ static void swiglu_backward_kernel(float *dg, float *du, const float *dh, const float *g, const float *u,
                                              long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float s = sigmoid(g[i]), silu = g[i] * s;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

int cuda_swiglu_forward(float *h, const float *g, const float *u, long n, Error *err) {
    swiglu_forward_kernel<<<cuda_grid_for((size_t)n), CUDA_THREADS>>>(h, g, u, n);
    return cuda_launch_check("swiglu forward", err);
}

int cuda_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, long n, Error *err) {
    swiglu_backward_kernel<<<cuda_grid_for((size_t)n), CUDA_THREADS>>>(dg, du, dh, g, u, n);
    return cuda_launch_check("swiglu backward", err);
}

// ---- log-softmax at the targets, entropy --------------------------------------------------------

__global__ static void logsoftmax_rows_kernel(const float *logits, const int *target, float *logp, float *entropy,
                                              int V) {
    if (target[blockIdx.x] < 0) {  // not a scored position
        if (threadIdx.x == 0) {
            logp[blockIdx.x] = 0.0f;
            if (entropy) entropy[blockIdx.x] = 0.0f;
        }
        return;
    }
    const float *x = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
    mx = cuda_block_max(mx);
    double sum = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(x[i] - mx);
    sum = cuda_block_sum(sum);
    double lse = mx + log(sum);
    if (entropy) {
        float flse = (float)lse;
        double ent = 0.0;
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            float lp = x[i] - flse;
            ent -= (double)expf(lp) * lp;
        }
        ent = cuda_block_sum(ent);
        if (threadIdx.x == 0) entropy[blockIdx.x] = (float)ent;
    }
    if (threadIdx.x == 0) logp[blockIdx.x] = (float)(x[target[blockIdx.x]] - lse);
}

int cuda_logsoftmax_rows(const float *logits, const int *target, float *logp, float *entropy, int N, int V,
                         Error *err) {
    logsoftmax_rows_kernel<<<N, CUDA_THREADS>>>(logits, target, logp, entropy, V);
    return cuda_launch_check("log-softmax", err);
}

__global__ static void logsoftmax_grad_rows_kernel(float *logits, const int *target, const float *weight, int V) {
    float *x = logits + (size_t)blockIdx.x * V;
    int tgt = target[blockIdx.x];
    float wt = tgt < 0 ? 0.0f : weight[blockIdx.x];
    if (wt == 0.0f) {
        for (int i = threadIdx.x; i < V; i += blockDim.x) x[i] = 0.0f;
        return;
    }
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
    mx = cuda_block_max(mx);
    double sum = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(x[i] - mx);
    float inv = (float)(1.0 / cuda_block_sum(sum));
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float p = expf(x[i] - mx) * inv;
        x[i] = (i == tgt ? wt : 0.0f) - wt * p;
    }
}

int cuda_logsoftmax_grad_rows(float *logits, const int *target, const float *weight, int N, int V, Error *err) {
    logsoftmax_grad_rows_kernel<<<N, CUDA_THREADS>>>(logits, target, weight, V);
    return cuda_launch_check("log-softmax gradient", err);
}

// ---- decode with a KV cache ----------------------------------------------------------------------

// Cache elements are float or bfloat16 (round to nearest even on store); arithmetic is fp32.
__device__ static inline float kv_load(const float *p, size_t i) { return p[i]; }
__device__ static inline float kv_load(const __nv_bfloat16 *p, size_t i) { return __bfloat162float(p[i]); }
__device__ static inline void kv_store(float *p, size_t i, float v) { p[i] = v; }
__device__ static inline void kv_store(__nv_bfloat16 *p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }

template <typename E>
__global__ static void kv_append_kernel(E *K, E *V, const float *k, const float *v, const int *slot, const int *pos,
                                        int n, int layer, int num_slots, int max_len, int KD) {
    size_t total = (size_t)n * KD;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        size_t i = e / KD, c = e % KD;
        size_t at = (((size_t)layer * num_slots + slot[i]) * max_len + pos[i]) * KD + c;
        kv_store(K, at, k[e]);
        kv_store(V, at, v[e]);
    }
}

int cuda_kv_append(void *K, void *V, int bf16, const float *k, const float *v, const int *slot, const int *pos, int n,
                   int layer, int num_slots, int max_len, int KD, Error *err) {
    unsigned grid = cuda_grid_for((size_t)n * KD);
    if (bf16)
        kv_append_kernel<<<grid, CUDA_THREADS>>>((__nv_bfloat16 *)K, (__nv_bfloat16 *)V, k, v, slot, pos, n, layer,
                                                 num_slots, max_len, KD);
    else
        kv_append_kernel<<<grid, CUDA_THREADS>>>((float *)K, (float *)V, k, v, slot, pos, n, layer, num_slots, max_len,
                                                 KD);
    return cuda_launch_check("kv append", err);
}

// Decode attention: one block per (query row, kv head, chunk of up to CA_GROUP of the query heads that share it), so
// each cached K and V row is read once for the whole group (once per chunk beyond CA_GROUP heads), in coalesced
// tiles of CA_TILE positions staged in shared memory. Online softmax over the tiles: each head's running max and sum
// live in shared memory (one thread per head updates them), and the output accumulators in registers are rescaled
// when the max grows. Shared memory does not grow with the sequence: (CA_TILE (2 hd + 1) + CA_GROUP (hd + CA_TILE +
// 3)) floats, 37 KB at hd 128.
enum { CA_TILE = 32, CA_THREADS = 128, CA_GROUP = 8, CA_MAX_HD = 256 };
enum { CA_NACC = CA_GROUP * CA_MAX_HD / CA_THREADS };  // output elements per thread at most

// Full unrolling keeps acc[] in registers under nvcc (constant indices); the emulator's g++ has no `#pragma unroll`.
#ifdef __CUDACC__
#define CA_UNROLL _Pragma("unroll")
#else
#define CA_UNROLL
#endif

__device__ static inline int ca_min(int a, int b) { return a < b ? a : b; }

template <typename E>
__global__ static void cached_attention_kernel(float *out, const float *q, const E *K, const E *V, const int *slot,
                                               const int *pos, int layer, int num_slots, int max_len, int Hq, int Hkv,
                                               int hd, float scale) {
    extern __shared__ float ca_smem[];
    int group = Hq / Hkv, chunks = (group + CA_GROUP - 1) / CA_GROUP, KD = Hkv * hd, ldk = hd + 1;
    int i = blockIdx.x, g = blockIdx.y / chunks, h0 = g * group + blockIdx.y % chunks * CA_GROUP;
    int gc = ca_min(CA_GROUP, (g + 1) * group - h0), len = pos[i] + 1, t = threadIdx.x;
    float *sK = ca_smem, *sV = sK + CA_TILE * ldk, *sq = sV + CA_TILE * hd, *sS = sq + CA_GROUP * hd;
    float *sM = sS + CA_GROUP * CA_TILE, *sL = sM + CA_GROUP, *sAlpha = sL + CA_GROUP;
    size_t base = ((size_t)layer * num_slots + slot[i]) * max_len * KD + (size_t)g * hd;
    for (int e = t; e < gc * hd; e += CA_THREADS) sq[e] = q[((size_t)i * Hq + h0) * hd + e];
    if (t < gc) sM[t] = -INFINITY, sL[t] = 0.0f;
    float acc[CA_NACC];
    CA_UNROLL
    for (int j = 0; j < CA_NACC; j++) acc[j] = 0.0f;
    for (int k0 = 0; k0 < len; k0 += CA_TILE) {
        int nk = ca_min(CA_TILE, len - k0);
        __syncthreads();  // the previous tile's K, V and probabilities are read by every thread
        for (int e = t; e < nk * hd; e += CA_THREADS) {
            int r = e / hd, d = e - r * hd;
            size_t at = base + (size_t)(k0 + r) * KD + d;
            sK[r * ldk + d] = kv_load(K, at);
            sV[r * hd + d] = kv_load(V, at);
        }
        __syncthreads();
        for (int p = t; p < gc * CA_TILE; p += CA_THREADS) {  // a warp: 32 keys of one head
            int hh = p / CA_TILE, key = p % CA_TILE;
            float dot = 0.0f;
            if (key < nk)
                for (int d = 0; d < hd; d++) dot += sq[hh * hd + d] * sK[key * ldk + d];
            sS[p] = key < nk ? dot * scale : -INFINITY;
        }
        __syncthreads();
        if (t < gc) {  // the head's softmax statistics; the tile's probabilities relative to the new max
            float *s = sS + t * CA_TILE, mx = sM[t], sum = 0.0f;
            for (int key = 0; key < nk; key++) mx = fmaxf(mx, s[key]);
            for (int key = 0; key < CA_TILE; key++) {
                s[key] = key < nk ? expf(s[key] - mx) : 0.0f;
                sum += s[key];
            }
            sAlpha[t] = expf(sM[t] - mx);  // 0 on the first tile (exp(-inf))
            sL[t] = sL[t] * sAlpha[t] + sum;
            sM[t] = mx;
        }
        __syncthreads();
        CA_UNROLL
        for (int j = 0; j < CA_NACC; j++) {
            int e = t + j * CA_THREADS;
            if (e >= gc * hd) break;
            int hh = e / hd, d = e - hh * hd;
            const float *pr = sS + hh * CA_TILE;
            float a = acc[j] * sAlpha[hh];
            for (int key = 0; key < nk; key++) a += pr[key] * sV[key * hd + d];
            acc[j] = a;
        }
    }
    // sL holds the final sums: written before the last tile's final barrier
    CA_UNROLL
    for (int j = 0; j < CA_NACC; j++) {
        int e = t + j * CA_THREADS;
        if (e >= gc * hd) break;
        out[((size_t)i * Hq + h0) * hd + e] = acc[j] / sL[e / hd];
    }
}

template <typename E>
static int launch_cached_attention(float *out, const float *q, const E *K, const E *V, const int *slot, const int *pos,
                                   int n, int layer, int num_slots, int max_len, int Hq, int Hkv, int hd, Error *err) {
    if (hd < 1 || hd > CA_MAX_HD || Hkv < 1 || Hq % Hkv != 0)
        return error_set(err, "cuda: cached attention: bad shape Hq %d Hkv %d hd %d (hd at most %d)", Hq, Hkv, hd,
                         CA_MAX_HD);
    int chunks = (Hq / Hkv + CA_GROUP - 1) / CA_GROUP;
    if (n == 0) return 0;
    if (Hkv * chunks > 65535) return error_set(err, "cuda: cached attention: %d kv heads above the grid limit", Hkv);
    size_t shared = sizeof(float) * ((size_t)CA_TILE * (2 * hd + 1) + (size_t)CA_GROUP * (hd + CA_TILE + 3));
    if (cuda_opt_in_shared(cached_attention_kernel<E>, shared, "cached attention", err)) return -1;
    cached_attention_kernel<E><<<dim3(n, Hkv * chunks), CA_THREADS, shared>>>(
        out, q, K, V, slot, pos, layer, num_slots, max_len, Hq, Hkv, hd, 1.0f / sqrtf((float)hd));
    return cuda_launch_check("cached attention", err);
}

int cuda_cached_attention(float *out, const float *q, const void *K, const void *V, int bf16, const int *slot,
                          const int *pos, int n, int layer, int num_slots, int max_len, int Hq, int Hkv, int hd,
                          Error *err) {
    if (bf16)
        return launch_cached_attention(out, q, (const __nv_bfloat16 *)K, (const __nv_bfloat16 *)V, slot, pos, n, layer,
                                       num_slots, max_len, Hq, Hkv, hd, err);
    return launch_cached_attention(out, q, (const float *)K, (const float *)V, slot, pos, n, layer, num_slots, max_len,
                                   Hq, Hkv, hd, err);
}
