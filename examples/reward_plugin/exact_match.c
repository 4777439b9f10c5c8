// Example pionrl reward plug-in: exact match of the completion's final line against the answer.
// Build (from the repository root):
//   cc -shared -fPIC -O2 -Isrc -o exact_match.so examples/reward_plugin/exact_match.c
// or `make -C examples/reward_plugin`. Use it with `--checker plugin:./exact_match.so` or
// {"plugin:./exact_match.so": 1.0} in the run config's reward weights.
//
// The contract is in src/reward/reward_plugin.h: export pionrl_reward_score, fill result->score
// (and optionally pred/reason), return 0. pionrl calls it from several threads: keep no state.
#include <stdio.h>
#include <string.h>

#include "reward/reward_plugin.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int pionrl_reward_score(const char *prompt, const char *completion, const char *answer, RewardResult *result) {
    (void)prompt;
    if (!completion || !answer) return -1;
    // Last non-empty line of the completion, trimmed.
    const char *end = completion + strlen(completion);
    while (end > completion && is_space(end[-1])) end--;
    const char *start = end;
    while (start > completion && start[-1] != '\n') start--;
    while (start < end && is_space(*start)) start++;
    size_t n = (size_t)(end - start);
    // Trimmed answer.
    const char *a = answer, *ae = answer + strlen(answer);
    while (a < ae && is_space(*a)) a++;
    while (ae > a && is_space(ae[-1])) ae--;
    size_t an = (size_t)(ae - a);
    size_t copy = n < sizeof result->pred - 1 ? n : sizeof result->pred - 1;
    memcpy(result->pred, start, copy);
    result->pred[copy] = 0;
    int equal = n == an && memcmp(start, a, n) == 0;
    result->score = equal ? 1.0 : 0.0;
    snprintf(result->reason, sizeof result->reason, "last line %s the answer", equal ? "matches" : "differs from");
    return 0;
}
