#!/usr/bin/env bash
# Demo of what exists today: codex-proxy supervising a worker — probes, a chat completion (JSON and
# streamed), a worker crash and restart, a drain.
#   scripts/demo.sh                 uses codex-fake-worker (offline, scripted)
#   CODEX_BIN=real scripts/demo.sh  uses the real Codex CLI from tests/node (handshake works offline)
# It sets up and builds first, so it runs on a fresh machine. Every process it starts is stopped
# on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" >/dev/null
"$ROOT/scripts/build.sh" >/dev/null

WORK="$(mktemp -d)"
PROXY_PID=""
cleanup() {
  [ -n "$PROXY_PID" ] && kill -KILL "$PROXY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

worker="$ROOT/build/bin/codex-fake-worker"
if [ "${CODEX_BIN:-}" = "real" ]; then
  worker="$ROOT/tests/node/node_modules/.bin/codex"
  mkdir -p "$WORK/codex-home"
  export CODEX_HOME="$WORK/codex-home"
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { curl -fsS "$@" 2>/dev/null || curl -sS "$@"; echo; }

step "starting codex-proxy (worker: $worker)"
PORT=0 CODEX_BIN="$worker" WORKER_BACKOFF_INITIAL_MS=500 \
  "$ROOT/build/bin/codex-proxy" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
for _ in $(seq 100); do
  port=$(grep -o '"port":[0-9]*' "$WORK/proxy.log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$WORK/proxy.log"; exit 1; }
URL="http://127.0.0.1:$port"
for _ in $(seq 200); do curl -fs "$URL/readyz" >/dev/null && break; sleep 0.05; done

step "GET /readyz (worker ready)"; show "$URL/readyz"
step "GET /readyz?verbose"; show "$URL/readyz?verbose"
step "POST /v1/chat/completions (JSON)"
show -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
  -d '{"model":"gpt-5","messages":[{"role":"user","content":"Say hello"}]}'
step "POST /v1/chat/completions (stream)"
curl -sN -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
  -d '{"model":"gpt-5","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'
pid=$(curl -s "$URL/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["worker"]["pid"])')
step "killing the worker (pid $pid) with SIGKILL"
kill -KILL "$pid"
sleep 0.05
step "GET /readyz right after the crash (503, backoff)"; show "$URL/readyz"
step "GET /livez (still 200: the process is alive)"; show "$URL/livez"
for _ in $(seq 100); do curl -fs "$URL/readyz" >/dev/null && break; sleep 0.05; done
step "GET /readyz after the restart"; show "$URL/readyz"
step "SIGTERM: drain and exit"
kill -TERM "$PROXY_PID"
wait "$PROXY_PID" && echo "codex-proxy exited with 0"
PROXY_PID=""
step "the proxy's JSON log (supervisor events)"
grep -E '"event":"(worker_started|handshake_complete|worker_exited|backoff_scheduled|drain_started)"' "$WORK/proxy.log"
