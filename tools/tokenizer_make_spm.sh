#!/usr/bin/env bash
# Trains the tiny SentencePiece fixture (tests/fixtures/tokenizer/spm/tokenizer.model) with Debian's
# spm_train on GSM8K questions, and records spm_encode's ids for a few test lines in
# tests/fixtures/tokenizer/spm_ids.jsonl ({"text": ..., "ids": [...]}). Run from the repository root.
set -euo pipefail
out=tests/fixtures/tokenizer/spm
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$tmp/corpus.txt" <<'PY'
import json, sys
with open("../shared/data/gsm8k/train.jsonl") as f, open(sys.argv[1], "w") as o:
    for i, line in enumerate(f):
        if i >= 2000: break
        o.write(json.loads(line)["question"].replace("\n", " ") + "\n")
PY
spm_train --input="$tmp/corpus.txt" --model_prefix="$tmp/m" --vocab_size=500 --model_type=unigram \
  --byte_fallback=true --character_coverage=1.0 --pad_id=3 --normalization_rule_name=identity --minloglevel=2 >/dev/null 2>&1
cp "$tmp/m.model" "$out/tokenizer.model"
/usr/bin/python3 - "$out/tokenizer.model" <<'PY' > tests/fixtures/tokenizer/spm_ids.jsonl
import json, subprocess, sys
lines = ["Janet has 3 apples and buys 12 more.", "How many eggs does she sell per day?",
         "  leading spaces and  double  spaces", "caf\u00e9 na\u00efve \u4f60\u597d \U0001F600",
         "Numbers: 1,234.56 and 7/8", "UPPER lower MiXeD", "a", "tab\there"]
for text in lines:
    r = subprocess.run(["spm_encode", "--model=" + sys.argv[1], "--output_format=id"], input=text + "\n",
                       capture_output=True, text=True, check=True)
    print(json.dumps({"text": text, "ids": [int(x) for x in r.stdout.split()]}, ensure_ascii=False))
PY
echo "wrote $out/tokenizer.model and tests/fixtures/tokenizer/spm_ids.jsonl"
