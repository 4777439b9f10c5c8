// The checker signature, shared by pionrl and user plug-ins. A plug-in is a shared library that
// includes only this header and exports
//
//     int pionrl_reward_score(const char *prompt, const char *completion, const char *answer,
//                             RewardResult *result);
//
// It fills result->score (any finite float; 0..1 for plain correctness) and optionally
// result->pred / result->reason (NUL-terminated, truncated to the array sizes), and returns 0.
// A non-zero return, or a score that is NaN/inf, counts as a failure: score 0, counted in metrics.
// pionrl calls it from several threads at once, so it must be thread-safe (no unguarded globals).
// prompt may be "" when the caller has none; the strings are UTF-8 and NUL-terminated.
#ifndef PIONRL_REWARD_PLUGIN_H
#define PIONRL_REWARD_PLUGIN_H

#define REWARD_PRED_MAX 256
#define REWARD_REASON_MAX 256

enum { REWARD_OK = 0, REWARD_FAILED = 1, REWARD_TIMEOUT = 2 };

typedef struct {
    double score;                    // the reward (0 when status is not REWARD_OK)
    int status;                      // REWARD_OK, REWARD_FAILED or REWARD_TIMEOUT (set by pionrl)
    char pred[REWARD_PRED_MAX];      // the extracted prediction, for logs ("" when none)
    char reason[REWARD_REASON_MAX];  // why this score, short ("equal (numeric)", "no \boxed{}")
} RewardResult;

#define REWARD_PLUGIN_SYMBOL "pionrl_reward_score"

typedef int (*RewardPluginFn)(const char *prompt, const char *completion, const char *answer,
                              RewardResult *result);

#endif
