#!/usr/bin/env bash
# The operator end to end on a local control plane (no containers: kwok runs the pods' lifecycle,
# real codex-proxy processes play the pods):
#   scripts/demo.sh          setup + build, start the local plane, `helm install` the chart, run the
#                            controller with the chart's ServiceAccount, apply
#                            docs/examples/codexproxy.yaml, start one codex-proxy per pod, show a
#                            live maintenance switch and a worker crash, end with
#                            `kubectl get codexproxy` with the workers ready. Everything keeps running.
#   scripts/demo.sh down     stop the pod processes, the controller and the local plane.
# Workers are codex-fake-worker (offline); DEMO_WORKER=codex uses the real Codex CLI from tests/node
# (its handshake works offline; chat turns need the internet).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO="$ROOT/build/demo"
# A control plane of its own, so a running demo never meets the tests' plane (build/cluster).
export CXP_CLUSTER_DIR="$ROOT/build/demo-cluster"
NS=demo
SYSTEM_NS=codexproxy-system
RELEASE=codexproxy
SA="$RELEASE-codexproxy-operator"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }

stop_processes() {
  local f
  for f in "$DEMO"/pids/*.pid; do
    [ -e "$f" ] || continue
    kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  for f in "$DEMO"/pids/*.pid; do
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

step "kubectl apply -f docs/examples/codexproxy.yaml -n $NS"
kube create namespace "$NS" --dry-run=client -o yaml | kube apply -f - >/dev/null
kube apply -n "$NS" -f "$ROOT/docs/examples/codexproxy.yaml"
for _ in $(seq 150); do
  [ "$(kube get pods -n "$NS" -l codexproxy.io/name=demo --field-selector status.phase=Running -o name | wc -l)" -ge 2 ] && break
  sleep 0.2
done
kube get deployment,service,configmap,role,rolebinding -n "$NS" -l codexproxy.io/name=demo
kube get pods -n "$NS" -l codexproxy.io/name=demo

step "starting one codex-proxy per pod (the pod's env, the pods' ServiceAccount)"
"$ROOT/scripts/cluster.sh" sa-kubeconfig "$NS" demo "$DEMO/pods.kubeconfig"
worker="$ROOT/build/bin/codex-fake-worker"
[ "${DEMO_WORKER:-}" = "codex" ] && worker="$ROOT/tests/node/node_modules/.bin/codex"
for pod in $(kube get pods -n "$NS" -l codexproxy.io/name=demo -o jsonpath='{.items[*].metadata.name}'); do
  mkdir -p "$DEMO/$pod/codex-home"
  # The container's env as the Deployment renders it, downward-API fields resolved.
  kube get pod "$pod" -n "$NS" -o json | python3 -c '
import json, sys
pod = json.load(sys.stdin)
for e in pod["spec"]["containers"][0].get("env", []):
    if "value" in e:
        print(e["name"] + "=" + e["value"])
    else:
        field = e["valueFrom"]["fieldRef"]["fieldPath"].split(".")[1]
        print(e["name"] + "=" + pod["metadata"][field])' > "$DEMO/$pod/env"
  (
    set -a; . "$DEMO/$pod/env"; set +a
    export PROXY_HOST=127.0.0.1 PORT=0 CODEX_BIN="$worker" CODEX_HOME="$DEMO/$pod/codex-home" \
      PROXY_TRACE_DIR="$DEMO/$pod/trace" PROXY_KUBECONFIG="$DEMO/pods.kubeconfig"
    exec setsid "$ROOT/build/bin/codex-proxy" >"$DEMO/logs/$pod.log" 2>&1 < /dev/null
  ) &
  echo $! > "$DEMO/pids/$pod.pid"
  echo "pod $pod → codex-proxy pid $(cat "$DEMO/pids/$pod.pid")"
done

wait_ready() {
  for _ in $(seq 300); do
    [ "$(kube get cxp demo -n "$NS" -o jsonpath='{.status.ready}')" = "$1" ] && return 0
    sleep 0.1
  done
  die "READY never became $1 (logs: $DEMO/logs)"
}
wait_ready 2/2
kube get codexproxy -n "$NS"

first="$(kube get pods -n "$NS" -l codexproxy.io/name=demo -o jsonpath='{.items[0].metadata.name}')"
port="$(grep -ho '"port":[0-9]*' "$DEMO/logs/$first.log" | head -1 | cut -d: -f2)"

step "maintenance on by kubectl patch: every pod answers 503 + Retry-After, nothing restarts"
kube patch cxp demo -n "$NS" --type merge -p '{"spec":{"maintenance":{"enabled":true}}}'
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/models")" = 503 ] && break; sleep 0.05
done
curl -si "http://127.0.0.1:$port/v1/models" | grep -E '^(HTTP|Retry-After)' || true
sleep 1
kube get codexproxy -n "$NS"
kube patch cxp demo -n "$NS" --type merge -p '{"spec":{"maintenance":{"enabled":false}}}'

step "killing the worker of pod $first: its entry shows the restart, RESTARTS counts it, it is back in a blink"
wpid="$(curl -s "http://127.0.0.1:$port/readyz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["worker"]["pid"])')"
kill -KILL "$wpid"
sleep 0.6
kube get cxp demo -n "$NS" -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["status"]["pods"]:
    print("  {name}: workerState={workerState} ready={ready} restartsTotal={restartsTotal} backoffMs={backoffMs}".format(**e))'
kube get codexproxy -n "$NS"
wait_ready 2/2

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
  curl -s http://127.0.0.1:$port/readyz
Logs: $DEMO/logs/   Stop: scripts/demo.sh down
TEXT
