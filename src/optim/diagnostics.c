#include "optim/diagnostics.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim/lapack_min.h"

int singular_values(const float *A, int rows, int cols, double *s, Error *err) {
    if (rows < 1 || cols < 1) return error_set(err, "singular_values: bad shape %d x %d", rows, cols);
    int r = rows < cols ? rows : cols, c = rows < cols ? cols : rows;
    size_t n = (size_t)rows * cols;
    double *Ad = malloc(n * sizeof(double)), *Gm = malloc((size_t)r * r * sizeof(double));
    double *w = malloc((size_t)r * sizeof(double));
    int *iwork = NULL;
    double *work = NULL;
    int rc = 0;
    if (!Ad || !Gm || !w) {
        rc = error_set(err, "singular_values: out of memory for %d x %d", rows, cols);
        goto done;
    }
    for (size_t i = 0; i < n; i++) Ad[i] = A[i];
    // Gram on the short side: rows <= cols -> A A^T, else A^T A.
    if (rows <= cols)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, r, c, 1.0, Ad, cols, Ad, cols, 0.0, Gm, r);
    else cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, r, c, 1.0, Ad, cols, Ad, cols, 0.0, Gm, r);
    int lwork = 1 + 2 * r, liwork = 1, info = 0;
    work = malloc((size_t)lwork * sizeof(double));
    iwork = malloc(sizeof(int));
    if (!work || !iwork) {
        rc = error_set(err, "singular_values: out of memory");
        goto done;
    }
    dsyevd_("N", "U", &r, Gm, &r, w, work, &lwork, iwork, &liwork, &info);
    if (info != 0) {
        rc = error_set(err, "singular_values: eigen solver failed (dsyevd info %d)", info);
        goto done;
    }
    for (int i = 0; i < r; i++) s[i] = sqrt(fmax(0.0, w[r - 1 - i]));
done:
    free(Ad), free(Gm), free(w), free(work), free(iwork);
    return rc;
}

double effective_rank_from_sv(const double *s, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += s[i];
    if (!(sum > 0.0)) return 0.0;
    double h = 0.0;
    for (int i = 0; i < n; i++) {
        double p = s[i] / sum;
        if (p > 0.0) h -= p * log(p);
    }
    return exp(h);
}

int effective_rank(const float *A, int rows, int cols, double *erank, Error *err) {
    int r = rows < cols ? rows : cols;
    if (r < 1) return error_set(err, "effective_rank: bad shape %d x %d", rows, cols);
    double *s = malloc((size_t)r * sizeof(double));
    if (!s) return error_set(err, "effective_rank: out of memory");
    int rc = singular_values(A, rows, cols, s, err);
    if (rc == 0) *erank = effective_rank_from_sv(s, r);
    free(s);
    return rc;
}

int grad_snr(const float *const *grads, int K, size_t n, GradSnr *out, Error *err) {
    if (K < 2) return error_set(err, "grad_snr: needs at least 2 micro-batch gradients, got %d", K);
    double mean_sq = 0.0, dev = 0.0;
    for (size_t i = 0; i < n; i++) {
        double g = 0.0;
        for (int k = 0; k < K; k++) g += grads[k][i];
        g /= K;
        mean_sq += g * g;
        for (int k = 0; k < K; k++) {
            double d = grads[k][i] - g;
            dev += d * d;
        }
    }
    out->mean_sq = mean_sq;
    out->var_sum = dev / (K - 1);
    out->snr = dev > 0.0 ? mean_sq / (dev / K) : INFINITY;
    out->snr_unbiased = out->var_sum > 0.0 ? (mean_sq - out->var_sum / K) / out->var_sum : INFINITY;
    return 0;
}

double rms(const float *x, size_t n) {
    if (n == 0) return 0.0;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return sqrt(ss / (double)n);
}

int head_norms(const float *W, const ParamInfo *p, double *norms, Error *err) {
    if (p->heads == HEADS_NONE || p->num_heads < 1 || p->head_dim < 1)
        return error_set(err, "head_norms: %s has no head split", p->name);
    int H = p->num_heads, hd = p->head_dim;
    if ((p->heads == HEADS_ROWS && H * hd != p->rows) || (p->heads == HEADS_COLS && H * hd != p->cols))
        return error_set(err, "head_norms: %s: %d heads x %d does not match %d x %d", p->name, H, hd, p->rows, p->cols);
    for (int h = 0; h < H; h++) norms[h] = 0.0;
    for (int i = 0; i < p->rows; i++)
        for (int j = 0; j < p->cols; j++) {
            double v = W[(size_t)i * p->cols + j];
            int h = p->heads == HEADS_ROWS ? i / hd : j / hd;
            norms[h] += v * v;
        }
    for (int h = 0; h < H; h++) norms[h] = sqrt(norms[h]);
    return 0;
}

void head_spread(const double *x, int n, HeadSpread *out) {
    memset(out, 0, sizeof *out);
    if (n < 1) return;
    double s = 0.0, mn = x[0], mx = x[0];
    for (int i = 0; i < n; i++) {
        s += x[i];
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    double mean = s / n, v = 0.0;
    for (int i = 0; i < n; i++) v += (x[i] - mean) * (x[i] - mean);
    out->mean = mean;
    out->std = sqrt(v / n);
    out->min = mn;
    out->max = mx;
    out->cv = mean > 0.0 ? out->std / mean : 0.0;
}
