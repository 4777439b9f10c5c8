// Private to src/rl/loss_*.c: the per-family kernels behind loss_compute_f64. The batch has been
// checked and grad (when not NULL) zeroed before these run.
#ifndef PIONRL_LOSS_INTERNAL_H
#define PIONRL_LOSS_INTERNAL_H

#include "rl/loss.h"

int loss_grpo_f64(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *b, double *grad,
                  LossStats *stats);
int loss_gmpo_f64(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *b, double *grad,
                  LossStats *stats);

// k3 estimate of KL(policy || ref) per token and its derivative with respect to logp.
static inline double loss_k3(double ref, double logp) {
    double x = ref - logp;
    return exp(x) - x - 1;
}
static inline double loss_k3_grad(double ref, double logp) {
    return 1 - exp(ref - logp);
}

#endif
