#!/usr/bin/env bash
# Builds and runs the benchmarks; prints the figures (see docs/benchmarks.md). Not part of the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" >/dev/null
"$ROOT/scripts/build.sh" >/dev/null
exec python3 "$ROOT/bench/bench_proxy.py" "$@"
