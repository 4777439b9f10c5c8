// Verifiable rewards: checkers that score a completion against a reference answer, and weighted
// sets of them scored over a batch in parallel. Reward knows strings only (no tensors, no model).
//
// Checker specs (the keys of the run config's reward weights, e.g. {"math": 1.0, "format": 0.1}):
//   gsm8k          reference after "####"; prediction = \boxed{} / "####" / last number; numeric
//   math           last \boxed{} vs reference (a bare answer, a solution with \boxed{},
//                  or the text after "####"), LaTeX-normalised, numeric / symbolic / structural
//                  equivalence
//   format         the completion has a non-empty \boxed{} answer (and a closed <think> when
//                  options.thinking); format:hash also accepts "#### answer"; format:think
//                  requires the closed </think> whatever options.thinking says
//   plugin:PATH    a shared library exporting pionrl_reward_score (reward_plugin.h)
//   http://URL, https://URL   POST {"prompt","completion","answer"} -> {"score": x}
//   cmd:COMMAND    /bin/sh -c COMMAND, the same JSON on stdin, {"score": x} on stdout
// A checker that errors, times out or answers garbage scores 0 with status REWARD_FAILED or
// REWARD_TIMEOUT, is counted, and the run goes on: scoring functions never fail.
#ifndef PIONRL_REWARD_H
#define PIONRL_REWARD_H

#include <cjson/cJSON.h>

#include "core/error.h"
#include "reward/reward_plugin.h"

typedef struct {
    int threads;               // worker threads for built-in and plug-in checkers (0: online CPUs)
    int parallel_requests;     // concurrent HTTP requests / commands in a batch (default 16)
    double connect_timeout_s;  // HTTP connect timeout (default 2)
    double timeout_s;          // HTTP total time per attempt / command run time (default 10)
    int retries;               // extra HTTP attempts after a failed one (default 2)
    int thinking;              // format: require "</think>" before the answer (default 0)
} RewardOptions;

void reward_options_default(RewardOptions *opt);
// Reads {"threads", "parallel_requests", "connect_timeout_s", "timeout_s", "retries", "thinking"}
// (all optional, unknown keys are errors) over the values already in opt.
int reward_options_from_json(const cJSON *obj, RewardOptions *opt, const char *where, Error *err);

// The built-in checkers as plain functions (thread-safe, no allocation that outlives the call).
void reward_gsm8k(const char *completion, const char *answer, RewardResult *out);
void reward_math(const char *completion, const char *answer, RewardResult *out);
void reward_format(const char *completion, int thinking, int accept_hash, RewardResult *out);

typedef struct RewardChecker RewardChecker;

// Creates a checker from its spec (see above). NULL and err set for an unknown name, a plug-in
// that does not load or lacks the symbol, or a bad URL.
RewardChecker *reward_checker_create(const char *spec, const RewardOptions *opt, Error *err);
void reward_checker_free(RewardChecker *c);
const char *reward_checker_name(const RewardChecker *c);
// Scores one item; prompt and answer may be NULL (treated as ""). Thread-safe.
void reward_checker_score(RewardChecker *c, const char *prompt, const char *completion, const char *answer,
                          RewardResult *out);

typedef struct {
    long calls;     // items scored
    long failures;  // REWARD_FAILED results (errors, garbage answers)
    long timeouts;  // REWARD_TIMEOUT results
} RewardCounts;

void reward_checker_counts(const RewardChecker *c, RewardCounts *out);

// A weighted set of checkers: total = sum_k weight_k * score_k.
typedef struct RewardSet RewardSet;

RewardSet *reward_set_create(const RewardOptions *opt, Error *err);
int reward_set_add(RewardSet *set, const char *spec, double weight, Error *err);
// From the run config's weights object {"math": 1.0, "format": 0.1}; `where` names it in errors.
RewardSet *reward_set_from_json(const cJSON *weights, const RewardOptions *opt, const char *where, Error *err);
void reward_set_free(RewardSet *set);
int reward_set_size(const RewardSet *set);
const char *reward_set_name(const RewardSet *set, int k);
double reward_set_weight(const RewardSet *set, int k);
// Cumulative counts of checker k since creation (or the last reset).
void reward_set_counts(const RewardSet *set, int k, RewardCounts *out);
void reward_set_reset_counts(RewardSet *set);

// Scores n items. prompts and answers may be NULL (all "") or hold NULL entries. Writes total[i]
// (may be NULL) and, when results is not NULL, results[i * size + k] for checker k. Items are
// scored in parallel (options.threads, or options.parallel_requests for HTTP/command checkers).
// Returns 0; -1 only for bad arguments or when threads cannot be started at all.
int reward_set_score_batch(RewardSet *set, int n, const char *const *prompts, const char *const *completions,
                           const char *const *answers, double *total, RewardResult *results, Error *err);

#endif
