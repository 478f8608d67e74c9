#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for tests and the demo (envtest-style, no containers):
# etcd, kube-apiserver (RBAC on), kube-controller-manager, kube-scheduler and kwok with fake nodes.
#
#   scripts/cluster.sh install              build/cache the pinned binaries (scripts/cluster/install.sh)
#   scripts/cluster.sh up                   start everything under build/cluster/ (installs first)
#   scripts/cluster.sh up --real-node       and a real node beside the kwok nodes: kubelet +
#                                           containerd + runc (scripts/cluster/node.bash; root), with
#                                           the images of scripts/images.sh imported when built
#   scripts/cluster.sh down                 stop everything it started; safe after a failed up
#   scripts/cluster.sh status               what runs, exit 1 if the plane is not healthy
#   scripts/cluster.sh env                  prints `export KUBECONFIG=…` (and PATH for helm/kwok)
#   scripts/cluster.sh sa-kubeconfig NS SA OUT
#                                           writes a kubeconfig that acts as ServiceAccount NS/SA
#   scripts/cluster.sh restart-apiserver [DOWN_SECONDS]
#                                           stops kube-apiserver, waits, starts it on the same port
#   scripts/cluster.sh restart-etcd [DOWN_SECONDS]
#                                           the same for etcd (its data kept)
#   scripts/cluster.sh compact-etcd         compacts etcd's history up to its current revision:
#                                           older resourceVersions are gone (watches get 410)
#
# Everything listens on 127.0.0.1 only, on free ports. Logs: build/cluster/logs/<component>.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CXP_CLUSTER_DIR:-$ROOT/build/cluster}"
PKI="$DIR/pki"
LOGS="$DIR/logs"
PIDS="$DIR/pids"
KUBECONFIG_ADMIN="$DIR/kubeconfig"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
NODES="${CXP_CLUSTER_NODES:-2}"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

bin_dir() { "$ROOT/scripts/cluster/install.sh" | tail -n 1; }
# shellcheck source=scripts/cluster/node.bash
. "$ROOT/scripts/cluster/node.bash"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid="$(pid_of "$1")"; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

start_component() {  # name binary args...
  local name="$1"; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}

fail_start() {  # name reason
  local name="$1" reason="$2"
  log "$name failed to start: $reason"
  if [ -f "$LOGS/$name.log" ]; then
    log "last lines of $LOGS/$name.log:"
    tail -n 25 "$LOGS/$name.log" >&2 || true
  fi
  stop_all
  exit 1
}

wait_for() {  # name timeout_s command...
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail_start "$name" "the process exited"
    [ $SECONDS -lt $deadline ] || fail_start "$name" "not healthy after ${timeout}s"
    sleep 0.2
  done
}

make_pki() {
  mkdir -p "$PKI"
  cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 \
    -subj "/CN=codexproxy-local-ca" 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cert serving "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
  cert admin "/O=system:masters/CN=cluster-admin" "extendedKeyUsage=clientAuth"
  cert controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  cert scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
  cert kwok "/O=system:masters/CN=kwok" "extendedKeyUsage=clientAuth"
  # The API server's client certificate towards kubelets (logs, exec), and the real node's own.
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
  cert node "/O=system:nodes/CN=system:node:$(hostname)" "extendedKeyUsage=clientAuth"
  # The aggregation layer (an extension API server such as prometheus-adapter behind an
  # APIService): the API server proxies with this client certificate, from a CA of its own as
  # kubeadm does, and the extension trusts the user it names in request headers.
  openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt \
    -days 365 -subj "/CN=codexproxy-local-front-proxy-ca" 2>/dev/null
  CA=front-proxy-ca cert front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
  cd - >/dev/null
}

cert() {  # name subject extensions (signed by $CA, default the cluster's ca)
  local ca="${CA:-ca}"
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -out "$1.crt" \
    -days 365 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

# A kubeconfig for the local API server: out user-name user-fields [namespace]
write_kubeconfig_for() {
  cat > "$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: "$2"
  user: $3
contexts:
- name: local
  context: {cluster: local, user: "$2", namespace: "${4:-default}"}
current-context: local
YAML
  chmod 600 "$1"
}

write_kubeconfig() {  # out user cert-name
  write_kubeconfig_for "$1" "$2" "{client-certificate: \"$PKI/$3.crt\", client-key: \"$PKI/$3.key\"}"
}

create_nodes() {
  local i
  for ((i = 0; i < NODES; i++)); do
    kubectl --kubeconfig "$KUBECONFIG_ADMIN" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
YAML
  done
}

# TERM to the component's process group, KILL after 5 s.
stop_component() {
  local pid; pid="$(pid_of "$1")"
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDS/$1.pid"
}

stop_all() {
  local name pid i
  node_down
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    name="${COMPONENTS[$i]}"
    pid="$(pid_of "$name")"
    [ -n "$pid" ] || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    name="${COMPONENTS[$i]}"
    pid="$(pid_of "$name")"
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDS/$name.pid"
  done
}

start_apiserver() {  # bin (uses API_PORT, ETCD_PORT)
  log "starting kube-apiserver on 127.0.0.1:$API_PORT"
  start_component kube-apiserver "$1/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/serving.crt" --tls-private-key-file "$PKI/serving.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode RBAC --service-cluster-ip-range 10.96.0.0/16 \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --audit-policy-file "$ROOT/scripts/cluster/audit-policy.yaml" --audit-log-format json \
    --audit-log-path "$DIR/audit/audit.log" --audit-log-maxsize 20 --audit-log-maxbackup 2 \
    --cert-dir "$DIR/apiserver-certs" --profiling=false --v=1
  wait_for kube-apiserver 90 curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz"
}

start_kcm() {  # bin (uses KCM_PORT)
  start_component kube-controller-manager "$1/kube-controller-manager" \
    --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true --controllers '*' --cert-dir "$DIR/kcm-certs" --v=1
}

start_scheduler() {  # bin (uses SCHED_PORT)
  start_component kube-scheduler "$1/kube-scheduler" \
    --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false --v=1
}

start_kwok() {  # bin (uses KWOK_PORT)
  start_component kwok "$1/kwok" --kubeconfig "$DIR/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --cidr 10.244.0.1/16 --server-address "127.0.0.1:$KWOK_PORT" \
    --node-lease-duration-seconds 20
}

# kubectl as the plane's admin, quiet.
kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@" >/dev/null 2>&1; }

# Polls a command every 0.2 s for up to N seconds.
poll() {  # seconds command...
  local tries=$(($1 * 5)); shift
  for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.2; done
  return 1
}

probe_pod_is() {  # namespace jsonpath glob
  # shellcheck disable=SC2053
  [[ "$(kubectl --kubeconfig "$KUBECONFIG_ADMIN" get pod probe -n "$1" -o jsonpath="$2" 2>/dev/null)" == $3 ]]
}

restart_stuck() {  # component start-function
  log "$1 did not act in time after the outage: restarting it"
  stop_component "$1"
  "$2" "$BIN"
}

# After an outage drill a component's informers may sit in a long backoff (the restarted API server
# answers 403 until its RBAC cache is filled, and client-go backs off): a new namespace would get no
# ServiceAccount, or a new pod would stay unscheduled, for minutes. A real cluster's static pods would
# be restarted by their liveness probes; here: probe every stage (controller manager → scheduler →
# kwok) with a namespace and a pod, and restart the component that does not act.
ensure_plane_serves() {
  local ns="cluster-probe-$$-$RANDOM"
  kc create namespace "$ns" || return 0
  if ! poll 20 kc get serviceaccount default -n "$ns"; then
    restart_stuck kube-controller-manager start_kcm
    wait_for kube-controller-manager 60 kubectl --kubeconfig "$KUBECONFIG_ADMIN" get serviceaccount default -n "$ns"
  fi
  if [ "$NODES" -gt 0 ]; then
    kc run probe -n "$ns" --image=probe --restart=Never \
      --overrides='{"spec":{"nodeSelector":{"type":"kwok"},"automountServiceAccountToken":false}}'
    if ! poll 10 probe_pod_is "$ns" '{.spec.nodeName}' '?*'; then
      restart_stuck kube-scheduler start_scheduler
      wait_for kube-scheduler 60 probe_pod_is "$ns" '{.spec.nodeName}' '?*'
    fi
    if ! poll 10 probe_pod_is "$ns" '{.status.phase}' Running; then
      restart_stuck kwok start_kwok
      wait_for kwok 60 probe_pod_is "$ns" '{.status.phase}' Running
    fi
  fi
  kc delete namespace "$ns" --wait=false || true
}

start_etcd() {  # bin (uses ETCD_PORT, ETCD_PEER_PORT)
  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  start_component etcd "$1/etcd" --data-dir "$DIR/etcd" --name local \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --quota-backend-bytes 2147483648
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}

load_ports() {
  [ -f "$DIR/ports.env" ] || die "no cluster under $DIR; run scripts/cluster.sh up"
  # shellcheck disable=SC1091
  . "$DIR/ports.env"
}

# Stops a component (kube-apiserver or etcd), waits `down_seconds`, starts it again on the same
# ports (outage drills).
restart_component() {  # name down_seconds
  load_ports
  local name="$1" down="${2:-0}"
  stop_component "$name"
  log "$name stopped; down for ${down}s"
  sleep "$down"
  mv "$LOGS/$name.log" "$LOGS/$name.previous.log" 2>/dev/null || true
  case "$name" in
    kube-apiserver) start_apiserver "$BIN" ;;
    etcd) start_etcd "$BIN" ;;
  esac
  wait_for kube-apiserver 60 kubectl --kubeconfig "$KUBECONFIG_ADMIN" get --raw /readyz
  ensure_plane_serves
  log "$name is back"
}

cmd_compact_etcd() {
  load_ports
  local revision
  revision="$(curl -fsS -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/range" -d '{"key":"AA=="}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')" \
    || die "cannot read etcd's revision"
  curl -fsS -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/compaction" \
    -d "{\"revision\": \"$revision\", \"physical\": true}" >/dev/null || die "etcd compaction failed"
  log "etcd compacted at revision $revision"
}

# The images scripts/images.sh built, into the real node (it cannot pull them: no registry).
import_images() {
  local archive_dir="$DIR/node/images"
  # images.sh knows its storage and says why it cannot (e.g. not built); the plane works without.
  if ! "$ROOT/scripts/images.sh" save "$archive_dir"; then
    log "the real node has none of our images (see above)"
    return 0
  fi
  log "importing $(echo $("$ROOT/scripts/images.sh" names)) into the real node"
  node_import "$archive_dir"/*.tar
  rm -rf "$archive_dir"
}

cmd_up() {
  REAL_NODE=0
  case "${1:-}" in
    "") ;;
    --real-node) REAL_NODE=1 ;;
    *) die "unknown option '$1' (scripts/cluster.sh up [--real-node])" ;;
  esac
  if [ -f "$DIR/ports.env" ] && cmd_status >/dev/null 2>&1; then
    log "already running ($KUBECONFIG_ADMIN)"
    return 0
  fi
  stop_all 2>/dev/null || true  # a stale or half-started plane
  local bin
  bin="$(bin_dir)" || die "installing the control-plane binaries failed (see above); retry scripts/cluster.sh install"
  command -v kubectl >/dev/null || die "kubectl is not on PATH"
  BIN="$bin"
  rm -rf "$DIR"
  mkdir -p "$LOGS" "$PIDS" "$DIR/etcd" "$DIR/audit"
  ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port); API_PORT=$(free_port)
  KCM_PORT=$(free_port); SCHED_PORT=$(free_port); KWOK_PORT=$(free_port)
  cat > "$DIR/ports.env" <<ENV
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
API_PORT=$API_PORT
KCM_PORT=$KCM_PORT
SCHED_PORT=$SCHED_PORT
KWOK_PORT=$KWOK_PORT
NODES=$NODES
BIN=$bin
ENV
  make_pki
  write_kubeconfig "$KUBECONFIG_ADMIN" cluster-admin admin
  write_kubeconfig "$DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  write_kubeconfig "$DIR/scheduler.kubeconfig" system:kube-scheduler scheduler
  write_kubeconfig "$DIR/kwok.kubeconfig" kwok kwok

  start_etcd "$bin"

  start_apiserver "$bin"

  log "starting kube-controller-manager and kube-scheduler"
  start_kcm "$bin"
  start_scheduler "$bin"
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"

  log "starting kwok with $NODES fake node(s)"
  start_kwok "$bin"
  wait_for kwok 30 curl -fsS "http://127.0.0.1:$KWOK_PORT/healthz"
  create_nodes
  if [ "$NODES" -gt 0 ]; then
    wait_for kube-apiserver 60 kubectl --kubeconfig "$KUBECONFIG_ADMIN" wait --for=condition=Ready node --all --timeout=2s
  fi
  wait_for kube-controller-manager 60 kubectl --kubeconfig "$KUBECONFIG_ADMIN" get serviceaccount default -n default
  if [ "$REAL_NODE" = 1 ]; then
    ( node_up ) || { stop_all; die "the real node did not start (see above)"; }
    import_images
  fi
  log "ready: export KUBECONFIG=$KUBECONFIG_ADMIN"
}

cmd_down() {
  [ -d "$PIDS" ] || { log "nothing to stop"; return 0; }
  stop_all
  log "stopped (logs kept in $LOGS)"
}

cmd_status() {
  local ok=0 name
  local components=("${COMPONENTS[@]}")
  [ -d "$DIR/node" ] && components+=(containerd kubelet)
  for name in "${components[@]}"; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: not running"; ok=1; fi
  done
  if [ $ok -eq 0 ]; then
    kubectl --kubeconfig "$KUBECONFIG_ADMIN" get --raw /readyz >/dev/null 2>&1 || { echo "kube-apiserver: not ready"; ok=1; }
  fi
  return $ok
}

cmd_env() {
  [ -f "$DIR/ports.env" ] || die "no cluster under $DIR; run scripts/cluster.sh up"
  # shellcheck disable=SC1091
  . "$DIR/ports.env"
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "export PATH=$BIN:\$PATH"
}

cmd_sa_kubeconfig() {  # namespace serviceaccount out
  [ $# -eq 3 ] || die "usage: scripts/cluster.sh sa-kubeconfig NAMESPACE SERVICEACCOUNT OUT"
  # shellcheck disable=SC1091
  . "$DIR/ports.env"
  local token
  token="$(kubectl --kubeconfig "$KUBECONFIG_ADMIN" create token "$2" -n "$1" --duration 24h)" \
    || die "cannot create a token for serviceaccount $1/$2 (does it exist?)"
  write_kubeconfig_for "$3" "system:serviceaccount:$1:$2" "{token: \"$token\"}" "$1"
}

case "${1:-}" in
  install) "$ROOT/scripts/cluster/install.sh" ;;
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  sa-kubeconfig) shift; cmd_sa_kubeconfig "$@" ;;
  restart-apiserver) shift; restart_component kube-apiserver "$@" ;;
  restart-etcd) shift; restart_component etcd "$@" ;;
  compact-etcd) cmd_compact_etcd ;;
  *) sed -n '2,19p' "$0" >&2; exit 2 ;;
esac
