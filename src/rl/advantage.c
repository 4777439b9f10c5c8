// Group-relative advantages; see advantage.h. Statistics in double for any group size.
#include "rl/advantage.h"

#include <math.h>
#include <string.h>

void advantage_config_default(AdvantageConfig *cfg) {
    cfg->scale = ADV_SCALE_GROUP;
    cfg->eps = 1e-4;  // TRL's constant; verl uses 1e-6 (docs/RL.md)
}

static const char *const SCALE_NAMES[] = {"group", "batch", "none"};

int adv_scale_parse(const char *name, AdvScale *out, Error *err) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, SCALE_NAMES[i]) == 0) {
            *out = (AdvScale)i;
            return 0;
        }
    return error_set(err, "unknown advantage scaling '%s' (expected group, batch or none)", name);
}

const char *adv_scale_name(AdvScale scale) {
    return (unsigned)scale < 3 ? SCALE_NAMES[scale] : "unknown";
}

// Mean and unbiased standard deviation of n values; the std of a single value is taken as 0,
// as TRL does for groups of one (the unbiased estimate is undefined there).
static void mean_std(const float *x, int n, double *mean, double *std) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    double m = s / n, v = 0;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(v / (n - 1)) : 0;
}

int advantage_compute(const AdvantageConfig *cfg, const float *rewards, int num_groups, int group_size,
                      float *adv, AdvantageStats *stats, Error *err) {
    if (num_groups <= 0 || group_size <= 0)
        return error_set(err, "advantage: need num_groups > 0 and group_size > 0 (got %d, %d)", num_groups,
                         group_size);
    if (!(cfg->eps >= 0) || !isfinite(cfg->eps))
        return error_set(err, "advantage: eps must be finite and >= 0 (got %g)", cfg->eps);
    if ((unsigned)cfg->scale > 2) return error_set(err, "advantage: invalid scaling %d", (int)cfg->scale);
    int n = num_groups * group_size;
    for (int i = 0; i < n; i++)
        if (!isfinite(rewards[i])) return error_set(err, "advantage: reward[%d] is not finite (%g)", i, rewards[i]);

    double batch_mean, batch_std;
    mean_std(rewards, n, &batch_mean, &batch_std);
    AdvantageStats st = {num_groups, 0, batch_mean, batch_std, 0, 0};
    double abs_sum = 0;
    for (int g = 0; g < num_groups; g++) {
        const float *r = rewards + (long)g * group_size;
        float *a = adv + (long)g * group_size;
        double mean, std;
        mean_std(r, group_size, &mean, &std);
        st.group_std_mean += std / num_groups;
        int all_equal = 1;
        for (int i = 1; i < group_size; i++)
            if (r[i] != r[0]) all_equal = 0;
        if (all_equal) {
            // Exactly 0, not (r - mean) / eps rounding noise: the group carries no signal.
            st.zero_variance_groups++;
            for (int i = 0; i < group_size; i++) a[i] = 0;
            continue;
        }
        double denom = cfg->scale == ADV_SCALE_GROUP ? std + cfg->eps
                       : cfg->scale == ADV_SCALE_BATCH ? batch_std + cfg->eps
                                                       : 1.0;
        for (int i = 0; i < group_size; i++) {
            a[i] = (float)((r[i] - mean) / denom);
            abs_sum += fabs(a[i]);
        }
    }
    st.adv_abs_mean = abs_sum / n;
    if (stats) *stats = st;
    return 0;
}

int advantage_mask_truncated(const uint8_t *truncated, int num_seq, int max_len, float *mask) {
    int masked = 0;
    for (int i = 0; i < num_seq; i++) {
        if (!truncated[i]) continue;
        memset(mask + (long)i * max_len, 0, sizeof(float) * (size_t)max_len);
        masked++;
    }
    return masked;
}
