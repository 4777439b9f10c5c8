#!/usr/bin/env bash
# Builds the reward fuzz harness (tests/fuzz/fuzz_reward.c: answer extraction, normalisation,
# equivalence, the gsm8k/math/format checkers) with clang's libFuzzer plus AddressSanitizer/UBSan
# into build-fuzz-reward/ and runs it for SECONDS (default 60). Seeds: tests/fixtures/reward and,
# when present, MATH-500 solution tails with their answers.
#   tools/reward_fuzz.sh [SECONDS]        (from the repository root)
set -euo pipefail
secs=${1:-60}
out=build-fuzz-reward
mkdir -p "$out/corpus"
clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
  -o "$out/fuzz_reward" tests/fuzz/fuzz_reward.c src/reward/answer_extract.c src/reward/math_normalize.c \
  src/reward/math_expr.c src/reward/math_equiv.c src/reward/checker_builtin.c src/core/rng.c src/core/error.c -lm
# Seed inputs are "completion NUL answer".
printf 'so \\boxed{\\frac{1}{2}}\0000.5' > "$out/corpus/seed_frac"
printf '\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}\000(3,\\frac{\\pi}{2})' > "$out/corpus/seed_tuple"
printf '\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}\000\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}' > "$out/corpus/seed_matrix"
printf 'The answer is 10,080 dollars.\000#### 10080' > "$out/corpus/seed_gsm8k"
if [ -r ../shared/data/math/test500.jsonl ] && command -v python3 >/dev/null; then
  python3 - "$out/corpus" <<'PY'
import json, sys
for i, line in enumerate(open("../shared/data/math/test500.jsonl")):
    r = json.loads(line)
    open(f"{sys.argv[1]}/math{i}", "wb").write((r["solution"][-600:] + "\0" + r["answer"]).encode())
PY
fi
"$out/fuzz_reward" -max_total_time="$secs" -max_len=16384 -timeout=2 -print_final_stats=1 "$out/corpus"
