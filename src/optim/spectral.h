// Spectrum-preserving Pion (orthogonal equivalence, after Sphere-AI-Lab/pion): W <- R W P with
// orthogonal R (out x out) and P (in x in), so the singular values of W never change; only its
// singular vectors rotate. The generators come from the Riemannian gradient on the set of
// matrices with W's singular values:
//   G_out = G W^T - W G^T (out x out, skew), G_in = W^T G - G^T W (in x in, skew);
//   Adam-style moments (no bias correction): m <- b1 m + (1-b1) G_x, v <- b2 v + (1-b2) G_x^2;
//   A_x = -m_x / (sqrt(v_x) + eps) (skew, elementwise ratio of a skew and a symmetric matrix);
//   t = lr * update_rms / RMS(A_out W + W A_in) (the first-order change has RMS lr * update_rms);
//   W <- Map(t A_out) W Map(t A_in), Map = Cayley (I - B/2)^-1 (I + B/2) (exactly orthogonal, the
//   default) or the reference's truncated exponential I + B + B^2/2 (orthogonal only to O(B^4)).
// No weight decay (it would change the singular values). State: out^2 + in^2 floats for each of m, v.
#ifndef PIONRL_SPECTRAL_H
#define PIONRL_SPECTRAL_H

#include "core/error.h"

typedef enum { SP_MAP_CAYLEY, SP_MAP_EXP2 } SpMap;

typedef struct {
    float beta1, beta2, eps;
    float update_rms;  // c in "RMS of the first-order change = lr * c" (0.2)
    SpMap map;
    int alternate;  // 1: odd steps rotate the output side only, even steps the input side only
} SpConfig;

void sp_config_default(SpConfig *c);

// One step on W (rows x cols) with gradient G. m_out, v_out: rows*rows; m_in, v_in: cols*cols.
// step is 1-based. *dsum receives the sum of squared changes of W. Fails only on memory or a
// singular solve (which cannot happen for a skew generator).
int sp_update(float *W, const float *G, float *m_out, float *v_out, float *m_in, float *v_in, int rows, int cols,
              const SpConfig *c, float lr, long step, double *dsum, Error *err);

#endif
