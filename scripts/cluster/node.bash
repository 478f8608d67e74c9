# A real node for the local control plane: kubelet + a private containerd + runc + the CNI bridge
# plugin, running real containers (the images tier). Sourced by scripts/cluster.sh, whose helpers
# and variables (DIR, PKI, LOGS, PIDS, BIN, API_PORT, start_component, wait_for, free_port, log,
# die) it uses:
#   node_up       (`scripts/cluster.sh up --real-node`) needs root; the node lives in $DIR/node
#   node_down     stops the node's pods, kubelet and containerd, unmounts, and restores every host
#                 setting it changed (safe after a failure; `scripts/cluster.sh down`)
#   node_import ARCHIVE...   imports image archives (docker-archive) into the node
#
# Networking: pods get 10.85.0.0/24 on the bridge cxpbr0 (gateway 10.85.0.1, the host). There is no
# kube-proxy: the one ClusterIP pods need, the `kubernetes` Service (10.96.0.1:443), is DNATed to the
# API server on 127.0.0.1 (route_localnet on cxpbr0 only). A service a test runs for the pods (the
# model stub) listens on 10.85.0.1. Everything the kubelet changes on the host (sysctls, fixed paths)
# is recorded at `up` and restored at `down`.
NODE="$DIR/node"
BRIDGE=cxpbr0
GATEWAY=10.85.0.1
SUBNET=10.85.0.0/24
SERVICE_IP=10.96.0.1
PAUSE_IMAGE=localhost/codexproxy/pause:local
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
# Paths the kubelet and containerd use whatever their flags say.
FIXED_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/lib/cni /etc/cni)
NAT_RULE=(PREROUTING -i "$BRIDGE" -d "$SERVICE_IP/32" -p tcp --dport 443 -m comment --comment codexproxy-local-node -j DNAT)

ctr_() { ctr --address "$NODE/containerd.sock" --namespace k8s.io "$@"; }

node_name() { hostname; }

preflight() {
  [ "$(id -u)" -eq 0 ] || die "the real node needs root (kubelet, containerd, network namespaces)"
  local tool
  for tool in containerd containerd-shim-runc-v2 runc ctr iptables ip; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh"
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] \
    || die "the CNI plugins are missing (/usr/lib/cni): run scripts/setup.sh"
  # The API server reaches the kubelet (logs, exec) at the node's hostname; the kubelet listens on
  # loopback only.
  getent hosts "$(node_name)" | grep -qE '^(127\.|::1)' \
    || die "the hostname '$(node_name)' does not resolve to a loopback address (add it to /etc/hosts)"
}

record_host_state() {
  local state="$NODE/host-state" key path
  [ -f "$state" ] && return 0
  {
    for key in "${SYSCTLS[@]}"; do echo "sysctl $key $(sysctl -n "$key")"; done
    for path in "${FIXED_PATHS[@]}"; do [ -e "$path" ] || echo "created $path"; done
  } > "$state"
}

restore_host_state() {
  local state="$NODE/host-state" kind a b
  [ -f "$state" ] || return 0
  while read -r kind a b; do
    case "$kind" in
      sysctl) sysctl -qw "$a=$b" || log "cannot restore $a=$b" ;;
      created) rm -rf "$a" 2>/dev/null || log "cannot remove $a" ;;
    esac
  done < "$state"
  rm -f "$state"
}

make_pause_image() {
  ctr_ images ls -q | grep -qx "$PAUSE_IMAGE" && return 0
  local work="$NODE/pause"
  mkdir -p "$work/rootfs"
  gcc -static -Os -o "$work/rootfs/pause" "$ROOT/scripts/cluster/pause.c" || die "cannot compile the pause program"
  strip "$work/rootfs/pause"
  # A one-file OCI image by hand: layer, config, manifest, index (no builder needed).
  python3 - "$work" "$PAUSE_IMAGE" <<'PY' || die "cannot assemble the pause image"
import hashlib, io, json, os, sys, tarfile
work, ref = sys.argv[1], sys.argv[2]
blobs = os.path.join(work, "oci/blobs/sha256"); os.makedirs(blobs, exist_ok=True)
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, digest), "wb").write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as tar:
    info = tar.gettarinfo(os.path.join(work, "rootfs/pause"), arcname="pause")
    info.uid = info.gid = 0; info.uname = info.gname = ""
    tar.addfile(info, open(os.path.join(work, "rootfs/pause"), "rb"))
layer = layer.getvalue()
layer_desc = put(layer)
config = put(json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
                         "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}).encode())
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}]}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           **manifest, "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref}}]},
          open(os.path.join(work, "oci/index.json"), "w"))
open(os.path.join(work, "oci/oci-layout"), "w").write('{"imageLayoutVersion": "1.0.0"}')
with tarfile.open(os.path.join(work, "pause.tar"), "w") as tar:
    for name in ("oci-layout", "index.json", "blobs"):
        tar.add(os.path.join(work, "oci", name), arcname=name)
PY
  ctr_ images import --index-name "$PAUSE_IMAGE" "$work/pause.tar" >/dev/null || die "cannot import the pause image"
}

write_configs() {
  mkdir -p "$NODE/cni/net.d" "$NODE/cni/ipam" "$NODE/kubelet" "$NODE/kubelet-pki" "$NODE/volume-plugins" \
    "$NODE/containerd"
  cat > "$NODE/containerd/config.toml" <<TOML
version = 2
root = "$NODE/containerd/root"
state = "$NODE/containerd/state"
[grpc]
  address = "$NODE/containerd.sock"
[ttrpc]
  address = "$NODE/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni/net.d"
TOML
  cat > "$NODE/cni/net.d/10-codexproxy.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "codexproxy-node", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$NODE/cni/ipam",
            "ranges": [[{"subnet": "$SUBNET", "gateway": "$GATEWAY"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
]}
JSON
  local kubelet_port kubelet_healthz_port
  kubelet_port=$(free_port); kubelet_healthz_port=$(free_port)
  cat > "$NODE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $kubelet_port
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz_port
readOnlyPort: 0
containerRuntimeEndpoint: unix://$NODE/containerd.sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
makeIPTablesUtilChains: false
# No registry: an image the node has must never be collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
clusterDomain: cluster.local
serializeImagePulls: false
# Only holders of the plane's client certificates (the API server) reach it, on loopback.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: AlwaysAllow}
YAML
  write_kubeconfig "$NODE/kubelet.kubeconfig" "system:node:$(node_name)" node
}

setup_network() {
  teardown_network  # a stale rule of an earlier plane would DNAT to its dead port
  ip link add "$BRIDGE" type bridge
  ip addr replace "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
  iptables -t nat -A "${NAT_RULE[@]}" --to-destination "127.0.0.1:$API_PORT"
}

teardown_network() {
  local rule
  # Every rule of ours, whatever port it names.
  iptables -t nat -S PREROUTING 2>/dev/null | grep -- '--comment codexproxy-local-node' | while read -r rule; do
    eval "iptables -t nat ${rule/-A /-D }" || true
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE" || true
}

node_up() {
  preflight
  [ -f "$PKI/node.crt" ] || die "no node certificate in $PKI: start the plane with scripts/cluster.sh up --real-node"
  mkdir -p "$NODE"
  record_host_state
  write_configs
  setup_network
  log "starting containerd"
  start_component containerd containerd --config "$NODE/containerd/config.toml"
  wait_for containerd 30 ctr_ version
  make_pause_image
  kubectl --kubeconfig "$DIR/kubeconfig" create clusterrolebinding codexproxy-local-nodes \
    --clusterrole=system:node --group=system:nodes >/dev/null 2>&1 || true
  log "starting kubelet (node $(node_name))"
  start_component kubelet "$BIN/kubelet" --config "$NODE/kubelet.yaml" --kubeconfig "$NODE/kubelet.kubeconfig" \
    --root-dir "$NODE/kubelet" --cert-dir "$NODE/kubelet-pki" --volume-plugin-dir "$NODE/volume-plugins" \
    --node-labels codexproxy.io/real-node=true --v=1
  wait_for kubelet 60 kubectl --kubeconfig "$DIR/kubeconfig" wait --for=condition=Ready "node/$(node_name)" --timeout=2s
  log "node $(node_name) is Ready"
}

node_down() {
  [ -d "$NODE" ] || return 0
  stop_component kubelet
  # The pods' processes outlive the kubelet and containerd (their shims keep them): kill every
  # container of this node, then the shims, then containerd.
  if [ -S "$NODE/containerd.sock" ]; then
    local task
    for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true; done
  fi
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $NODE/containerd.sock" 2>/dev/null || true
  stop_component containerd
  # Mounts under the node's folder (rootfs overlays, netns, projected volumes), deepest first.
  awk -v dir="$NODE" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done
  teardown_network
  restore_host_state
}

node_import() {
  local archive
  for archive in "$@"; do
    ctr_ images import "$archive" >/dev/null || die "importing $archive into the node failed"
  done
}
