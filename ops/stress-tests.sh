#!/usr/bin/env bash
# Runs the whole test suite N times in a row (default 5) while other processes keep every core
# busy, to show that no test depends on how fast the machine is. Prints one line per run and a
# summary; exits non-zero if any run failed (its log is kept under .build/stress-tests/).
#   ops/stress-tests.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
logs=.build/stress-tests
mkdir -p "$logs"
swift build --build-tests
hogs=()
for _ in $(seq 1 "$(nproc)"); do
  ( while :; do :; done ) &
  hogs+=("$!")
done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
echo "stress: ${#hogs[@]} busy loops on $(nproc) cores; running the suite $runs times"
failed=0
for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  if swift test --skip-build > "$logs/run-$run.log" 2>&1; then result=passed; else result=FAILED; failed=$((failed + 1)); fi
  summary=$(grep -E '^(✔|✘) Test run with' "$logs/run-$run.log" | tail -1 || true)
  echo "run $run: $result in $(( $(date +%s) - started )) s — ${summary:-no summary}"
  if [ "$result" = FAILED ]; then grep -E '^✘ Test .*(recorded|failed)' "$logs/run-$run.log" | head -20 || true; fi
done
echo "stress: $((runs - failed)) of $runs runs passed under load"
[ "$failed" -eq 0 ]
