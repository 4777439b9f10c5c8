// Reading the loss / advantage settings from a config object; see loss.h for the keys.
#include <string.h>

#include "core/json.h"
#include "rl/loss.h"

const char *const LOSS_CONFIG_KEYS[] = {"loss_type", "epsilon", "epsilon_high", "delta", "beta", "scale_rewards",
                                        "advantage_eps", "mask_truncated_completions", NULL};

int loss_config_from_json(const cJSON *obj, int check_unknown, LossConfig *loss, AdvantageConfig *adv,
                          int *mask_truncated, const char *where, Error *err) {
    if (check_unknown && json_check_keys(obj, LOSS_CONFIG_KEYS, where, err)) return -1;
    char name[32] = "dapo";  // TRL's current default loss_type
    if (json_get_string(obj, "loss_type", 0, name, sizeof name, where, err)) return -1;
    LossType type;
    if (loss_type_parse(name, &type, err)) return error_prefix(err, "%s", where);
    int max_len = loss->max_completion_length;
    loss_config_default(loss, type);
    loss->max_completion_length = max_len;
    double eps = loss->eps_low;
    if (json_get_double(obj, "epsilon", 0, &eps, where, err)) return -1;
    loss->eps_low = loss->eps_high = eps;
    if (json_get_double(obj, "epsilon_high", 0, &loss->eps_high, where, err) ||
        json_get_double(obj, "delta", 0, &loss->delta, where, err) ||
        json_get_double(obj, "beta", 0, &loss->beta, where, err))
        return -1;
    advantage_config_default(adv);
    char scale[16] = "group";
    if (json_get_string(obj, "scale_rewards", 0, scale, sizeof scale, where, err) ||
        json_get_double(obj, "advantage_eps", 0, &adv->eps, where, err))
        return -1;
    if (adv_scale_parse(scale, &adv->scale, err)) return error_prefix(err, "%s", where);
    *mask_truncated = 0;
    if (json_get_bool(obj, "mask_truncated_completions", 0, mask_truncated, where, err)) return -1;
    if (!(adv->eps >= 0)) return error_set(err, "%s: key 'advantage_eps' must be >= 0", where);
    // max_completion_length may not be known yet; check the rest with a stand-in.
    LossConfig check = *loss;
    if (check.max_completion_length <= 0) check.max_completion_length = 1;
    if (loss_config_check(&check, err)) return error_prefix(err, "%s", where);
    return 0;
}
