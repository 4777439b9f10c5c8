// Group-relative advantages (GRPO/GMPO): completions come in groups of G for the same prompt;
//   A_i = (r_i - mean_group) / (std + eps)
// with the unbiased (n - 1) standard deviation of the group ("group", TRL's default), of the whole
// batch ("batch", TRL scale_rewards="batch") or no scaling ("none", Dr. GRPO). A group whose
// rewards are all equal (a group of one included) gets A = 0 for every member and is counted as
// zero-variance.
#ifndef PIONRL_ADVANTAGE_H
#define PIONRL_ADVANTAGE_H

#include <stdint.h>

#include "core/error.h"

typedef enum { ADV_SCALE_GROUP, ADV_SCALE_BATCH, ADV_SCALE_NONE } AdvScale;

typedef struct {
    AdvScale scale;
    double eps;  // added to the std (TRL 1e-4, verl 1e-6); default 1e-4
} AdvantageConfig;

typedef struct {
    int num_groups;
    int zero_variance_groups;  // groups whose rewards are all equal (their A is 0)
    double reward_mean;        // over the batch
    double reward_std;         // unbiased, over the batch
    double group_std_mean;     // mean of the groups' unbiased std (TRL's logged reward_std)
    double adv_abs_mean;       // mean |A|
} AdvantageStats;

void advantage_config_default(AdvantageConfig *cfg);
// "group", "batch", "none".
int adv_scale_parse(const char *name, AdvScale *out, Error *err);
const char *adv_scale_name(AdvScale scale);

// rewards and adv are [num_groups * group_size], group g occupying [g * G, (g + 1) * G).
// Non-finite rewards are an error naming the index. stats may be NULL.
int advantage_compute(const AdvantageConfig *cfg, const float *rewards, int num_groups, int group_size,
                      float *adv, AdvantageStats *stats, Error *err);

// Masks truncated completions out of the loss (TRL mask_truncated_completions, DAPO's overlong
// filtering): zeroes mask row i when truncated[i]. Advantages are computed before, with every
// completion, as TRL does. Returns the number of rows masked.
int advantage_mask_truncated(const uint8_t *truncated, int num_seq, int max_len, float *mask);

#endif
