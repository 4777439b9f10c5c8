// GMPO (Geometric-Mean Policy Optimization, arXiv 2507.20673), as in the reference code
// (callsys/GMPO train_zero_math_gmpo.py) and verl's `geo_mean` policy loss. Per sequence i with
// sequence advantage A and s = sign(A):
//   d_t = logp - old_logp, c_t = clamp(d_t, -eps_low, eps_high), d'_t = s * min(s d_t, s c_t),
//   R_i = exp(sum_t m_t d'_t / sum_t m_t), l_i = -A R_i,  loss = sum_i l_i / (batch sequences).
// The sign-aware min keeps the unclipped log-ratio whenever moving it is pessimistic for the
// objective, so the gradient is cut only where A > 0 and d > eps_high or A < 0 and d < -eps_low.
// Optional beta * k3 KL is added as a token mean over the whole batch (verl's kl_loss default).
#include <math.h>
#include <stddef.h>

#include "rl/loss_internal.h"

int loss_gmpo_f64(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *b, double *grad,
                  LossStats *stats) {
    const double kl_scale = 1.0 / (norm->num_tokens > 1 ? norm->num_tokens : 1);
    for (int i = 0; i < b->num_seq; i++) {
        long row = (long)i * b->max_len;
        const double *logp = b->logp + row, *old = b->old_logp + row, *mask = b->mask + row;
        const double *ref = b->ref_logp ? b->ref_logp + row : NULL;
        double A = b->adv[i], s = A > 0 ? 1 : A < 0 ? -1 : 0;
        double M = 0, sum = 0;
        for (int t = 0; t < b->max_len; t++) {
            double m = mask[t];
            if (m == 0) continue;
            double d = logp[t] - old[t];
            double c = d < -cfg->eps_low ? -cfg->eps_low : d > cfg->eps_high ? cfg->eps_high : d;
            double sd = s * d, sc = s * c;
            sum += m * s * (sd < sc ? sd : sc);
            M += m;
        }
        stats->seqs += 1;
        // An empty completion contributes nothing (verl: its masked-mean advantage is 0).
        double R = M > 0 ? exp(sum / M) : 1;
        double li = M > 0 ? -A * R / norm->num_seqs : 0;
        stats->policy_loss += li;
        stats->loss += li;
        stats->seq_ratio_sum += R;
        for (int t = 0; t < b->max_len; t++) {
            double m = mask[t];
            if (m == 0) continue;
            double d = logp[t] - old[t], rho = exp(d);
            double c = d < -cfg->eps_low ? -cfg->eps_low : d > cfg->eps_high ? cfg->eps_high : d;
            // d d'_t / d logp_t: 1 while the unclipped term is the min (ties included: inside the
            // clip range both branches carry gradient 1), 0 where the clipped constant wins.
            double gate = (s != 0 && s * d <= s * c) ? 1 : 0;
            double kl = 0, dkl = 0;
            if (ref) {
                kl = loss_k3(ref[t], logp[t]);
                dkl = loss_k3_grad(ref[t], logp[t]);
            }
            stats->kl_loss += kl_scale * m * cfg->beta * kl;
            stats->loss += kl_scale * m * cfg->beta * kl;
            if (grad)
                grad[row + t] = -A * R * m * gate / (M * norm->num_seqs) + kl_scale * m * cfg->beta * dkl;
            stats->tokens += m;
            if (A > 0 && d > cfg->eps_high) stats->clip_high += m;
            if (A < 0 && d < -cfg->eps_low) stats->clip_low += m;
            stats->ratio_sum += m * rho;
            if (rho > stats->ratio_max) stats->ratio_max = rho;
            stats->kl_sum += m * kl;
        }
    }
    return 0;
}
