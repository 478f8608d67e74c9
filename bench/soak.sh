#!/usr/bin/env bash
# The soak (not a test): 30 minutes of mixed traffic with the real codex and the scripted model at
# a moderate rate, the worker SIGKILLed every minute; codex-proxy's and the worker's RSS, fds and
# threads each minute, and codex-proxy's slopes per hour (bench/bench_soak_mixed.py).
#   bench/soak.sh [--minutes 30] [--rate 4] [--kill-every 60]
# The recycling soak (steady traffic across worker recycles) is `bench/run.sh soak`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" >/dev/null
"$ROOT/scripts/build.sh" >/dev/null
exec python3 "$ROOT/bench/bench_soak_mixed.py" "$@"
