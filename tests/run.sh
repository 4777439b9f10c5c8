#!/usr/bin/env bash
# Runs every built test program (BUILD/tests/test_*) from the repository root, then the further
# test programs named after BUILD (the CUDA emulator's, from the Makefile; VAR=value:path runs one with
# an environment variable set), and adds up their
# summaries into one closing line: "N passed, N failed, N skipped". A program that crashes or
# exits non-zero without failing a test counts as one failure.
set -u
build=${1:-build}
shift || true
cd "$(dirname "$0")/.."
pass=0; fail=0; skip=0
for entry in "$build"/tests/test_* "$@"; do
  # an entry VAR=value:path runs path with that variable set (the emulator's reversed thread order)
  t=$entry; envset=
  case "$entry" in *=*:*) envset=${entry%%:*}; t=${entry#*:} ;; esac
  [ -x "$t" ] || continue
  case "$t" in "$build"/tests/*) ;; *) echo "== $t${envset:+ ($envset)}" ;; esac
  name=$(basename "$t")
  if [ -n "$envset" ]; then out=$(env "$envset" "$t" 2>&1); rc=$?; else out=$("$t" 2>&1); rc=$?; fi
  printf '%s\n' "$out" | grep -E '^(FAIL|SKIP) |: [0-9]+ passed, ' || true
  line=$(printf '%s\n' "$out" | grep -E "^$name: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$" | tail -1)
  if [ -z "$line" ]; then
    echo "FAIL $name: exited with status $rc before printing its summary"
    printf '%s\n' "$out" | tail -20
    fail=$((fail+1)); continue
  fi
  p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1/' <<<"$line")
  f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\2/' <<<"$line")
  s=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\3/' <<<"$line")
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "FAIL $name: exit status $rc"; fail=$((fail+1)); fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
