#!/usr/bin/env bash
# The operator end to end on a local control plane (no containers: kwok runs the pods' lifecycle,
# real codex-proxy processes play the pods, each supervising the real `codex app-server`):
#   scripts/demo.sh          setup + build, start the local plane, `helm install` the chart, run the
#                            controller with the chart's ServiceAccount, start the scripted model,
#                            apply docs/examples/codexproxy.yaml (its model key from a Secret, its
#                            provider pointed at the scripted model), start the pods, show a live
#                            maintenance switch and a worker crash, answer a chat completion through
#                            a pod, end with `kubectl get codexproxy`. Everything keeps running.
#   scripts/demo.sh down     stop the pods, the model, the controller and the local plane.
# The one stand-in is the model: tests/model-stub serves the OpenAI Responses API on loopback, so
# the demo runs offline. On a real cluster the Secret holds an OpenAI key and there is no stub.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO="$ROOT/build/demo"
# A control plane of its own, so a running demo never meets the tests' plane (build/cluster).
export CXP_CLUSTER_DIR="$ROOT/build/demo-cluster"
NS=demo
SYSTEM_NS=codexproxy-system
RELEASE=codexproxy
SA="$RELEASE-codexproxy-operator"
MODEL_KEY="sk-demo-model-key-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
# Two callers of the shared endpoint, each with a key of its own (the Secret 'callers').
SEARCH_KEY="sk-team-search-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
BATCH_KEY="sk-team-batch-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }

stop_processes() {
  local f pid
  # The pod launcher stops its pods on SIGTERM; then everything left is killed.
  for f in "$DEMO"/pids/*.pid; do
    [ -e "$f" ] || continue
    kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    pid="$(cat "$DEMO/pids/pods.pid" 2>/dev/null || true)"
    { [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; } && break
    sleep 0.2
  done
  for f in "$DEMO"/pids/*.pid "$DEMO"/pods/*/proxy.pid; do
    [ -e "$f" ] || continue
    kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

if [ "${1:-}" = "down" ]; then
  stop_processes
  "$ROOT/scripts/cluster.sh" down
  exit 0
fi
[ $# -eq 0 ] || die "usage: scripts/demo.sh [down]"

"$ROOT/scripts/setup.sh" >/dev/null
"$ROOT/scripts/build.sh" >/dev/null
stop_processes 2>/dev/null || true
rm -rf "$DEMO" && mkdir -p "$DEMO/pids" "$DEMO/logs"

step "starting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
"$ROOT/scripts/cluster.sh" up
eval "$("$ROOT/scripts/cluster.sh" env)"
kube() { kubectl "$@"; }

step "helm install $RELEASE charts/codexproxy-operator -n $SYSTEM_NS"
helm upgrade --install "$RELEASE" "$ROOT/charts/codexproxy-operator" -n "$SYSTEM_NS" --create-namespace \
  --set replicaCount=1 --wait=false
kube wait --for=condition=Established crd/codexproxies.codexproxy.io --timeout=60s >/dev/null

step "running codexproxy-controller with the chart's ServiceAccount (the chart's RBAC only)"
for _ in $(seq 50); do kube get serviceaccount "$SA" -n "$SYSTEM_NS" >/dev/null 2>&1 && break; sleep 0.2; done
"$ROOT/scripts/cluster.sh" sa-kubeconfig "$SYSTEM_NS" "$SA" "$DEMO/controller.kubeconfig"
setsid "$ROOT/build/bin/codexproxy-controller" --kubeconfig "$DEMO/controller.kubeconfig" \
  --leader-elect --leader-election-namespace "$SYSTEM_NS" \
  --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
  >"$DEMO/logs/controller.log" 2>&1 < /dev/null &
echo $! > "$DEMO/pids/controller.pid"

step "starting the scripted model (tests/model-stub): it stands in for the OpenAI API, offline"
setsid python3 "$ROOT/tests/model-stub/model_stub.py" --api-key "$MODEL_KEY" --log "$DEMO/logs/model-requests.jsonl" \
  >"$DEMO/logs/model-stub.out" 2>&1 < /dev/null &
echo $! > "$DEMO/pids/model.pid"
for _ in $(seq 100); do grep -q '"listening"' "$DEMO/logs/model-stub.out" 2>/dev/null && break; sleep 0.1; done
MODEL_URL="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["base_url"])' "$DEMO/logs/model-stub.out")" \
  || die "the model stub did not start (log: $DEMO/logs/model-stub.out)"
echo "model endpoint: $MODEL_URL (Responses API; the key it accepts is in the Secret 'openai')"

step "kubectl create secret generic openai; two callers' keys (Secret 'callers'); kubectl apply -f docs/examples/codexproxy.yaml (provider: the scripted model)"
kube create namespace "$NS" --dry-run=client -o yaml | kube apply -f - >/dev/null
kube create secret generic openai -n "$NS" --from-literal=apiKey="$MODEL_KEY" --dry-run=client -o yaml | kube apply -f -
sed -e "s/sk-replace-me-search/$SEARCH_KEY/" -e "s/sk-replace-me-batch/$BATCH_KEY/" "$ROOT/docs/examples/api-keys.yaml" \
  > "$DEMO/keys.yaml"
kube create secret generic callers -n "$NS" --from-file=keys.yaml="$DEMO/keys.yaml" --dry-run=client -o yaml | kube apply -f -
echo "callers: team-search (600 requests/min), team-batch (2 concurrent turns, gpt-5 only)"
kube patch --local -f "$ROOT/docs/examples/codexproxy.yaml" --type merge -o yaml -p "{\"spec\":{
  \"auth\":{\"apiKeysSecret\":{\"name\":\"callers\"}},
  \"worker\":{\"provider\":{\"name\":\"scripted model (demo)\",\"baseURL\":\"$MODEL_URL\"}}}}" | kube apply -n "$NS" -f -
for _ in $(seq 150); do
  [ "$(kube get pods -n "$NS" -l codexproxy.io/name=demo --field-selector status.phase=Running -o name | wc -l)" -ge 2 ] && break
  sleep 0.2
done
kube get deployment,service,poddisruptionbudget,configmap,serviceaccount,role,rolebinding -n "$NS" -l codexproxy.io/name=demo
kube get pods -n "$NS" -l codexproxy.io/name=demo

step "starting the pods: one codex-proxy per pod (its env with the Secret resolved, its volumes, its ServiceAccount), each running codex app-server"
"$ROOT/scripts/cluster.sh" sa-kubeconfig "$NS" demo "$DEMO/pods.kubeconfig"
setsid python3 "$ROOT/tests/pylib/pod_launcher.py" --namespace "$NS" --codexproxy demo --dir "$DEMO/pods" \
  --pods-kubeconfig "$DEMO/pods.kubeconfig" --kubeconfig "$KUBECONFIG" \
  --worker "$ROOT/tests/node/node_modules/.bin/codex" >"$DEMO/logs/pods.log" 2>&1 < /dev/null &
echo $! > "$DEMO/pids/pods.pid"

wait_ready() {
  for _ in $(seq 600); do
    [ "$(kube get cxp demo -n "$NS" -o jsonpath='{.status.ready}')" = "$1" ] && return 0
    sleep 0.1
  done
  die "READY never became $1 (logs: $DEMO/logs, $DEMO/pods/*/proxy.log)"
}
wait_ready 2/2
grep '"pod_started"' "$DEMO/logs/pods.log" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print("pod {} → codex-proxy on 127.0.0.1:{}".format(e["pod"], e["port"]))'
kube get codexproxy -n "$NS"

first="$(kube get pods -n "$NS" -l codexproxy.io/name=demo -o jsonpath='{.items[0].metadata.name}')"
port="$(grep -ho '"port":[0-9]*' "$DEMO/pods/$first/proxy.log" | head -1 | cut -d: -f2)"          # the API
ops_port="$(grep -ho '"ops_port":[0-9]*' "$DEMO/pods/$first/proxy.log" | head -1 | cut -d: -f2)"  # probes, /metrics

step "maintenance on by kubectl patch: every pod answers 503 + Retry-After, nothing restarts"
kube patch cxp demo -n "$NS" --type merge -p '{"spec":{"maintenance":{"enabled":true}}}'
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SEARCH_KEY" "http://127.0.0.1:$port/v1/models")" = 503 ] && break
  sleep 0.05
done
curl -si -H "Authorization: Bearer $SEARCH_KEY" "http://127.0.0.1:$port/v1/models" | grep -E '^(HTTP|Retry-After)' || true
sleep 1
kube get codexproxy -n "$NS"
kube patch cxp demo -n "$NS" --type merge -p '{"spec":{"maintenance":{"enabled":false}}}'

step "killing the codex worker of pod $first: its entry shows the restart, RESTARTS counts it, it is back in a blink"
wpid="$(curl -s "http://127.0.0.1:$ops_port/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["worker"]["pid"])')"
kill -KILL -- "-$wpid"
sleep 1  # the pod rewrites its heartbeat Lease at once; the controller copies it within 300 ms
kube get cxp demo -n "$NS" -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["status"]["pods"]:
    print("  {name}: workerState={workerState} ready={ready} restartsTotal={restartsTotal} backoffMs={backoffMs}".format(**e))'
kube get codexproxy -n "$NS"
echo "each pod's heartbeat Lease (its report rides in the annotation codexproxy.io/report):"
kube get leases -n "$NS" -l codexproxy.io/name=demo
wait_ready 2/2

step "a chat completion through pod $first (codex app-server → the scripted model)"
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SEARCH_KEY" "http://127.0.0.1:$port/v1/models")" = 200 ] && break
  sleep 0.05
done
echo "POST http://127.0.0.1:$port/v1/chat/completions (key: team-search) {\"messages\":[{\"role\":\"user\",\"content\":\"Say hello to the SRE on call.\"}]}"
answer="$(curl -s --max-time 60 "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $SEARCH_KEY" \
  -d '{"model":"gpt-5","messages":[{"role":"user","content":"Say hello to the SRE on call."}]}')"
python3 - "$answer" "$DEMO/logs/model-requests.jsonl" <<'PY'
import json, sys
body = json.loads(sys.argv[1])
if "choices" not in body:
    sys.exit(f"[demo] error: the chat completion failed: {sys.argv[1]}")
print("answer:", body["choices"][0]["message"]["content"])
print("usage: ", json.dumps(body["usage"]))
# What the model read: the caller's message and nothing of codex's own (docs/api.md).
with open(sys.argv[2]) as log:
    model = [json.loads(line) for line in log if '"path": "/v1/responses"' in line][-1]["body"]
for item in model["input"]:
    print(f"the model read: [{item['role']}] " + "".join(p.get("text", "") for p in item.get("content", [])))
print(f"prompt_tokens {body['usage']['prompt_tokens']}: the caller's own words only "
      "(codex's prompt, permissions and environment text are off)")
PY
requests="$(grep -c '"path": "/v1/responses"' "$DEMO/logs/model-requests.jsonl" || true)"
echo "the scripted model received $requests Responses API request(s), each with the key from the Secret"

step "a second caller (key: team-batch), a request without a key, and the tokens each key used"
curl -s --max-time 60 "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $BATCH_KEY" \
  -d '{"model":"gpt-5","messages":[{"role":"user","content":"Summarise the night shift in one line."}]}' >/dev/null
curl -s -o /dev/null -w 'without a key: HTTP %{http_code}\n' "http://127.0.0.1:$port/v1/chat/completions" \
  -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"hi"}]}'
echo "team-search's limits as this pod enforces them (its share of the CodexProxy's):"
curl -si --max-time 60 "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $SEARCH_KEY" -d '{"messages":[{"role":"user","content":"ping"}]}' \
  | grep -i '^x-ratelimit' | tr -d '\r' || true
curl -s "http://127.0.0.1:$ops_port/metrics" | grep '^codex_tokens_total' > "$DEMO/tokens.txt" || true
python3 - "$DEMO/tokens.txt" <<'PY'
import re, sys
tokens = {}
for line in open(sys.argv[1]):
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    tokens.setdefault(labels["key"], {})[labels["type"]] = int(float(line.rsplit(" ", 1)[1]))
for key, used in sorted(tokens.items()):
    print(f"  codex_tokens_total key={key}: input {used.get('input', 0)}, output {used.get('output', 0)}")
PY


step "kubectl get codexproxy"
for _ in $(seq 100); do
  [ "$(kube get cxp demo -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Maintenance")].status}')" = False ] && break
  sleep 0.1
done
kube get codexproxy -n "$NS"
cat <<TEXT

Everything keeps running. Try:
  export KUBECONFIG=$CXP_CLUSTER_DIR/kubeconfig
  kubectl describe codexproxy demo -n $NS
  kubectl get codexproxy demo -n $NS -o jsonpath='{.status.pods}'
  curl -s http://127.0.0.1:$ops_port/readyz
  curl -s http://127.0.0.1:$port/v1/chat/completions -H 'Content-Type: application/json' \\
    -H "Authorization: Bearer \$(grep -A1 team-search $DEMO/keys.yaml | sed -n 's/ *key: //p')" \\
    -d '{"messages":[{"role":"user","content":"hi"}],"stream":true}'
Logs: $DEMO/logs/ and $DEMO/pods/<pod>/proxy.log   Stop: scripts/demo.sh down
TEXT
