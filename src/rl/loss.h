// Policy-gradient losses for RLVR: GRPO (TRL's loss_type grpo / bnpo / dr_grpo / dapo, with
// eps_low/eps_high, optional two-sided delta and beta * k3 KL) and GMPO (geometric-mean ratio,
// sign-aware clipping in log space). Formulas and references: docs/RL.md.
//
// Layout: a batch of num_seq completions padded to max_len tokens, flattened row-major
// [num_seq, max_len]. logp is the current policy's per-token log-prob, old_logp the log-prob the
// rollout (or the previous iteration) recorded, ref_logp the reference policy's (only when
// beta != 0), mask 1 for a completion token that counts and 0 for padding (or for a masked
// truncated completion), adv one advantage per sequence.
//
// Gradient accumulation: the trainer splits a batch into micro-batches. Every normaliser
// (number of sequences, number of tokens, max completion length) comes from the WHOLE batch in
// a LossNorm computed once, so the losses and gradients of the micro-batches add up exactly to
// those of the full batch. The gradient output is d loss / d logp per token: the per-token
// weights the model's backward consumes.
//
// num_iterations: with one optimizer step per rollout batch, pass old_logp = the logp of the same
// forward (TRL uses per_token_logps.detach()): the ratio is exactly 1 and only its gradient
// matters. With several steps on the same rollouts, pass the log-probs stored before the first.
// Values on masked-out tokens are never read (padding may hold anything, -inf included).
#ifndef PIONRL_LOSS_H
#define PIONRL_LOSS_H

#include <cjson/cJSON.h>

#include "core/error.h"
#include "rl/advantage.h"

typedef enum {
    LOSS_GRPO,     // sequence token-mean, then mean over the batch's sequences
    LOSS_BNPO,     // sum over tokens / batch token count (TRL bnpo; see docs/RL.md)
    LOSS_DR_GRPO,  // sum over tokens / (batch sequences x max_completion_length)
    LOSS_DAPO,     // sum over tokens / batch token count (TRL's default)
    LOSS_GMPO,     // -A * exp(mean_t clipped log-ratio), mean over the batch's sequences
} LossType;

typedef struct {
    LossType type;
    // GRPO: ratio clipped to [1 - eps_low, 1 + eps_high] (TRL epsilon 0.2, epsilon_high = epsilon).
    // GMPO: log-ratio clipped to [-eps_low, eps_high] (GMPO default 0.4 both).
    double eps_low, eps_high;
    // GRPO only: two-sided clipping, the unclipped ratio is capped at delta (TRL `delta`,
    // INTELLECT-2); 0 disables it. Must be > 1 + eps_high when set.
    double delta;
    // Weight of the k3 KL estimate exp(ref - logp) - (ref - logp) - 1; 0 means no reference.
    double beta;
    // dr_grpo normaliser: the configured maximum completion length (not the padded length).
    int max_completion_length;
} LossConfig;

// Defaults for a type: GRPO family eps 0.2/0.2, GMPO eps 0.4/0.4, delta 0, beta 0.
void loss_config_default(LossConfig *cfg, LossType type);
// "grpo", "bnpo", "dr_grpo", "dapo", "gmpo" -> type; -1 with a message listing the names.
int loss_type_parse(const char *name, LossType *out, Error *err);
const char *loss_type_name(LossType type);
// Checks ranges (eps >= 0, delta > 1 + eps_high when set, beta >= 0, dr_grpo needs
// max_completion_length > 0).
int loss_config_check(const LossConfig *cfg, Error *err);

// Config keys (TRL's names): loss_type ("grpo"|"bnpo"|"dr_grpo"|"dapo"|"gmpo", default "dapo"),
// epsilon (eps_low, and eps_high unless epsilon_high is given), epsilon_high, delta, beta,
// scale_rewards ("group"|"batch"|"none"), advantage_eps, mask_truncated_completions (bool).
// The per-type defaults apply first (so gmpo gets 0.4). max_completion_length is not read here:
// set loss->max_completion_length from the rollout config. With check_unknown, any other key in
// obj is an error; without it, other keys are ignored (obj is a larger flat config).
extern const char *const LOSS_CONFIG_KEYS[];
int loss_config_from_json(const cJSON *obj, int check_unknown, LossConfig *loss, AdvantageConfig *adv,
                          int *mask_truncated, const char *where, Error *err);

// Normalisers of one optimizer step's whole batch.
typedef struct {
    double num_seqs;    // completions in the batch (rows, masked or not)
    double num_tokens;  // sum of the mask over the batch
    int max_completion_length;
} LossNorm;

// Starts an empty LossNorm, then adds every micro-batch's mask (or the whole batch at once).
void loss_norm_init(LossNorm *norm, int max_completion_length);
void loss_norm_add(LossNorm *norm, const float *mask, int num_seq, int max_len);

typedef struct {
    const float *logp;      // [num_seq * max_len]
    const float *old_logp;  // [num_seq * max_len]
    const float *ref_logp;  // [num_seq * max_len], or NULL when beta == 0
    const float *mask;      // [num_seq * max_len], 0 or 1 (any non-negative weight works)
    const float *adv;       // [num_seq]
    int num_seq, max_len;
} LossBatch;

// Same in double: the reference path used by the finite-difference tests.
typedef struct {
    const double *logp, *old_logp, *ref_logp, *mask, *adv;
    int num_seq, max_len;
} LossBatchF64;

// Statistics as sums, so micro-batches merge by adding; loss_stats_finish turns them into means.
typedef struct {
    double loss;           // this batch's contribution to the step loss (sum of micro-batch values)
    double policy_loss;    // the policy-gradient part of loss
    double kl_loss;        // the beta * KL part of loss
    double tokens;         // sum of mask
    double seqs;           // sequences seen
    double clip_low;       // masked tokens clipped at the low side with A < 0 (gradient cut)
    double clip_high;      // masked tokens clipped at the high side with A > 0 (gradient cut)
    double ratio_sum;      // sum over masked tokens of exp(logp - old_logp)
    double ratio_max;      // largest token ratio among masked tokens
    double kl_sum;         // sum over masked tokens of k3 KL (0 without a reference)
    double seq_ratio_sum;  // GMPO: sum over sequences of the clipped geometric-mean ratio
    // Filled by loss_stats_finish (means over tokens; fractions in [0, 1]):
    double clip_frac_low, clip_frac_high, clip_frac, ratio_mean, kl_mean, seq_ratio_mean;
} LossStats;

void loss_stats_init(LossStats *s);
void loss_stats_merge(LossStats *into, const LossStats *from);
void loss_stats_finish(LossStats *s);

// Computes one (micro-)batch: adds its loss and statistics into *stats (call loss_stats_init
// first) and writes grad[i * max_len + t] = d loss / d logp (0 on masked-out tokens); grad may be
// NULL. The float entry point computes in double internally.
int loss_compute(const LossConfig *cfg, const LossNorm *norm, const LossBatch *batch, float *grad,
                 LossStats *stats, Error *err);
int loss_compute_f64(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *batch, double *grad,
                     LossStats *stats, Error *err);

#endif
