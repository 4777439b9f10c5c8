#!/usr/bin/env bash
# Runs every benchmark program (BUILD/bench/bench_*) and script (bench/bench_*.sh) in turn. Each
# writes bench/results/<name>.json; docs/PERFORMANCE.md summarises them.
set -u
build=${1:-build}
cd "$(dirname "$0")/.."
bash tools/install-deps.sh --bench || echo "bench: could not install the comparison peers; their rows will be missing"
mkdir -p bench/results
status=0
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || { echo "bench: $(basename "$b") failed"; status=1; }
done
for s in bench/bench_*.sh; do
  [ -f "$s" ] || continue
  echo "== $(basename "$s")"
  bash "$s" "$build" || { echo "bench: $(basename "$s") failed"; status=1; }
done
exit $status
