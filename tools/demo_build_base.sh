#!/usr/bin/env bash
# Rebuilds the demo base model models/demo from nothing: trains the SentencePiece tokenizer on
# synthetic task text (tools/demo_make_tokenizer.sh), then `pionrl sft configs/demo-sft.json`
# (random init -> SFT on the synthetic task) and copies the result (bf16 weights, config.json,
# tokenizer.model) into models/demo. Deterministic for a given machine and spm_train version.
# Usage: tools/demo_build_base.sh [PIONRL_BIN]
set -euo pipefail
bin=${1:-./pionrl}
out=models/demo
bash tools/demo_make_tokenizer.sh "$bin" "$out"
rm -rf runs/demo-sft
"$bin" sft configs/demo-sft.json
cp runs/demo-sft/config.json runs/demo-sft/model.safetensors "$out/"
echo "demo: base model written to $out"
