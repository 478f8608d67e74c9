#!/usr/bin/env bash
# Builds and runs the benchmarks; prints the figures (see docs/benchmarks.md). Not part of the tests.
#   bench/run.sh [ARGS]         codex-proxy with codex-fake-worker (bench/bench_proxy.py)
#   bench/run.sh real [ARGS]    the real codex app-server against the scripted model
#                               (bench/bench_real_worker.py): direct stdio vs through the proxy
#   bench/run.sh tools [ARGS]   function-call round trips, /v1/responses vs /v1/chat/completions
#                               (bench/bench_tools.py)
#   bench/run.sh soak [ARGS]    a steady-rate soak across worker recycles: latency during vs outside
#                               handovers, the pod's memory minute by minute (bench/bench_soak.py)
#   bench/run.sh chaos [ARGS]   200 clients while the worker is SIGKILLed every 2 s, and while the
#                               model stalls, resets and fails: outcomes, fds/RSS (bench/bench_chaos.py)
#   bench/run.sh access         what authentication and per-key limits add per request, and the
#                               memory per key, with 10, 1,000 and 10,000 keys (bench/bench_access.cpp)
#   bench/run.sh capacity [ARGS] one pod with the real codex and a model streaming 5 s and 30 s
#                               turns at concurrency 4 → 256: turns/s, first token, CPU and memory
#                               per turn (bench/bench_capacity.py; --defaults: 64 clients at the
#                               default settings)
#   bench/run.sh faithful       what the model receives for a short prompt, before and after the
#                               faithful defaults; plain vs structured-output turn latency
#                               (bench/bench_faithful.py)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" >/dev/null
"$ROOT/scripts/build.sh" >/dev/null
case "${1:-}" in
  real) shift; exec python3 "$ROOT/bench/bench_real_worker.py" "$@" ;;
  tools) shift; exec python3 "$ROOT/bench/bench_tools.py" "$@" ;;
  soak) shift; exec python3 "$ROOT/bench/bench_soak.py" "$@" ;;
  chaos) shift; exec python3 "$ROOT/bench/bench_chaos.py" "$@" ;;
  faithful) shift; exec python3 "$ROOT/bench/bench_faithful.py" "$@" ;;
  capacity) shift; exec python3 "$ROOT/bench/bench_capacity.py" "$@" ;;
  access) shift; exec "$ROOT/build/bin/cxp-bench-access" "$@" ;;
esac
exec python3 "$ROOT/bench/bench_proxy.py" "$@"
