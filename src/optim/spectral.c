#include "optim/spectral.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "optim/lapack_min.h"

void sp_config_default(SpConfig *c) {
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->update_rms = 0.2f;
    c->map = SP_MAP_CAYLEY;
    c->alternate = 0;
}

// S = P - P^T is the skew generator; update the moments and write A = -m / (sqrt(v) + eps).
static void moments_and_generator(const float *P, int n, float *m, float *v, const SpConfig *c, double *A) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            size_t ij = (size_t)i * n + j;
            float s = P[ij] - P[(size_t)j * n + i];
            m[ij] = c->beta1 * m[ij] + (1.0f - c->beta1) * s;
            v[ij] = c->beta2 * v[ij] + (1.0f - c->beta2) * s * s;
            A[ij] = -(double)m[ij] / (sqrt((double)v[ij]) + (double)c->eps);
        }
}

// Solves M X = B for row-major M (n x n) and B (n x nrhs), X overwriting B, through LAPACK's
// column-major dgesv (transposed copies).
static int solve_rowmajor(int n, const double *M, double *B, int nrhs, Error *err) {
    double *Mc = malloc((size_t)n * n * sizeof(double));
    double *Bc = malloc((size_t)n * nrhs * sizeof(double));
    int *ipiv = malloc((size_t)n * sizeof(int));
    if (!Mc || !Bc || !ipiv) {
        free(Mc), free(Bc), free(ipiv);
        return error_set(err, "spectral: out of memory for a %d x %d solve", n, n);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) Mc[(size_t)j * n + i] = M[(size_t)i * n + j];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nrhs; j++) Bc[(size_t)j * n + i] = B[(size_t)i * nrhs + j];
    int info = 0;
    dgesv_(&n, &nrhs, Mc, &n, ipiv, Bc, &n, &info);
    if (info == 0)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nrhs; j++) B[(size_t)i * nrhs + j] = Bc[(size_t)j * n + i];
    free(Mc), free(Bc), free(ipiv);
    if (info != 0) return error_set(err, "spectral: Cayley solve failed (dgesv info %d)", info);
    return 0;
}

// X <- Cayley(B) X for skew B (n x n), X n x k, all row-major doubles:
// (I - B/2)^-1 (I + B/2) = 2 (I - B/2)^-1 - I, so X <- 2 Y - X with (I - B/2) Y = X.
static int cayley_left(const double *B, int n, double *X, int k, Error *err) {
    size_t nn = (size_t)n * n, nk = (size_t)n * k;
    double *M = malloc(nn * sizeof(double)), *Y = malloc(nk * sizeof(double));
    if (!M || !Y) {
        free(M), free(Y);
        return error_set(err, "spectral: out of memory");
    }
    for (size_t i = 0; i < nn; i++) M[i] = -0.5 * B[i];
    for (int i = 0; i < n; i++) M[(size_t)i * n + i] += 1.0;
    memcpy(Y, X, nk * sizeof(double));
    int rc = solve_rowmajor(n, M, Y, k, err);
    if (rc == 0)
        for (size_t i = 0; i < nk; i++) X[i] = 2.0 * Y[i] - X[i];
    free(M), free(Y);
    return rc;
}

// X <- E(B) X with E(B) = I + B + B^2/2 (degree-2 truncated exponential).
static int exp2_left(const double *B, int n, double *X, int k, Error *err) {
    size_t nk = (size_t)n * k;
    double *BX = malloc(nk * sizeof(double)), *BBX = malloc(nk * sizeof(double));
    if (!BX || !BBX) {
        free(BX), free(BBX);
        return error_set(err, "spectral: out of memory");
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, n, 1.0, B, n, X, k, 0.0, BX, k);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, n, 1.0, B, n, BX, k, 0.0, BBX, k);
    for (size_t i = 0; i < nk; i++) X[i] += BX[i] + 0.5 * BBX[i];
    free(BX), free(BBX);
    return 0;
}

static int apply_left(const SpConfig *c, const double *B, int n, double *X, int k, Error *err) {
    return c->map == SP_MAP_CAYLEY ? cayley_left(B, n, X, k, err) : exp2_left(B, n, X, k, err);
}

static void transpose_d(const double *in, int rows, int cols, double *out) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
}

int sp_update(float *W, const float *G, float *m_out, float *v_out, float *m_in, float *v_in, int rows, int cols,
              const SpConfig *c, float lr, long step, double *dsum, Error *err) {
    size_t oo = (size_t)rows * rows, ii = (size_t)cols * cols, n = (size_t)rows * cols;
    float *P = malloc((oo > ii ? oo : ii) * sizeof(float));
    double *Aout = calloc(oo, sizeof(double)), *Ain = calloc(ii, sizeof(double));
    double *Wd = malloc(n * sizeof(double)), *T = malloc(n * sizeof(double)), *D = malloc(n * sizeof(double));
    int rc = 0;
    *dsum = 0.0;
    if (!P || !Aout || !Ain || !Wd || !T || !D) {
        rc = error_set(err, "spectral: out of memory for a %d x %d matrix", rows, cols);
        goto done;
    }
    int use_out = !c->alternate || (step % 2 == 1), use_in = !c->alternate || (step % 2 == 0);
    // Moments are updated every step on both sides, so alternating only changes what is applied.
    sgemm(0, 1, rows, rows, cols, 1.0f, G, cols, W, cols, 0.0f, P, rows);  // G W^T
    moments_and_generator(P, rows, m_out, v_out, c, Aout);
    sgemm(1, 0, cols, cols, rows, 1.0f, W, cols, G, cols, 0.0f, P, cols);  // W^T G
    moments_and_generator(P, cols, m_in, v_in, c, Ain);
    if (!use_out) memset(Aout, 0, oo * sizeof(double));
    if (!use_in) memset(Ain, 0, ii * sizeof(double));

    for (size_t i = 0; i < n; i++) Wd[i] = W[i];
    // D = A_out W + W A_in, the first-order change; its RMS sets the step length.
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, rows, 1.0, Aout, rows, Wd, cols, 0.0, D, cols);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, cols, 1.0, Wd, cols, Ain, cols, 1.0, D, cols);
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += D[i] * D[i];
    double rms = sqrt(ss / (double)n);
    if (!(rms > 0.0) || !isfinite(rms)) goto done;  // zero gradient: nothing to rotate
    double t = (double)lr * c->update_rms / rms;
    for (size_t i = 0; i < oo; i++) Aout[i] *= t;
    for (size_t i = 0; i < ii; i++) Ain[i] *= t;

    if (use_out && (rc = apply_left(c, Aout, rows, Wd, cols, err))) goto done;
    if (use_in) {
        // W Map(A_in) = (Map(A_in)^T W^T)^T and Map(A)^T = Map(A^T) = Map(-A) for both maps.
        for (size_t i = 0; i < ii; i++) Ain[i] = -Ain[i];
        transpose_d(Wd, rows, cols, T);
        if ((rc = apply_left(c, Ain, cols, T, rows, err))) goto done;
        transpose_d(T, cols, rows, Wd);
    }
    double d2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        float nw = (float)Wd[i];
        double d = (double)nw - W[i];
        d2 += d * d;
        W[i] = nw;
    }
    *dsum = d2;
done:
    free(P), free(Aout), free(Ain), free(Wd), free(T), free(D);
    return rc;
}
