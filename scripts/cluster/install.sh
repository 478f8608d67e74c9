#!/usr/bin/env bash
# Builds the pinned control-plane binaries from their Go modules into a cache outside the repo:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet (the real node of the
#   images tier), kube-network-policies (its NetworkPolicy implementation), prometheus-adapter (the
#   custom metrics API the e2e tier's HorizontalPodAutoscaler reads), kwok, helm; and the
#   Prometheus Operator's ServiceMonitor and PrometheusRule CRDs and KEDA's ScaledObject CRD
#   (e2e: a cluster that serves monitoring.coreos.com/v1), copied from its Go module to $CACHE/crds.
# Idempotent: a binary that exists with the right version is not rebuilt.
#   scripts/cluster/install.sh          prints the bin directory on its last line
# Cache: $CXP_TOOLS_CACHE (default ~/.cache/codexproxy-tools). Needs Go and the Go module proxy.
set -euo pipefail

K8S_VERSION="1.33.13"     # kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
ETCD_VERSION="3.5.35"
KWOK_VERSION="0.7.0"      # ships default pod stages
HELM_VERSION="3.19.5"
PROMETHEUS_OPERATOR_VERSION="0.85.0"  # the monitoring.coreos.com/v1 CRDs the e2e tier installs
KNP_VERSION="0.8.0"       # kube-network-policies: enforces NetworkPolicy on the real node (nftables)
KEDA_VERSION="2.18.2"     # KEDA's ScaledObject CRD: the e2e tier validates rendered ScaledObjects against it
ADAPTER_VERSION="0.12.0"  # prometheus-adapter: serves custom.metrics.k8s.io from Prometheus (e2e HPA)

CACHE="${CXP_TOOLS_CACHE:-$HOME/.cache/codexproxy-tools}"
BIN="$CACHE/bin"
WORK="$CACHE/work"
mkdir -p "$BIN" "$WORK"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

log() { printf '[cluster-install] %s\n' "$*" >&2; }
die() { printf '[cluster-install] error: %s\n' "$*" >&2; exit 1; }
# Runs a build step with its output in $WORK/<step>.log; on failure shows the log's tail and stops.
step() {
  local name="$1"; shift
  if ! "$@" >"$WORK/$name.log" 2>&1; then
    tail -n 30 "$WORK/$name.log" >&2
    die "$name failed (full log: $WORK/$name.log); check the network and retry scripts/cluster.sh install"
  fi
}
command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 and retry scripts/cluster.sh install"

stamp_ok() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }

# A wrapper module that requires `main_module@version` and pins each of its `=> ./local` replaces
# to the published module of the same release (`version_of` maps a module path to its version).
write_wrapper() {
  local dir="$1" main_module="$2" version="$3" version_of="$4"
  local gomod
  gomod="$(go mod download -json "$main_module@$version" 2>/dev/null | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [ -f "$gomod" ] || die "cannot download $main_module@$version from the Go module proxy; check the network and retry"
  mkdir -p "$dir"
  {
    echo "module codexproxy.local/wrapper"
    echo
    echo "go 1.24.0"
    echo
    echo "require $main_module $version"
    echo
    echo "replace ("
    grep -E '^\s+\S+ => \.\.?/' "$gomod" | grep -v FORBIDDEN | awk '{print $1}' | while read -r module; do
      echo "	$module => $module $($version_of "$module")"
    done
    echo ")"
  } > "$dir/go.mod"
}

k8s_staging_version() { echo "v0.${K8S_VERSION#1.}"; }
etcd_module_version() {
  case "$1" in
    go.etcd.io/etcd/client/v2) echo "v2.305.${ETCD_VERSION#3.5.}" ;;
    *) echo "v$ETCD_VERSION" ;;
  esac
}

build_kubernetes() {
  local want="v$K8S_VERSION" missing=() b
  for b in "${K8S_BINARIES[@]}"; do stamp_ok "$b" "$want" || missing+=("$b"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "building ${missing[*]} $want (first time: several minutes)"
  local dir="$WORK/kubernetes-$K8S_VERSION"
  write_wrapper "$dir" k8s.io/kubernetes "$want" k8s_staging_version
  cat > "$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  local minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$want -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  step kubernetes-tidy sh -c "cd '$dir' && go mod tidy"
  step kubernetes-build sh -c "cd '$dir' && go build -trimpath -ldflags '$ldflags' -o '$BIN/' \
      ${missing[*]/#/k8s.io/kubernetes/cmd/}"
  for b in "${missing[@]}"; do stamp "$b" "$want"; done
}

build_etcd() {
  stamp_ok etcd "v$ETCD_VERSION" && return
  log "building etcd v$ETCD_VERSION"
  local dir="$WORK/etcd-$ETCD_VERSION"
  write_wrapper "$dir" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" etcd_module_version
  cat > "$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  step etcd-tidy sh -c "cd '$dir' && go mod tidy"
  step etcd-build sh -c "cd '$dir' && go build -trimpath -ldflags '-s -w' -o '$BIN/etcd' go.etcd.io/etcd/server/v3"
  stamp etcd "v$ETCD_VERSION"
}

install_plain() {  # name module version ldflags
  local name="$1" module="$2" version="$3" ldflags="$4"
  stamp_ok "$name" "$version" && return
  log "building $name $version"
  step "$name-build" env GOBIN="$BIN" go install -trimpath -ldflags "$ldflags" "$module@$version"
  stamp "$name" "$version"
}

build_kube_network_policies() {  # its main package is .../cmd: `go install` would name it cmd
  local version="v$KNP_VERSION" tmp
  stamp_ok kube-network-policies "$version" && return
  log "building kube-network-policies $version"
  tmp="$WORK/kube-network-policies-$version"
  mkdir -p "$tmp"
  step kube-network-policies-build env GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kube-network-policies/cmd@$version"
  mv "$tmp/cmd" "$BIN/kube-network-policies"
  stamp kube-network-policies "$version"
}

# `go install module@version` asks the module proxy for the module's version list (for its
# deprecation notice), which the proxy here refuses for this module: built from its downloaded
# source instead, with the module's own go.sum.
build_prometheus_adapter() {
  local version="v$ADAPTER_VERSION" dir src
  stamp_ok prometheus-adapter "$version" && return
  log "building prometheus-adapter $version"
  dir="$(go mod download -json "sigs.k8s.io/prometheus-adapter@$version" 2>/dev/null \
         | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -d "$dir" ] || die "cannot download sigs.k8s.io/prometheus-adapter@$version from the Go module proxy; check the network and retry"
  src="$WORK/prometheus-adapter-$version"
  rm -rf "$src"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  step prometheus-adapter-build env -C "$src" go build -trimpath -ldflags "-s -w" \
    -o "$BIN/prometheus-adapter" ./cmd/adapter
  rm -rf "$src"
  stamp prometheus-adapter "$version"
}

fetch_keda_crd() {
  local want="v$KEDA_VERSION" crds="$CACHE/crds" dir
  [ "$(cat "$crds/.keda-version" 2>/dev/null)" = "$want" ] && return
  log "fetching KEDA's ScaledObject CRD $want"
  dir="$(go mod download -json "github.com/kedacore/keda/v2@$want" 2>/dev/null \
         | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -d "$dir" ] || die "cannot download github.com/kedacore/keda/v2@$want from the Go module proxy; check the network and retry"
  mkdir -p "$crds"
  install -m 0644 "$dir/config/crd/bases/keda.sh_scaledobjects.yaml" "$crds/"
  echo "$want" > "$crds/.keda-version"
}

fetch_monitoring_crds() {
  local want="v$PROMETHEUS_OPERATOR_VERSION" crds="$CACHE/crds" dir name
  [ "$(cat "$crds/.version" 2>/dev/null)" = "$want" ] && return
  log "fetching the Prometheus Operator CRDs $want"
  dir="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$want" 2>/dev/null \
         | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -d "$dir" ] || die "cannot download github.com/prometheus-operator/prometheus-operator@$want from the Go module proxy; check the network and retry"
  mkdir -p "$crds"
  for name in servicemonitors prometheusrules; do
    install -m 0644 "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$name.yaml" "$crds/"
  done
  echo "$want" > "$crds/.version"
}

build_etcd
build_kubernetes
install_plain kwok sigs.k8s.io/kwok/cmd/kwok "v$KWOK_VERSION" \
  "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION"
install_plain helm helm.sh/helm/v3/cmd/helm "v$HELM_VERSION" \
  "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
build_kube_network_policies
build_prometheus_adapter
fetch_monitoring_crds
fetch_keda_crd
echo "$BIN"
