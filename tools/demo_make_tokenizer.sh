#!/usr/bin/env bash
# Trains the demo's SentencePiece tokenizer (models/demo/tokenizer.model) with Debian's spm_train on
# synthetic task text from `pionrl synth` (problems of every difficulty the demo configs use, plus
# the prompt words). Digits are split so numbers are spelled digit by digit. Deterministic for a
# given spm_train version. Usage: tools/demo_make_tokenizer.sh [PIONRL_BIN] [OUT_DIR]
set -euo pipefail
bin=$(realpath "${1:-./pionrl}")
out=${2:-models/demo}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  "$bin" synth --text --count 20000 --seed 101 --min-ops 1 --max-ops 4 --max-operand 99
  for i in $(seq 1 200); do echo "Question: Answer:"; done
} > "$tmp/corpus.txt"
# Relative paths from inside $tmp: spm_train records them in the model, so the bytes stay the same.
(cd "$tmp" && spm_train --input=corpus.txt --model_prefix=m --vocab_size=192 --hard_vocab_limit=false --model_type=bpe \
  --split_digits=true --character_coverage=1.0 --pad_id=3 --input_sentence_size=100000 \
  --shuffle_input_sentence=false --num_threads=1 --minloglevel=2 >/dev/null 2>&1)
cp "$tmp/m.model" "$out/tokenizer.model"
echo "wrote $out/tokenizer.model"
