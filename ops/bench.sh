#!/usr/bin/env bash
# Runs the micro-benchmarks (package-benchmark, release) and checks them against the thresholds
# stored in Benchmarks/Thresholds; exits non-zero on a regression beyond the tolerances.
#   ops/bench.sh                # run and check every benchmark
#   ops/bench.sh update         # store new thresholds from this machine (commit them)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-check}" in
  check)  swift package --package-path Benchmarks benchmark thresholds check --path Benchmarks/Thresholds --no-progress ;;
  update) swift package --package-path Benchmarks --allow-writing-to-package-directory benchmark thresholds update --path Benchmarks/Thresholds --no-progress ;;
  *) echo "usage: ops/bench.sh [check|update]" >&2; exit 2 ;;
esac
