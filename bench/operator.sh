#!/usr/bin/env bash
# Operator benchmarks (controller and pod reports) on a control plane of their own
# (build/bench-cluster); prints the figures (see docs/benchmarks.md). Not part of the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" >/dev/null
"$ROOT/scripts/build.sh" >/dev/null
export CXP_CLUSTER_DIR="$ROOT/build/bench-cluster"
export CXP_CLUSTER_NODES="${CXP_CLUSTER_NODES:-4}"  # kwok nodes hold 110 pods each: room for the fleet
exec python3 "$ROOT/bench/bench_operator.py" "$@"
