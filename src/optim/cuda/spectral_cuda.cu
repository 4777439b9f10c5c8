// sp_update (src/optim/spectral.c) on the GPU; see spectral_cuda.h. Every step of the CPU code has a twin here, in
// the same precision: the Riemannian gradients G W^T and W^T G in fp32, the moments in fp32, the generators, the
// first-order change and the rotation in fp64. Row-major matrices go to column-major cuBLAS/cuSOLVER as transposes.
#include "optim/spectral_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <math.h>
#include <stdlib.h>

#include "core/cuda/cuda_common.cuh"
#include "core/cuda_ops.h"

struct CudaSpectral {
    cublasHandle_t blas;
    cusolverDnHandle_t solver;
    int max_rows, max_cols, max_n, lwork;
    float *P;                // max_n^2: G W^T, then W^T G
    double *Aout, *Ain, *M;  // generators (rows^2, cols^2) and the LU factors (max_n^2)
    double *Wd, *T, *D;      // W in fp64, its transpose, the first-order change (rows * cols each)
    double *Xc, *E1, *E2;    // a column-major right-hand side; B X and B B X of the exp2 map
    double *work, *ss;       // cuSOLVER workspace; sum of squares of D
    int *ipiv, *info;
};

static int solver_ok(cusolverStatus_t rc, const char *what, Error *err) {
    return rc == CUSOLVER_STATUS_SUCCESS
               ? 0
               : error_set(err, "cuda spectral: %s failed (cuSOLVER status %d)", what, (int)rc);
}

void cuda_sp_free(CudaSpectral *s) {
    if (!s) return;
    if (s->blas) cublasDestroy(s->blas);
    if (s->solver) cusolverDnDestroy(s->solver);
    void *bufs[] = {s->P,  s->Aout, s->Ain, s->M,    s->Wd, s->T,    s->D,
                    s->Xc, s->E1,   s->E2,  s->work, s->ss, s->ipiv, s->info};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_release(bufs[i]);
    free(s);
}

int cuda_sp_create(int max_rows, int max_cols, CudaSpectral **out, Error *err) {
    *out = NULL;
    if (max_rows < 1 || max_cols < 1) return error_set(err, "cuda spectral: bad size %d x %d", max_rows, max_cols);
    CudaSpectral *s = (CudaSpectral *)calloc(1, sizeof *s);
    if (!s) return error_set(err, "cuda spectral: out of memory");
    s->max_rows = max_rows, s->max_cols = max_cols, s->max_n = max_rows > max_cols ? max_rows : max_cols;
    size_t nn = (size_t)s->max_n * s->max_n, rc = (size_t)max_rows * max_cols, d = sizeof(double);
    int bad = cuda_blas_check(cublasCreate(&s->blas), "cublasCreate", err) ||
              cuda_blas_check(cublasSetStream(s->blas, cudaStreamPerThread), "cublasSetStream", err) ||
              cuda_blas_check(cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", err) ||
              solver_ok(cusolverDnCreate(&s->solver), "cusolverDnCreate", err) ||
              solver_ok(cusolverDnSetStream(s->solver, cudaStreamPerThread), "cusolverDnSetStream", err) ||
              cuda_alloc((void **)&s->P, sizeof(float) * nn, err) ||
              cuda_alloc((void **)&s->Aout, d * max_rows * max_rows, err) ||
              cuda_alloc((void **)&s->Ain, d * max_cols * max_cols, err) || cuda_alloc((void **)&s->M, d * nn, err) ||
              cuda_alloc((void **)&s->Wd, d * rc, err) || cuda_alloc((void **)&s->T, d * rc, err) ||
              cuda_alloc((void **)&s->D, d * rc, err) || cuda_alloc((void **)&s->Xc, d * rc, err) ||
              cuda_alloc((void **)&s->E1, d * rc, err) || cuda_alloc((void **)&s->E2, d * rc, err) ||
              cuda_alloc((void **)&s->ss, d, err) || cuda_alloc((void **)&s->ipiv, sizeof(int) * s->max_n, err) ||
              cuda_alloc((void **)&s->info, sizeof(int), err) ||
              solver_ok(cusolverDnDgetrf_bufferSize(s->solver, s->max_n, s->max_n, s->M, s->max_n, &s->lwork),
                        "getrf buffer size", err) ||
              cuda_alloc((void **)&s->work, d * (s->lwork > 0 ? s->lwork : 1), err);
    if (bad) {
        cuda_sp_free(s);
        return error_prefix(err, "cuda spectral workspace (%d x %d)", max_rows, max_cols);
    }
    *out = s;
    return 0;
}

// Row-major C (m x n) = alpha op(A) op(B) + beta C: the column-major product of the transposes.
static int rm_sgemm(CudaSpectral *s, int ta, int tb, int m, int n, int k, const float *A, int lda, const float *B,
                    int ldb, float *C, int ldc, Error *err) {
    const float one = 1.0f, zero = 0.0f;
    return cuda_blas_check(cublasSgemm(s->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                                       &one, B, ldb, A, lda, &zero, C, ldc),
                           "spectral sgemm", err);
}

static int rm_dgemm(CudaSpectral *s, int m, int n, int k, const double *A, int lda, const double *B, int ldb,
                    double beta, double *C, int ldc, Error *err) {
    const double one = 1.0;
    return cuda_blas_check(cublasDgemm(s->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, B, ldb, A, lda, &beta, C, ldc),
                           "spectral dgemm", err);
}

// The skew part S = P - P^T updates the moments; A = -m / (sqrt(v) + eps), or 0 when this side is not applied.
__global__ static void moments_kernel(const float *P, int n, float *m, float *v, double *A, float b1, float b2,
                                      float eps, int apply) {
    size_t nn = (size_t)n * n;
    for (size_t ij = (size_t)blockIdx.x * blockDim.x + threadIdx.x; ij < nn; ij += (size_t)gridDim.x * blockDim.x) {
        size_t i = ij / n, j = ij % n;
        float sk = P[ij] - P[j * n + i];
        m[ij] = b1 * m[ij] + (1.0f - b1) * sk;
        v[ij] = b2 * v[ij] + (1.0f - b2) * sk * sk;
        A[ij] = apply ? -(double)m[ij] / (sqrt((double)v[ij]) + (double)eps) : 0.0;
    }
}

__global__ static void to_double_kernel(double *dst, const float *src, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = src[i];
}

__global__ static void sum_squares_kernel(const double *x, size_t n, double *out) {
    double local = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        local += x[i] * x[i];
    local = cuda_block_sum(local);
    if (threadIdx.x == 0) atomicAdd(out, local);
}

// A <- t A with t = lr * update_rms / RMS(D) (RMS from the sum of squares *ss over count elements); a zero or
// non-finite RMS (no gradient) leaves nothing to rotate: A <- 0, so the maps are the identity.
__global__ static void scale_generator_kernel(double *A, size_t n, const double *ss, size_t count, float lr,
                                              float update_rms, double sign) {
    double rms = sqrt(*ss / (double)count);
    int ok = rms > 0.0 && isfinite(rms);
    double t = ok ? (double)lr * update_rms / rms : 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        A[i] = ok ? sign * A[i] * t : 0.0;
}

// out (cols x rows) = in (rows x cols)^T, row-major doubles.
__global__ static void transpose_kernel(double *out, const double *in, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        size_t i = e / cols, j = e % cols;
        out[j * rows + i] = in[e];
    }
}

// Column-major M = I - B/2 for row-major B (n x n).
__global__ static void cayley_matrix_kernel(double *M, const double *B, int n) {
    size_t nn = (size_t)n * n;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < nn; e += (size_t)gridDim.x * blockDim.x) {
        size_t i = e / n, j = e % n;  // B's (i, j) goes to column j, row i
        M[j * n + i] = (i == j ? 1.0 : 0.0) - 0.5 * B[e];
    }
}

// X (row-major n x k) <- 2 Y - X with Y the column-major solution.
__global__ static void cayley_finish_kernel(double *X, const double *Yc, int n, int k) {
    size_t nk = (size_t)n * k;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < nk; e += (size_t)gridDim.x * blockDim.x) {
        size_t i = e / k, j = e % k;
        X[e] = 2.0 * Yc[j * n + i] - X[e];
    }
}

__global__ static void exp2_finish_kernel(double *X, const double *BX, const double *BBX, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        X[i] += BX[i] + 0.5 * BBX[i];
}

// W <- fp32(Wd), adding the squared changes to *dsum.
__global__ static void write_back_kernel(float *W, const double *Wd, size_t n, double *dsum) {
    double local = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float nw = (float)Wd[i];
        double d = (double)nw - W[i];
        local += d * d;
        W[i] = nw;
    }
    local = cuda_block_sum(local);
    if (threadIdx.x == 0) atomicAdd(dsum, local);
}

// X (row-major n x k) <- Map(B) X: Cayley (I - B/2)^-1 (I + B/2) = 2 (I - B/2)^-1 - I through an LU solve, or
// I + B + B^2/2.
static int apply_left(CudaSpectral *s, const SpConfig *c, const double *B, int n, double *X, int k, Error *err) {
    size_t nn = (size_t)n * n, nk = (size_t)n * k;
    if (c->map == SP_MAP_EXP2) {
        if (rm_dgemm(s, n, k, n, B, n, X, k, 0.0, s->E1, k, err) ||
            rm_dgemm(s, n, k, n, B, n, s->E1, k, 0.0, s->E2, k, err))
            return -1;
        exp2_finish_kernel<<<cuda_grid_for(nk), CUDA_THREADS>>>(X, s->E1, s->E2, nk);
        return cuda_launch_check("spectral exp2", err);
    }
    cayley_matrix_kernel<<<cuda_grid_for(nn), CUDA_THREADS>>>(s->M, B, n);
    transpose_kernel<<<cuda_grid_for(nk), CUDA_THREADS>>>(s->Xc, X, n, k);  // column-major n x k
    if (cuda_launch_check("spectral cayley", err) ||
        solver_ok(cusolverDnDgetrf(s->solver, n, n, s->M, n, s->work, s->ipiv, s->info), "getrf", err) ||
        solver_ok(cusolverDnDgetrs(s->solver, CUBLAS_OP_N, n, k, s->M, n, s->ipiv, s->Xc, n, s->info), "getrs", err))
        return -1;
    cayley_finish_kernel<<<cuda_grid_for(nk), CUDA_THREADS>>>(X, s->Xc, n, k);
    return cuda_launch_check("spectral cayley", err);
}

int cuda_sp_update(CudaSpectral *s, float *W, const float *G, float *m_out, float *v_out, float *m_in, float *v_in,
                   int rows, int cols, const SpConfig *c, float lr, long step, double *d_dsum, Error *err) {
    if (rows < 1 || cols < 1 || rows > s->max_rows || cols > s->max_cols)
        return error_set(err, "cuda spectral: %d x %d exceeds the workspace (%d x %d)", rows, cols, s->max_rows,
                         s->max_cols);
    size_t oo = (size_t)rows * rows, ii = (size_t)cols * cols, n = (size_t)rows * cols;
    int use_out = !c->alternate || (step % 2 == 1), use_in = !c->alternate || (step % 2 == 0);
    // moments on both sides every step; alternating only changes what is applied
    if (rm_sgemm(s, 0, 1, rows, rows, cols, G, cols, W, cols, s->P, rows, err)) return -1;  // G W^T
    moments_kernel<<<cuda_grid_for(oo), CUDA_THREADS>>>(s->P, rows, m_out, v_out, s->Aout, c->beta1, c->beta2, c->eps,
                                                        use_out);
    if (cuda_launch_check("spectral moments", err) ||
        rm_sgemm(s, 1, 0, cols, cols, rows, W, cols, G, cols, s->P, cols, err))  // W^T G
        return -1;
    moments_kernel<<<cuda_grid_for(ii), CUDA_THREADS>>>(s->P, cols, m_in, v_in, s->Ain, c->beta1, c->beta2, c->eps,
                                                        use_in);
    to_double_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(s->Wd, W, n);
    // D = A_out W + W A_in, the first-order change; its RMS sets the step length
    if (cuda_launch_check("spectral moments", err) ||
        rm_dgemm(s, rows, cols, rows, s->Aout, rows, s->Wd, cols, 0.0, s->D, cols, err) ||
        rm_dgemm(s, rows, cols, cols, s->Wd, cols, s->Ain, cols, 1.0, s->D, cols, err) ||
        cuda_zero(s->ss, sizeof(double), err))
        return -1;
    sum_squares_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(s->D, n, s->ss);
    scale_generator_kernel<<<cuda_grid_for(oo), CUDA_THREADS>>>(s->Aout, oo, s->ss, n, lr, c->update_rms, 1.0);
    // W Map(A_in) = (Map(-A_in) W^T)^T for both maps: the input side is applied to W^T with the generator negated
    scale_generator_kernel<<<cuda_grid_for(ii), CUDA_THREADS>>>(s->Ain, ii, s->ss, n, lr, c->update_rms, -1.0);
    if (cuda_launch_check("spectral step length", err)) return -1;
    if (use_out && apply_left(s, c, s->Aout, rows, s->Wd, cols, err)) return -1;
    if (use_in) {
        transpose_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(s->T, s->Wd, rows, cols);
        if (cuda_launch_check("spectral transpose", err) || apply_left(s, c, s->Ain, cols, s->T, rows, err)) return -1;
        transpose_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(s->Wd, s->T, cols, rows);
    }
    write_back_kernel<<<cuda_grid_for(n), CUDA_THREADS>>>(W, s->Wd, n, d_dsum);
    return cuda_launch_check("spectral write back", err);
}
