// Shared parts of the losses: configuration, batch normalisers, statistics, and the float entry
// point that converts a micro-batch to double and dispatches to GRPO or GMPO.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl/loss.h"
#include "rl/loss_internal.h"

static const char *const LOSS_NAMES[] = {"grpo", "bnpo", "dr_grpo", "dapo", "gmpo"};

void loss_config_default(LossConfig *cfg, LossType type) {
    memset(cfg, 0, sizeof *cfg);
    cfg->type = type;
    // TRL: epsilon = 0.2, epsilon_high defaults to epsilon. GMPO code: clip range 0.4 in log space.
    cfg->eps_low = cfg->eps_high = type == LOSS_GMPO ? 0.4 : 0.2;
}

int loss_type_parse(const char *name, LossType *out, Error *err) {
    for (int i = 0; i < 5; i++)
        if (strcmp(name, LOSS_NAMES[i]) == 0) {
            *out = (LossType)i;
            return 0;
        }
    return error_set(err, "unknown loss_type '%s' (expected grpo, bnpo, dr_grpo, dapo or gmpo)", name);
}

const char *loss_type_name(LossType type) {
    return (unsigned)type < 5 ? LOSS_NAMES[type] : "unknown";
}

int loss_config_check(const LossConfig *cfg, Error *err) {
    if ((unsigned)cfg->type >= 5) return error_set(err, "loss: invalid loss type %d", (int)cfg->type);
    if (!(cfg->eps_low >= 0) || !(cfg->eps_high >= 0) || !isfinite(cfg->eps_low) || !isfinite(cfg->eps_high))
        return error_set(err, "loss: eps_low and eps_high must be finite and >= 0 (got %g, %g)", cfg->eps_low,
                         cfg->eps_high);
    if (cfg->type != LOSS_GMPO && cfg->eps_low > 1)
        return error_set(err, "loss: eps_low must be <= 1 for a ratio clip (got %g)", cfg->eps_low);
    if (cfg->delta != 0) {
        if (cfg->type == LOSS_GMPO) return error_set(err, "loss: delta (two-sided clipping) applies to GRPO losses only");
        if (!(cfg->delta > 1 + cfg->eps_high) || !isfinite(cfg->delta))
            return error_set(err, "loss: delta must be > 1 + eps_high = %g (got %g)", 1 + cfg->eps_high, cfg->delta);
    }
    if (!(cfg->beta >= 0) || !isfinite(cfg->beta))
        return error_set(err, "loss: beta must be finite and >= 0 (got %g)", cfg->beta);
    if (cfg->type == LOSS_DR_GRPO && cfg->max_completion_length <= 0)
        return error_set(err, "loss: dr_grpo needs max_completion_length > 0");
    return 0;
}

void loss_norm_init(LossNorm *norm, int max_completion_length) {
    norm->num_seqs = 0;
    norm->num_tokens = 0;
    norm->max_completion_length = max_completion_length;
}

void loss_norm_add(LossNorm *norm, const float *mask, int num_seq, int max_len) {
    double tokens = 0;
    for (long i = 0; i < (long)num_seq * max_len; i++) tokens += mask[i];
    norm->num_seqs += num_seq;
    norm->num_tokens += tokens;
}

void loss_stats_init(LossStats *s) {
    memset(s, 0, sizeof *s);
    s->ratio_max = -INFINITY;
}

void loss_stats_merge(LossStats *into, const LossStats *from) {
    into->loss += from->loss;
    into->policy_loss += from->policy_loss;
    into->kl_loss += from->kl_loss;
    into->tokens += from->tokens;
    into->seqs += from->seqs;
    into->clip_low += from->clip_low;
    into->clip_high += from->clip_high;
    into->ratio_sum += from->ratio_sum;
    if (from->ratio_max > into->ratio_max) into->ratio_max = from->ratio_max;
    into->kl_sum += from->kl_sum;
    into->seq_ratio_sum += from->seq_ratio_sum;
}

void loss_stats_finish(LossStats *s) {
    // A batch without tokens has no defined means: NaN, which the metrics writer turns into null.
    double t = s->tokens > 0 ? s->tokens : NAN;
    s->clip_frac_low = s->clip_low / t;
    s->clip_frac_high = s->clip_high / t;
    s->clip_frac = (s->clip_low + s->clip_high) / t;
    s->ratio_mean = s->ratio_sum / t;
    s->kl_mean = s->kl_sum / t;
    s->seq_ratio_mean = s->seqs > 0 ? s->seq_ratio_sum / s->seqs : NAN;
}

// Checks that do not depend on the values: configuration, shape, the reference, the normaliser.
static int check_setup(const LossConfig *cfg, const LossNorm *norm, int num_seq, int max_len, int has_ref,
                       Error *err) {
    if (loss_config_check(cfg, err)) return -1;
    if (num_seq < 0 || max_len < 0) return error_set(err, "loss: negative batch shape [%d, %d]", num_seq, max_len);
    if (cfg->beta != 0 && !has_ref) return error_set(err, "loss: beta = %g needs ref_logp", cfg->beta);
    if (!(norm->num_seqs >= num_seq) || !(norm->num_tokens >= 0))
        return error_set(err, "loss: LossNorm covers %g sequences but the micro-batch has %d (compute it "
                         "from the whole batch)", norm->num_seqs, num_seq);
    if (cfg->type == LOSS_DR_GRPO && norm->max_completion_length <= 0)
        return error_set(err, "loss: dr_grpo needs LossNorm.max_completion_length > 0");
    return 0;
}

static int check_batch(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *b, Error *err) {
    if (!b->logp || !b->old_logp || !b->mask || !b->adv)
        return error_set(err, "loss: logp, old_logp, mask and adv are required");
    if (check_setup(cfg, norm, b->num_seq, b->max_len, b->ref_logp != NULL, err)) return -1;
    for (long i = 0; i < (long)b->num_seq * b->max_len; i++)
        if (!(b->mask[i] >= 0)) return error_set(err, "loss: mask[%ld] = %g is negative or NaN", i, b->mask[i]);
    return 0;
}

int loss_compute_f64(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *batch, double *grad,
                     LossStats *stats, Error *err) {
    if (check_batch(cfg, norm, batch, err)) return -1;
    if (grad) memset(grad, 0, sizeof(double) * (size_t)batch->num_seq * batch->max_len);
    if (cfg->type == LOSS_GMPO) return loss_gmpo_f64(cfg, norm, batch, grad, stats);
    return loss_grpo_f64(cfg, norm, batch, grad, stats);
}

// Float entry point: one sequence at a time is converted into a small double scratch and run
// through the double kernel (the normalisers are global, so per-row calls add up to the batch);
// the scratch stays in cache, unlike a whole-batch conversion.
int loss_compute(const LossConfig *cfg, const LossNorm *norm, const LossBatch *batch, float *grad,
                 LossStats *stats, Error *err) {
    if (!batch->logp || !batch->old_logp || !batch->mask || !batch->adv)
        return error_set(err, "loss: logp, old_logp, mask and adv are required");
    if (check_setup(cfg, norm, batch->num_seq, batch->max_len, batch->ref_logp != NULL, err)) return -1;
    long n = (long)batch->num_seq * batch->max_len;
    for (long i = 0; i < n; i++)
        if (!(batch->mask[i] >= 0))
            return error_set(err, "loss: mask[%ld] = %g is negative or NaN", i, batch->mask[i]);
    int T = batch->max_len;
    double *scratch = malloc(sizeof(double) * (size_t)(5 * T + 1));
    if (!scratch) return error_set(err, "loss: out of memory for a row of %d tokens", T);
    double *logp = scratch, *old = logp + T, *mask = old + T, *ref = mask + T, *g = ref + T;
    int rc = 0;
    for (int i = 0; i < batch->num_seq && rc == 0; i++) {
        long row = (long)i * T;
        for (int t = 0; t < T; t++) {
            logp[t] = batch->logp[row + t];
            old[t] = batch->old_logp[row + t];
            mask[t] = batch->mask[row + t];
            if (batch->ref_logp) ref[t] = batch->ref_logp[row + t];
        }
        double adv = batch->adv[i];
        LossBatchF64 b = {logp, old, batch->ref_logp ? ref : NULL, mask, &adv, 1, T};
        rc = loss_compute_f64(cfg, norm, &b, grad ? g : NULL, stats, err);
        if (rc == 0 && grad)
            for (int t = 0; t < T; t++) grad[row + t] = (float)g[t];
    }
    free(scratch);
    return rc;
}
