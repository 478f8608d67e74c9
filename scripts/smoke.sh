#!/usr/bin/env bash
# Smoke check of any codex-proxy deployment:
#   scripts/smoke.sh http://host:11435 [http://host:11436]
# The first URL is the OpenAI API (PORT), the second the ops port (PROXY_OPS_PORT: probes,
# /metrics); without it, the API URL's host on port 11436.
# Environment: PROXY_API_KEY (for /v1), PROXY_METRICS_TOKEN (for /metrics), SMOKE_MODEL (default:
# the first model /v1/models lists). Checks the probes, /metrics, one chat completion, and that the
# restart count in /readyz matches codex_worker_restarts_total. Exit 0 only when all pass.
set -uo pipefail
URL="${1:?usage: scripts/smoke.sh API_URL [OPS_URL]}"
URL="${URL%/}"
OPS_URL="${2:-$(printf '%s' "$URL" | sed -E 's#^(https?://[^/:]+)(:[0-9]+)?.*#\1:11436#')}"
OPS_URL="${OPS_URL%/}"
failures=0
pass() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
auth=(); [ -n "${PROXY_API_KEY:-}" ] && auth=(-H "Authorization: Bearer $PROXY_API_KEY")
mauth=(); [ -n "${PROXY_METRICS_TOKEN:-}" ] && mauth=(-H "Authorization: Bearer $PROXY_METRICS_TOKEN")
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null; }

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$OPS_URL/livez") || code=000
[ "$code" = 200 ] && pass "/livez 200" || fail "/livez answered $code (expected 200)"

readyz=$(curl -s --max-time 5 "$OPS_URL/readyz")
ready=$(printf '%s' "$readyz" | json_field 'd["ready"]')
[ "$ready" = True ] && pass "/readyz ready" || fail "/readyz not ready: $(printf '%s' "$readyz" | head -c 300)"
restarts=$(printf '%s' "$readyz" | json_field 'd["worker"]["restarts_total"]')

metrics=$(curl -s --max-time 5 "${mauth[@]}" "$OPS_URL/metrics")
metric_restarts=$(printf '%s\n' "$metrics" | awk '$1=="codex_worker_restarts_total"{print int($2)}')
if [ -z "$metric_restarts" ]; then
  fail "/metrics has no codex_worker_restarts_total (disabled, or PROXY_METRICS_TOKEN needed?)"
elif [ "$metric_restarts" = "$restarts" ]; then
  pass "restart count agrees: /readyz $restarts = /metrics $metric_restarts"
else
  fail "restart count differs: /readyz $restarts, /metrics $metric_restarts"
fi

model="${SMOKE_MODEL:-$(curl -s --max-time 5 "${auth[@]}" "$URL/v1/models" | json_field 'd["data"][0]["id"]')}"
[ -n "$model" ] && pass "/v1/models lists $model" || fail "/v1/models returned no model"
reply=$(curl -s --max-time 60 "${auth[@]}" -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
  -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"Reply with the word ok.\"}]}")
finish=$(printf '%s' "$reply" | json_field 'd["choices"][0]["finish_reason"]')
[ -n "$finish" ] && pass "chat completion finished ($finish)" || fail "chat completion failed: $(printf '%s' "$reply" | head -c 300)"

[ $failures -eq 0 ] && { echo "smoke: all checks passed"; exit 0; }
echo "smoke: $failures check(s) failed"; exit 1
