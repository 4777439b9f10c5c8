// GRPO token loss as TRL's GRPOTrainer._compute_loss defines it, with the loss_type aggregations
// grpo / bnpo / dr_grpo / dapo. Per token (mask m, advantage A of the sequence):
//   rho = exp(logp - old_logp), c1 = min(rho, delta) when delta is set else rho,
//   c2 = clamp(rho, 1 - eps_low, 1 + eps_high), l = -min(c1 A, c2 A) + beta k3(ref, logp).
// The gradient follows PyTorch's autograd of that expression exactly, including its conventions
// at ties: torch.minimum splits the gradient in half between equal inputs, and clamp passes the
// gradient on the closed interval.
#include <math.h>
#include <stddef.h>

#include "rl/loss_internal.h"

// Per-token scale of the aggregation: token t of sequence i contributes scale * m_t * l_t.
static double token_scale(const LossConfig *cfg, const LossNorm *norm, double seq_tokens) {
    switch (cfg->type) {
    case LOSS_GRPO:  // mean over the sequence's tokens (clamped to >= 1), then over all sequences
        return 1.0 / ((seq_tokens > 1 ? seq_tokens : 1) * norm->num_seqs);
    case LOSS_DR_GRPO:  // constant normaliser: sequences x configured max completion length
        return 1.0 / (norm->num_seqs * norm->max_completion_length);
    default:  // bnpo, dapo: token mean over the whole batch (clamped to >= 1 token)
        return 1.0 / (norm->num_tokens > 1 ? norm->num_tokens : 1);
    }
}

int loss_grpo_f64(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *b, double *grad,
                  LossStats *stats) {
    const double lo = 1 - cfg->eps_low, hi = 1 + cfg->eps_high;
    for (int i = 0; i < b->num_seq; i++) {
        const double *logp = b->logp + (long)i * b->max_len, *old = b->old_logp + (long)i * b->max_len;
        const double *mask = b->mask + (long)i * b->max_len;
        const double *ref = b->ref_logp ? b->ref_logp + (long)i * b->max_len : NULL;
        double A = b->adv[i], seq_tokens = 0;
        for (int t = 0; t < b->max_len; t++) seq_tokens += mask[t];
        double scale = token_scale(cfg, norm, seq_tokens);
        stats->seqs += 1;
        for (int t = 0; t < b->max_len; t++) {
            double m = mask[t];
            if (m == 0) continue;
            double rho = exp(logp[t] - old[t]);
            double c1 = rho, dc1 = rho;  // value and d/dlogp of the (optionally capped) ratio
            if (cfg->delta != 0 && rho > cfg->delta) {
                c1 = cfg->delta;
                dc1 = 0;
            }
            double c2 = rho < lo ? lo : rho > hi ? hi : rho;
            double dc2 = (rho >= lo && rho <= hi) ? rho : 0;
            double t1 = c1 * A, t2 = c2 * A, pg, dpg;
            if (t1 < t2) {
                pg = -t1;
                dpg = -dc1 * A;
            } else if (t1 > t2) {
                pg = -t2;
                dpg = -dc2 * A;
            } else {
                pg = -t1;
                dpg = -0.5 * (dc1 + dc2) * A;
            }
            double kl = 0, dkl = 0;
            if (ref) {
                kl = loss_k3(ref[t], logp[t]);
                dkl = loss_k3_grad(ref[t], logp[t]);
            }
            double w = scale * m;
            stats->policy_loss += w * pg;
            stats->kl_loss += w * cfg->beta * kl;
            stats->loss += w * (pg + cfg->beta * kl);
            if (grad) grad[(long)i * b->max_len + t] = w * (dpg + cfg->beta * dkl);
            // Clip statistics as TRL counts them: tokens whose gradient the clip removes.
            stats->tokens += m;
            if (rho < lo && A < 0) stats->clip_low += m;
            if (rho > hi && A > 0) stats->clip_high += m;
            stats->ratio_sum += m * rho;
            if (rho > stats->ratio_max) stats->ratio_max = rho;
            stats->kl_sum += m * kl;
        }
    }
    return 0;
}
