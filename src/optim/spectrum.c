#include "optim/spectrum.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

int random_orthonormal(int m, int n, uint64_t seed, double *Q, Error *err) {
    if (n < 1 || n > m) return error_set(err, "random_orthonormal: need 1 <= n <= m, got %d x %d", m, n);
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)m * n; i++) Q[i] = rng_normal(&rng);
    // Modified Gram-Schmidt on the columns, twice for orthogonality to double precision.
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < n; j++) {
            for (int k = 0; k < j; k++) {
                double d = 0.0;
                for (int i = 0; i < m; i++) d += Q[(size_t)i * n + j] * Q[(size_t)i * n + k];
                for (int i = 0; i < m; i++) Q[(size_t)i * n + j] -= d * Q[(size_t)i * n + k];
            }
            double nn = 0.0;
            for (int i = 0; i < m; i++) nn += Q[(size_t)i * n + j] * Q[(size_t)i * n + j];
            nn = sqrt(nn);
            if (!(nn > 1e-12)) return error_set(err, "random_orthonormal: degenerate column %d", j);
            for (int i = 0; i < m; i++) Q[(size_t)i * n + j] /= nn;
        }
    return 0;
}

void spectrum_result_free(SpectrumResult *r) {
    free(r->sigma_in);
    free(r->sigma_out);
    free(r->expected);
    memset(r, 0, sizeof *r);
}

int spectrum_measure(const NsSchedule *s, const double *sigma, int rows, int cols, int normalize, uint64_t seed,
                     SpectrumResult *out, Error *err) {
    memset(out, 0, sizeof *out);
    if (rows < 1 || cols < 1) return error_set(err, "spectrum: bad shape %d x %d", rows, cols);
    int n = rows < cols ? rows : cols;
    size_t rc_ = (size_t)rows * cols;
    double *U = malloc((size_t)rows * n * sizeof(double)), *V = malloc((size_t)cols * n * sizeof(double));
    double *US = malloc((size_t)rows * n * sizeof(double)), *Ad = malloc(rc_ * sizeof(double));
    double *T = malloc((size_t)n * cols * sizeof(double)), *P = malloc((size_t)n * n * sizeof(double));
    float *A = malloc(rc_ * sizeof(float)), *Y = malloc(rc_ * sizeof(float));
    NsWork w = {0};
    int rc = 0;
    out->n = n;
    out->sigma_in = malloc(n * sizeof(double));
    out->sigma_out = malloc(n * sizeof(double));
    out->expected = malloc(n * sizeof(double));
    if (!U || !V || !US || !Ad || !T || !P || !A || !Y || !out->sigma_in || !out->sigma_out || !out->expected) {
        rc = error_set(err, "spectrum: out of memory");
        goto done;
    }
    if ((rc = random_orthonormal(rows, n, seed, U, err)) || (rc = random_orthonormal(cols, n, seed + 1, V, err)))
        goto done;
    // A = U diag(sigma) V^T, built in double and rounded once to fp32.
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < n; k++) US[(size_t)i * n + k] = U[(size_t)i * n + k] * sigma[k];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, n, 1.0, US, n, V, n, 0.0, Ad, cols);
    for (size_t i = 0; i < rc_; i++) A[i] = (float)Ad[i];
    double fro = 0.0;
    for (int k = 0; k < n; k++) fro += sigma[k] * sigma[k];
    fro = sqrt(fro);
    if ((rc = ns_work_init(&w, n, rc_, err))) goto done;
    if (normalize) {
        rc = ns_orthogonalize(s, A, rows, cols, cols, Y, cols, 1e-7f, &w, err);
    } else if (rows <= cols) {
        memcpy(Y, A, rc_ * sizeof(float));
        rc = ns_iterate(s, Y, rows, cols, &w, err);
    } else {
        // ns_iterate works on the short side: iterate on A^T and transpose back.
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) Y[(size_t)j * rows + i] = A[(size_t)i * cols + j];
        rc = ns_iterate(s, Y, cols, rows, &w, err);
        if (rc == 0) {
            memcpy(A, Y, rc_ * sizeof(float));
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) Y[(size_t)i * cols + j] = A[(size_t)j * rows + i];
        }
    }
    if (rc) goto done;
    // P = U^T Y V (n x n): diagonal = f(sigma_i), off-diagonal ~ 0.
    for (size_t i = 0; i < rc_; i++) Ad[i] = Y[i];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, cols, rows, 1.0, U, n, Ad, cols, 0.0, T, cols);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, cols, 1.0, T, cols, V, n, 0.0, P, n);
    for (int i = 0; i < n; i++) {
        out->sigma_in[i] = normalize ? sigma[i] / (fro + 1e-7) : sigma[i];
        out->sigma_out[i] = P[(size_t)i * n + i];
        out->expected[i] = ns_schedule_eval(s, out->sigma_in[i]);
        for (int j = 0; j < n; j++)
            if (j != i && fabs(P[(size_t)i * n + j]) > out->max_offdiag) out->max_offdiag = fabs(P[(size_t)i * n + j]);
    }
done:
    free(U), free(V), free(US), free(Ad), free(T), free(P), free(A), free(Y);
    ns_work_free(&w);
    if (rc) spectrum_result_free(out);
    return rc;
}
