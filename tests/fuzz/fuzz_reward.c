// libFuzzer harness for the answer extractor and the equivalence checker. The input is split at
// the first NUL into a completion and a reference answer; every built-in checker and the
// equivalence rules run on it. Crashes, sanitizer reports and slow inputs (-timeout) are bugs.
//
// Run: tools/reward_fuzz.sh [SECONDS] (builds into build-fuzz-reward/, seeds, runs; default 60 s), or by hand:
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -o /tmp/fuzz_reward tests/fuzz/fuzz_reward.c \
//     src/reward/answer_extract.c src/reward/math_normalize.c src/reward/math_expr.c \
//     src/reward/math_equiv.c src/reward/checker_builtin.c src/core/rng.c src/core/error.c -lm
//   mkdir -p tests/fuzz/corpus-reward && /tmp/fuzz_reward -max_total_time=60 -max_len=4096 \
//     -timeout=2 tests/fuzz/corpus-reward
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reward/answer_extract.h"
#include "reward/math_equiv.h"
#include "reward/reward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 2);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    buf[size + 1] = 0;
    const char *completion = buf;
    size_t clen = strlen(completion);
    const char *answer = clen < size ? buf + clen + 1 : "";
    RewardResult r;
    reward_math(completion, answer, &r);
    reward_gsm8k(completion, answer, &r);
    reward_format(completion, 1, 1, &r);
    reward_format(completion, 0, 0, &r);
    size_t alen = strlen(answer);
    math_equivalent(completion, clen, answer, alen, NULL);
    math_equivalent(answer, alen, completion, clen, NULL);
    // Reflexive: any string equals itself.
    if (!math_equivalent(completion, clen, completion, clen, NULL)) abort();
    double v;
    answer_parse_number(completion, clen, &v);
    // The fast search from the end and the full scan find the same \boxed{}.
    size_t s1 = 0, l1 = 0, s2 = 0, l2 = 0;
    int f1 = answer_last_boxed(completion, clen, &s1, &l1), f2 = answer_last_boxed_scan(completion, clen, &s2, &l2);
    if (f1 != f2 || (f1 && (s1 != s2 || l1 != l2))) abort();
    free(buf);
    return 0;
}
