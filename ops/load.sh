#!/usr/bin/env bash
# Builds the load harness (release) and runs load scenarios against Kaizen on loopback, each with
# its limit measured in the same run. Prints Markdown; exits non-zero if any check failed.
#   ops/load.sh                 # every scenario (≈ 1 minute after the build)
#   ops/load.sh ingest --pipelines 8 --cases 10000 --runs 5 [--webhooks 4] [--streams 50]   # deliveries / live streams and their lag
#   ops/load.sh reads | limits | tenants --workspaces 1000
#   ops/load.sh history [--runs 1000 --cases 10000]   # 10 million results; ≈ 6 minutes, not part of 'all'
#   ops/load.sh sustained [--minutes 5 --pipelines 4]  # roll-up lag and queue depth under a continuous push; not in 'all'
#   ops/load.sh rollups [--sizes 10000 50000 100000]   # roll-up vs finalize time, first vs later push, memory; not in 'all'
#   ops/load.sh shards [--shards 32 --cases 2000 --rounds 3]  # a run assembled from shards vs one document; not in 'all'
#   ops/load.sh detector [--runs 200 --seeds 42 7 1234] # precision/recall/F1 of the flaky verdict on labelled histories
set -euo pipefail
cd "$(dirname "$0")/.."
command -v h2load >/dev/null || { echo "ops/load.sh: h2load is missing (apt-get install nghttp2-client)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "ops/load.sh: openssl is missing" >&2; exit 1; }
swift build --package-path Benchmarks -c release --product kaizen-load
if [ $# -eq 0 ]; then set -- all; fi
exec Benchmarks/.build/release/kaizen-load "$@"
