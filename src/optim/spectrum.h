// Measures the scalar map f(sigma) of a Newton-Schulz schedule on a real matrix: builds
// A = U diag(sigma) V^T with random orthonormal U (rows x n), V (cols x n), n = min(rows, cols),
// runs the optimizer's orthogonalisation code on it and reads the output's singular value along
// each input singular direction, f_i = u_i^T Y v_i (an odd matrix polynomial keeps the singular
// vectors, so Y = U f(S) V^T; the largest |U^T Y V| off the diagonal is reported as a check).
// Used by `pionrl spectrum` and the tests.
#ifndef PIONRL_SPECTRUM_H
#define PIONRL_SPECTRUM_H

#include <stdint.h>

#include "core/error.h"
#include "optim/newton_schulz.h"

typedef struct {
    int n;              // number of singular values = min(rows, cols)
    double *sigma_in;   // the map's input per direction (sigma, or sigma / ||sigma|| when normalised)
    double *sigma_out;  // measured output along each input direction
    double *expected;   // ns_schedule_eval(sigma_in)
    double max_offdiag;
} SpectrumResult;

// sigma: n = min(rows, cols) prescribed singular values. normalize = 0 runs the iteration only
// (ns_iterate: the map on [0, 1] as given); normalize = 1 runs the full ns_orthogonalize with
// Frobenius normalisation, as the optimizer does.
int spectrum_measure(const NsSchedule *s, const double *sigma, int rows, int cols, int normalize, uint64_t seed,
                     SpectrumResult *out, Error *err);
void spectrum_result_free(SpectrumResult *r);

// Random matrix with n orthonormal columns (m x n, row-major, double), n <= m.
int random_orthonormal(int m, int n, uint64_t seed, double *Q, Error *err);

#endif
