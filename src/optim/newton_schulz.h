// Newton-Schulz engine: odd quintic matrix iterations X <- aX + (bA + cA^2)X, A = XX^T, applied
// with a schedule of (a, b, c) per step. Muon, Pion and the spectrum command all run this code.
// Acting on the singular values, one step maps sigma -> a sigma + b sigma^3 + c sigma^5 and keeps
// the singular vectors, so a schedule is a composed scalar polynomial (see ns_schedule_eval).
#ifndef PIONRL_NEWTON_SCHULZ_H
#define PIONRL_NEWTON_SCHULZ_H

#include <stddef.h>

#include "core/error.h"

#define NS_MAX_STEPS 16

typedef struct {
    int steps;
    float a[NS_MAX_STEPS], b[NS_MAX_STEPS], c[NS_MAX_STEPS];
} NsSchedule;

// Muon (Keller Jordan): 5 x (3.4445, -4.7750, 2.0315).
void ns_schedule_muon(NsSchedule *s);
// Pion: kp promotion steps (1.875, -1.25, 0.375), then 5 - kp suppression steps (0, 2.5, -1.5).
// kp must be in 0..5.
int ns_schedule_pion(int kp, NsSchedule *s, Error *err);
// Appends one (a, b, c) step; fails past NS_MAX_STEPS.
int ns_schedule_push(NsSchedule *s, float a, float b, float c, Error *err);
// The scalar map of the whole schedule, evaluated in double: f(x) = p_n(...p_1(x)).
double ns_schedule_eval(const NsSchedule *s, double x);

// Scratch memory for matrices with short side <= max_short and numel <= max_numel.
typedef struct {
    int max_short;
    size_t max_numel;
    float *X, *Y;  // short x long, or long x short for a tall matrix
    float *A, *B;  // short x short
    // 1: every product of the iteration takes bfloat16-rounded operands with fp32 sums (the optimizer's ns_dtype
    // bf16, as Muon implementations run Newton-Schulz on tensor cores); X, A, B stay fp32 between products
    int bf16;
} NsWork;

int ns_work_init(NsWork *w, int max_short, size_t max_numel, Error *err);
void ns_work_free(NsWork *w);
// Fails (with a message) when a rows x cols matrix does not fit the workspace.
int ns_work_check(const NsWork *w, int rows, int cols, Error *err);

// Runs the schedule in place on X (rows x cols, row-major, rows <= cols), without normalising.
// The caller guarantees the spectral norm is small enough for the polynomials (<= 1 for Pion).
int ns_iterate(const NsSchedule *s, float *X, int rows, int cols, NsWork *w, Error *err);

// Full orthogonalisation of one matrix: X = G / (||G||_F + eps), transposed to the short side,
// iterated, written back in G's orientation. G is rows x cols with row stride ldg; out has row
// stride ldo (so a column block of a wider matrix can be read and written in place).
int ns_orthogonalize(const NsSchedule *s, const float *G, int rows, int cols, int ldg, float *out, int ldo, float eps,
                     NsWork *w, Error *err);

// Same for `batch` contiguous rows x cols matrices (e.g. per-head blocks), each on its own.
int ns_orthogonalize_batched(const NsSchedule *s, const float *G, int batch, int rows, int cols, float *out, float eps,
                             NsWork *w, Error *err);

// Flops of the three plain GEMMs one iteration consists of, as Muon implementations run it (per
// step: 2r^2c for A, 2r^3 for A^2, 2r^2c for BX, with r the short side and c the long side).
double ns_gemm_flops(const NsSchedule *s, int rows, int cols);
// Flops this engine actually executes: A and A^2 through SYRK (r^2c and r^3), BX as a GEMM (2r^2c).
double ns_executed_flops(const NsSchedule *s, int rows, int cols);

#endif
