// Cheap optimizer diagnostics (run every N steps): singular values and effective rank of a
// gradient / momentum matrix, gradient SNR over micro-batch gradients, update RMS, and per-head
// Frobenius norms of q/k projections with their spread across heads.
#ifndef PIONRL_DIAGNOSTICS_H
#define PIONRL_DIAGNOSTICS_H

#include <stddef.h>

#include "core/error.h"
#include "core/param.h"

// Singular values of A (rows x cols), descending, into s (min(rows, cols) values), from the
// eigenvalues of the short-side Gram matrix in double (LAPACK dsyevd). Values below
// ~1e-8 * s_max are not resolved (Gram squaring); erank does not need them.
int singular_values(const float *A, int rows, int cols, double *s, Error *err);
// erank = exp(H(p)), p_i = s_i / sum_j s_j (Roy & Vetterli); 0 for a zero matrix.
double effective_rank_from_sv(const double *s, int n);
int effective_rank(const float *A, int rows, int cols, double *erank, Error *err);

typedef struct {
    double mean_sq;       // ||g||^2 of the mean gradient g
    double var_sum;       // V = sum_k ||g_k - g||^2 / (K - 1) (unbiased total variance)
    double snr;           // ||g||^2 / (sum_k ||g_k - g||^2 / K), the plain ratio
    double snr_unbiased;  // (||g||^2 - V/K) / V, ||g||^2 bias-corrected by the noise in the mean
} GradSnr;

// SNR over K >= 2 micro-batch gradients of n values each (same parameters); grads[k] points at
// the k-th gradient (a whole buffer or one matrix's slice).
int grad_snr(const float *const *grads, int K, size_t n, GradSnr *out, Error *err);

// sqrt(mean(x^2)).
double rms(const float *x, size_t n);

typedef struct {
    double mean, std, min, max;
    double cv;  // std / mean
} HeadSpread;

// Frobenius norm of each head block of a HEADS_ROWS / HEADS_COLS matrix W (p->num_heads values).
int head_norms(const float *W, const ParamInfo *p, double *norms, Error *err);
void head_spread(const double *norms, int n, HeadSpread *out);

#endif
