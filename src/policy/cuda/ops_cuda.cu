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
    // activation shadows (cuda_blas_add_shadow): bf16 roundings the caller wrote next to fp32 arrays, used like the
    // weight copy until cleared
    struct {
        const float *base;
        const __nv_bfloat16 *copy;
        size_t n;
    } shadow[CUDA_BLAS_SHADOWS];
    int num_shadows;
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

int cuda_blas_add_shadow(CudaBlas *cb, const float *x, const void *x16, size_t n, Error *err) {
    if (cb->num_shadows == CUDA_BLAS_SHADOWS)
        return error_set(err, "cuda: more than %d bf16 operand shadows at once", CUDA_BLAS_SHADOWS);
    cb->shadow[cb->num_shadows].base = x;
    cb->shadow[cb->num_shadows].copy = (const __nv_bfloat16 *)x16;
    cb->shadow[cb->num_shadows].n = n;
    cb->num_shadows++;
    return 0;
}

void cuda_blas_clear_shadows(CudaBlas *cb) { cb->num_shadows = 0; }

// The bf16 view of X[0 .. span) inside a copy of base[0 .. n), or NULL when X is not wholly inside it (addresses
// compared as integers: X is usually not inside the array at all).
static const __nv_bfloat16 *copy_view(const float *base, const __nv_bfloat16 *copy, size_t n, const float *X,
                                      size_t span) {
    uintptr_t x = (uintptr_t)X, b = (uintptr_t)base;
    if (!copy || x < b || (x - b) % sizeof(float) != 0 || (x - b) / sizeof(float) + span > n) return NULL;
    return copy + (x - b) / sizeof(float);
}

// The resident bf16 form of X[0 .. span): the weight copy, else an activation shadow; NULL when there is none.
static const __nv_bfloat16 *resident_view(const CudaBlas *cb, const float *X, size_t span) {
    const __nv_bfloat16 *v = copy_view(cb->copy_base, cb->copy, cb->copy_n, X, span);
    for (int i = 0; i < cb->num_shadows && !v; i++)
        v = copy_view(cb->shadow[i].base, cb->shadow[i].copy, cb->shadow[i].n, X, span);
    return v;
}

// rows x cols of a column-major matrix with leading dimension ld, packed (leading dimension rows) as bf16
__global__ static void round_bf16_2d_kernel(__nv_bfloat16 *dst, const float *src, int rows, int cols, int ld) {
    size_t n = (size_t)rows * cols;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[(i / rows) * (size_t)ld + i % rows]);
}

// Elements from the first to the last of a rows x cols column-major matrix with leading dimension ld.
static size_t operand_span(int rows, int cols, int ld) {
    return rows > 0 && cols > 0 ? (size_t)ld * (cols - 1) + rows : 0;
}

// Operand X (stored rows x cols, column-major, leading dimension *ld) as bf16: a view into the weight copy or a
// shadow when X lies inside one, else rounded into scratch slot `slot` (*ld becomes rows).
static int bf16_operand(CudaBlas *cb, int slot, const float *X, int rows, int cols, int *ld, const void **out,
                        Error *err) {
    const __nv_bfloat16 *view = resident_view(cb, X, operand_span(rows, cols, *ld));
    if (view) {
        *out = view;
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

// bf16_operand for an operand of a strided batch: a shared one (stride 0) is rounded once as usual; a strided one must
// be resident over the whole batch, else *out is NULL.
static int batch_operand(CudaBlas *cb, int slot, const float *X, int rows, int cols, int *ld, long long stride,
                         int count, const void **out, Error *err) {
    if (stride == 0) return bf16_operand(cb, slot, X, rows, cols, ld, out, err);
    *out = resident_view(cb, X, operand_span(rows, cols, *ld) + (size_t)stride * (count - 1));
    return 0;
}

// count products C_j = alpha op(A_j) op(B_j) + beta C_j, X_j = X + j * sx (stride 0: one operand for all): one
// strided-batched cuBLAS call. In bf16 mode a strided operand must be resident (weight copy or shadow) over the whole
// batch for that; otherwise the products run one by one, with the same results.
static int gemm_batched(CudaBlas *cb, cublasOperation_t oa, cublasOperation_t ob, int m, int n, int k, float alpha,
                        const float *A, int lda, long long sa, const float *B, int ldb, long long sb, float beta,
                        float *C, int ldc, long long sc, int count, const char *what, Error *err) {
    if (!cb->bf16)
        return cuda_blas_check(
            cublasSgemmStridedBatched(cb->h, oa, ob, m, n, k, &alpha, A, lda, sa, B, ldb, sb, &beta, C, ldc, sc, count),
            what, err);
    const void *a16 = NULL, *b16 = NULL;
    int ra = oa == CUBLAS_OP_N ? m : k, ca = oa == CUBLAS_OP_N ? k : m;
    int rb = ob == CUBLAS_OP_N ? k : n, cbb = ob == CUBLAS_OP_N ? n : k;
    int la = lda, lb = ldb;
    if (batch_operand(cb, 0, A, ra, ca, &la, sa, count, &a16, err) ||
        batch_operand(cb, 1, B, rb, cbb, &lb, sb, count, &b16, err))
        return error_prefix(err, "%s", what);
    if (!a16 || !b16) {
        for (int j = 0; j < count; j++)
            if (gemm(cb, oa, ob, m, n, k, alpha, A + j * sa, lda, B + j * sb, ldb, beta, C + j * sc, ldc, what, err))
                return -1;
        return 0;
    }
    return cuda_blas_check(
        cublasGemmStridedBatchedEx(cb->h, oa, ob, m, n, k, &alpha, a16, CUDA_R_16BF, la, sa, b16, CUDA_R_16BF, lb, sb,
                                   &beta, C, CUDA_R_32F, ldc, sc, count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
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

// Entry j (blockIdx.y) of a batch of linear layers: out + j * so gets N copies of the bias b + j * sb.
__global__ static void rows_fill_kernel(float *out, size_t so, const float *b, size_t sb, int N, int O) {
    size_t n = (size_t)N * O;
    out += blockIdx.y * so, b += blockIdx.y * sb;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x)
        out[k] = b[k % O];
}

// The bias rows of `count` linear layers, before their products accumulate onto them.
static int fill_bias_rows(float *out, size_t so, const float *b, size_t sb, int count, int N, int O, Error *err) {
    rows_fill_kernel<<<dim3(cuda_grid_for((size_t)N * O), count), CUDA_THREADS>>>(out, so, b, sb, N, O);
    return cuda_launch_check("linear bias", err);
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
    if (b && fill_bias_rows(out, 0, b, 0, 1, N, O, err)) return -1;
    // out^T (O x N) = W (O x I) in^T: W is the column-major I x O matrix W^T, hence op T
    return gemm(cb, CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, one, W, I, in, I, beta, out, O, "linear forward", err);
}

int cuda_linear_forward_batched(CudaBlas *cb, float *out, size_t out_stride, const float *in, const float *W,
                                size_t w_stride, const float *b, size_t b_stride, int count, int N, int I, int O,
                                Error *err) {
    if (count < 1) return error_set(err, "cuda: batched linear: %d products", count);
    if (b && fill_bias_rows(out, out_stride, b, b_stride, count, N, O, err)) return -1;
    return gemm_batched(cb, CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, 1.0f, W, I, (long long)w_stride, in, I, 0,
                        b ? 1.0f : 0.0f, out, O, (long long)out_stride, count, "batched linear forward", err);
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

// y16 (optional): the bf16 rounding of y as well, for a following bf16 product (a shadow, cuda_blas_add_shadow)
__global__ static void rmsnorm_forward_kernel(float *y, __nv_bfloat16 *y16, float *rstd, const float *x, const float *w,
                                              int C, float eps) {
    size_t row = (size_t)blockIdx.x * C;
    const float *xr = x + row;
    double ss = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) ss += (double)xr[c] * xr[c];
    ss = cuda_block_sum(ss);
    float r = (float)(1.0 / sqrt(ss / C + eps));
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = xr[c] * r * w[c];
        y[row + c] = v;
        if (y16) y16[row + c] = __float2bfloat16_rn(v);
    }
}

int cuda_rmsnorm_forward(float *y, void *y16, float *rstd, const float *x, const float *w, int N, int C, float eps,
                         Error *err) {
    rmsnorm_forward_kernel<<<N, CUDA_THREADS>>>(y, (__nv_bfloat16 *)y16, rstd, x, w, C, eps);
    return cuda_launch_check("rmsnorm forward", err);
}

// dx16 (optional): the bf16 rounding of the final dx as well (a shadow for the product that reads it)
__global__ static void rmsnorm_dx_kernel(float *dx, __nv_bfloat16 *dx16, const float *dx_in, const float *dy,
                                         const float *x, const float *w, const float *rstd, int C) {
    size_t off = (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x];
    double dot = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)dy[off + c] * w[c] * x[off + c] * r;
    dot = cuda_block_sum(dot);
    float m = (float)(dot / C);
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float g = r * (dy[off + c] * w[c] - x[off + c] * r * m), v = dx_in ? dx_in[off + c] + g : g;
        dx[off + c] = v;
        if (dx16) dx16[off + c] = __float2bfloat16_rn(v);
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

int cuda_rmsnorm_backward(float *dx, void *dx16, const float *dx_in, float *dw, const float *dy, const float *x,
                          const float *w, const float *rstd, int N, int C, Error *err) {
    rmsnorm_dw_kernel<<<(C + CUDA_THREADS - 1) / CUDA_THREADS, CUDA_THREADS>>>(dw, dy, x, rstd, N, C);
    rmsnorm_dx_kernel<<<N, CUDA_THREADS>>>(dx, (__nv_bfloat16 *)dx16, dx_in, dy, x, w, rstd, C);
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

__global__ static void swiglu_forward_kernel(float *h, __nv_bfloat16 *h16, const float *g, const float *u, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float v = g[i] * sigmoid(g[i]) * u[i];
        h[i] = v;
        if (h16) h16[i] = __float2bfloat16_rn(v);
    }
}

__global__ static void swiglu_backward_kernel(float *dg, float *du, __nv_bfloat16 *dg16, __nv_bfloat16 *du16,
                                              const float *dh, const float *g, const float *u, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float s = sigmoid(g[i]), silu = g[i] * s;
        float a = dh[i] * silu, b = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] = a;
        dg[i] = b;
        if (du16) du16[i] = __float2bfloat16_rn(a);
        if (dg16) dg16[i] = __float2bfloat16_rn(b);
    }
}

int cuda_swiglu_forward(float *h, void *h16, const float *g, const float *u, long n, Error *err) {
    swiglu_forward_kernel<<<cuda_grid_for((size_t)n), CUDA_THREADS>>>(h, (__nv_bfloat16 *)h16, g, u, n);
    return cuda_launch_check("swiglu forward", err);
}

int cuda_swiglu_backward(float *dg, float *du, void *dg16, void *du16, const float *dh, const float *g, const float *u,
                         long n, Error *err) {
    swiglu_backward_kernel<<<cuda_grid_for((size_t)n), CUDA_THREADS>>>(dg, du, (__nv_bfloat16 *)dg16,
                                                                       (__nv_bfloat16 *)du16, dh, g, u, n);
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

__global__ static void logsoftmax_grad_rows_kernel(float *logits, __nv_bfloat16 *logits16, const int *target,
                                                   const float *weight, int V) {
    float *x = logits + (size_t)blockIdx.x * V;
    __nv_bfloat16 *x16 = logits16 ? logits16 + (size_t)blockIdx.x * V : NULL;
    int tgt = target[blockIdx.x];
    float wt = tgt < 0 ? 0.0f : weight[blockIdx.x];
    if (wt == 0.0f) {
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            x[i] = 0.0f;
            if (x16) x16[i] = __float2bfloat16_rn(0.0f);
        }
        return;
    }
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
    mx = cuda_block_max(mx);
    double sum = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(x[i] - mx);
    float inv = (float)(1.0 / cuda_block_sum(sum));
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float p = expf(x[i] - mx) * inv, g = (i == tgt ? wt : 0.0f) - wt * p;
        x[i] = g;
        if (x16) x16[i] = __float2bfloat16_rn(g);
    }
}

int cuda_logsoftmax_grad_rows(float *logits, void *logits16, const int *target, const float *weight, int N, int V,
                              Error *err) {
    logsoftmax_grad_rows_kernel<<<N, CUDA_THREADS>>>(logits, (__nv_bfloat16 *)logits16, target, weight, V);
    return cuda_launch_check("log-softmax gradient", err);
}

// ---- decode with a KV cache ----------------------------------------------------------------------

// Cache elements are float or bfloat16 (round to nearest even on store); arithmetic is fp32.
__device__ static inline float kv_load(const float *p, size_t i) { return p[i]; }
__device__ static inline float kv_load(const __nv_bfloat16 *p, size_t i) { return __bfloat162float(p[i]); }
__device__ static inline void kv_store(float *p, size_t i, float v) { p[i] = v; }
__device__ static inline void kv_store(__nv_bfloat16 *p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// The decode step's per-head work between the q/k/v products and attention, one block per (row, head): a q head is
// normed (qn) and rotated in place, a k head normed (kn) and rotated into the cache, a v head copied into it. The
// arithmetic is rmsnorm_forward_kernel's (a double sum of squares, y = x r w) then rope_kernel's, element for element,
// so this one launch replaces five (two norms, two rotations, the append).
enum { NRA_THREADS = 64 };

template <typename E>
__global__ static void norm_rope_append_kernel(float *q, const float *k, const float *v, E *K, E *V, const float *qn,
                                               const float *kn, float eps, const int *slot, const int *pos, int layer,
                                               int num_slots, int max_len, int Hq, int Hkv, int hd, double theta) {
    __shared__ double ss[NRA_THREADS];
    int i = blockIdx.x, h = blockIdx.y, t = threadIdx.x, half = hd / 2, KD = Hkv * hd;
    size_t at = (((size_t)layer * num_slots + slot[i]) * max_len + pos[i]) * KD;
    if (h >= Hq + Hkv) {
        size_t g = (size_t)(h - Hq - Hkv) * hd;
        for (int d = t; d < hd; d += NRA_THREADS) kv_store(V, at + g + d, v[(size_t)i * KD + g + d]);
        return;
    }
    int is_q = h < Hq;
    size_t g = (size_t)(is_q ? h : h - Hq) * hd;
    const float *src = is_q ? q + (size_t)i * Hq * hd + g : k + (size_t)i * KD + g, *w = is_q ? qn : kn;
    float r = 1.0f;
    if (w) {
        double acc = 0.0;
        for (int d = t; d < hd; d += NRA_THREADS) acc += (double)src[d] * src[d];
        ss[t] = acc;
        __syncthreads();
        for (int s = NRA_THREADS / 2; s > 0; s >>= 1) {
            if (t < s) ss[t] += ss[t + s];
            __syncthreads();
        }
        r = (float)(1.0 / sqrt(ss[0] / hd + eps));
    }
    for (int j = t; j < half; j += NRA_THREADS) {
        float a = src[j], b = src[j + half];
        if (w) a = a * r * w[j], b = b * r * w[j + half];
        float ang = (float)pos[i] * (float)pow(theta, -2.0 * j / hd);
        float c = cosf(ang), sn = sinf(ang), x0 = a * c - b * sn, x1 = b * c + a * sn;
        if (is_q) {
            q[(size_t)i * Hq * hd + g + j] = x0;
            q[(size_t)i * Hq * hd + g + j + half] = x1;
        } else {
            kv_store(K, at + g + j, x0);
            kv_store(K, at + g + j + half, x1);
        }
    }
}

int cuda_norm_rope_append(float *q, const float *k, const float *v, void *K, void *V, int bf16, const float *q_norm,
                          const float *k_norm, float eps, const int *slot, const int *pos, int n, int layer,
                          int num_slots, int max_len, int Hq, int Hkv, int hd, double theta, Error *err) {
    if (hd < 2 || hd % 2 || Hq < 1 || Hkv < 1 || Hq + 2 * Hkv > 65535 || !q_norm != !k_norm)
        return error_set(err, "cuda: norm/rope/append: bad shape Hq %d Hkv %d hd %d, or only one of q_norm/k_norm", Hq,
                         Hkv, hd);
    if (n == 0) return 0;
    dim3 grid(n, Hq + 2 * Hkv);
    if (bf16)
        norm_rope_append_kernel<<<grid, NRA_THREADS>>>(q, k, v, (__nv_bfloat16 *)K, (__nv_bfloat16 *)V, q_norm, k_norm,
                                                       eps, slot, pos, layer, num_slots, max_len, Hq, Hkv, hd, theta);
    else
        norm_rope_append_kernel<<<grid, NRA_THREADS>>>(q, k, v, (float *)K, (float *)V, q_norm, k_norm, eps, slot, pos,
                                                       layer, num_slots, max_len, Hq, Hkv, hd, theta);
    return cuda_launch_check("norm/rope/append", err);
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
__global__ static void cached_attention_kernel(float *out, __nv_bfloat16 *out16, const float *q, const E *K, const E *V,
                                               const int *slot, const int *pos, int layer, int num_slots, int max_len,
                                               int Hq, int Hkv, int hd, float scale) {
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
        size_t o = ((size_t)i * Hq + h0) * hd + e;
        float v = acc[j] / sL[e / hd];
        out[o] = v;
        if (out16) out16[o] = __float2bfloat16_rn(v);
    }
}

template <typename E>
static int launch_cached_attention(float *out, __nv_bfloat16 *out16, const float *q, const E *K, const E *V,
                                   const int *slot, const int *pos, int n, int layer, int num_slots, int max_len,
                                   int Hq, int Hkv, int hd, Error *err) {
    if (hd < 1 || hd > CA_MAX_HD || Hkv < 1 || Hq % Hkv != 0)
        return error_set(err, "cuda: cached attention: bad shape Hq %d Hkv %d hd %d (hd at most %d)", Hq, Hkv, hd,
                         CA_MAX_HD);
    int chunks = (Hq / Hkv + CA_GROUP - 1) / CA_GROUP;
    if (n == 0) return 0;
    if (Hkv * chunks > 65535) return error_set(err, "cuda: cached attention: %d kv heads above the grid limit", Hkv);
    size_t shared = sizeof(float) * ((size_t)CA_TILE * (2 * hd + 1) + (size_t)CA_GROUP * (hd + CA_TILE + 3));
    if (cuda_opt_in_shared(cached_attention_kernel<E>, shared, "cached attention", err)) return -1;
    cached_attention_kernel<E><<<dim3(n, Hkv * chunks), CA_THREADS, shared>>>(
        out, out16, q, K, V, slot, pos, layer, num_slots, max_len, Hq, Hkv, hd, 1.0f / sqrtf((float)hd));
    return cuda_launch_check("cached attention", err);
}

int cuda_cached_attention(float *out, void *out16, const float *q, const void *K, const void *V, int bf16,
                          const int *slot, const int *pos, int n, int layer, int num_slots, int max_len, int Hq,
                          int Hkv, int hd, Error *err) {
    __nv_bfloat16 *o16 = (__nv_bfloat16 *)out16;
    if (bf16)
        return launch_cached_attention(out, o16, q, (const __nv_bfloat16 *)K, (const __nv_bfloat16 *)V, slot, pos, n,
                                       layer, num_slots, max_len, Hq, Hkv, hd, err);
    return launch_cached_attention(out, o16, q, (const float *)K, (const float *)V, slot, pos, n, layer, num_slots,
                                   max_len, Hq, Hkv, hd, err);
}
