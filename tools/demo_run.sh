#!/usr/bin/env bash
# `make demo`: the embedded default run (docs/DEMO.md). Evaluates the shipped base model
# (models/demo), runs RLVR with GRPO + per-head Pion (configs/demo.json) into runs/demo (resuming
# if a previous demo was interrupted), evaluates the result and writes runs/demo/report.html.
# Nothing is downloaded. Usage: tools/demo_run.sh [PIONRL_BIN] [extra `pionrl train` args...]
set -euo pipefail
bin=${1:-./pionrl}
shift || true
config=configs/demo.json
run=runs/demo
if [ ! -f models/demo/model.safetensors ]; then
  echo "demo: models/demo has no base model; building it (SFT from a random init, a few minutes)"
  bash tools/demo_build_base.sh "$bin"
fi
echo "demo: base model accuracy on the 200 held-out problems"
OMP_NUM_THREADS=1 "$bin" eval --model models/demo --config "$config" --examples 200
if [ -f "$run/checkpoints/latest" ]; then
  echo "demo: $run exists; resuming it (delete $run for a fresh run)"
  "$bin" train "$config" --resume "$@"
else
  "$bin" train "$config" "$@"
fi
latest="$run/checkpoints/$(cat "$run/checkpoints/latest")"
echo "demo: trained model ($latest) accuracy on the same problems"
OMP_NUM_THREADS=1 "$bin" eval --model "$latest" --tokenizer models/demo --config "$config" --examples 200
"$bin" report "$run" --out "$run/report.html" --title "pionrl demo: GRPO + per-head Pion"
echo "demo: done. Open $run/report.html (metrics: $run/metrics.jsonl)."
