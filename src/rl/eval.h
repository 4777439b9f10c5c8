// Evaluation on held-out examples: greedy pass@1 and, optionally, sampled mean@k (the fraction of
// k samples per problem judged correct), with per-example records for inspection.
#ifndef PIONRL_EVAL_H
#define PIONRL_EVAL_H

#include <stdio.h>

#include "rl/rollout.h"

typedef struct {
    int n;                  // examples evaluated
    double pass_at_1;       // greedy
    double mean_at_k;       // sampled (NaN when k == 0)
    double response_length; // greedy, mean tokens
    double reward_mean;     // greedy, weighted total
    double seconds;
} EvalResult;

// greedy: rollout parameters for the greedy pass (its sampling is forced to temperature 0);
// k > 0 adds a sampled pass with `sampling`. per_example (may be NULL) gets one JSON line per
// example: {"index", "prompt", "answer", "completion", "pred", "score", "correct"}.
int eval_run(const QwenModel *m, const Tokenizer *tok, RewardSet *rewards, const RolloutParams *greedy,
             const SamplingParams *sampling, int k, const DatasetExample *const *examples, int n, FILE *per_example,
             EvalResult *out, Error *err);

#endif
