// Standard metric keys for the loss and advantage statistics; see metrics.h.
#include "rl/metrics.h"

#include <math.h>

int metrics_set_loss_stats(MetricsLine *line, const LossStats *s, int has_ref, int is_gmpo) {
    int rc = metrics_set(line, "loss", s->loss) | metrics_set(line, "policy_loss", s->policy_loss) |
             metrics_set(line, "clip_fraction", s->clip_frac) |
             metrics_set(line, "clip_fraction_low", s->clip_frac_low) |
             metrics_set(line, "clip_fraction_high", s->clip_frac_high) |
             metrics_set(line, "ratio_mean", s->ratio_mean) |
             metrics_set(line, "ratio_max", s->tokens > 0 ? s->ratio_max : NAN) |
             metrics_set(line, "loss_tokens", s->tokens);
    // Without a reference policy there is no KL to report (0 would read as "no drift").
    if (has_ref) rc |= metrics_set(line, "kl", s->kl_mean) | metrics_set(line, "kl_loss", s->kl_loss);
    if (is_gmpo) rc |= metrics_set(line, "seq_ratio_mean", s->seq_ratio_mean);
    return rc ? -1 : 0;
}

int metrics_set_advantage_stats(MetricsLine *line, const AdvantageStats *s) {
    int rc = metrics_set(line, "reward_mean", s->reward_mean) | metrics_set(line, "reward_std", s->reward_std) |
             metrics_set(line, "reward_group_std_mean", s->group_std_mean) |
             metrics_set_int(line, "zero_variance_groups", s->zero_variance_groups) |
             metrics_set(line, "zero_variance_fraction",
                         s->num_groups > 0 ? (double)s->zero_variance_groups / s->num_groups : NAN) |
             metrics_set(line, "advantage_abs_mean", s->adv_abs_mean);
    return rc ? -1 : 0;
}
