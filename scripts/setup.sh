#!/usr/bin/env bash
# Installs every build and test dependency of the project. Idempotent: a second run only checks.
#   scripts/setup.sh            install what is missing
#   scripts/setup.sh --fuzz     and clang with libFuzzer's runtime (bench/fuzz.sh)
# Debian packages come from apt; the Codex CLI (a real worker peer for tests) from npm, pinned in
# tests/node/package.json; the local control plane's binaries are built from Go modules
# (scripts/cluster/install.sh, cached in ~/.cache/codexproxy-tools).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: run as root or install sudo"
  SUDO="sudo"
fi

# Debian packages named in docs/architecture.md (the design's dependency list) plus the toolchain.
DEB_PACKAGES=(
  g++ cmake ninja-build pkg-config make
  libboost-dev libcpprest-dev libssl-dev
  libyaml-cpp-dev nlohmann-json3-dev prometheus-cpp-dev libspdlog-dev doctest-dev
  clang-format curl ca-certificates openssl
  prometheus  # promtool, for the alert-rule tests
  python3-yaml  # the Helm chart tests read rendered manifests
  python3-jsonschema  # protocol conformance: frames validated against codex's own JSON Schema
  strace  # the real worker's network calls are traced in a test (it must reach only its model)
  # The images tier: build and run the images (scripts/images.sh), and a real node (kubelet +
  # containerd + runc + the CNI bridge) beside the kwok nodes (scripts/cluster/node.sh)
  buildah podman runc uidmap mmdebstrap containerd containernetworking-plugins iptables iproute2
)
if [ "${1:-}" = "--fuzz" ]; then
  DEB_PACKAGES+=(clang libclang-rt-14-dev)  # libFuzzer and the sanitizer runtimes for clang 14
fi
# Tools that may already come from elsewhere (e.g. a newer Node.js): install from Debian only when
# the command is missing.
declare -A COMMAND_PACKAGES=([python3]=python3 [node]=nodejs [npm]=npm)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
for cmd in "${!COMMAND_PACKAGES[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${COMMAND_PACKAGES[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || die "apt-get update failed; check the network and retry scripts/setup.sh"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed; retry scripts/setup.sh"
else
  log "Debian packages present"
fi

# npm test peers (the Codex CLI). Reinstalled only when package.json changed.
NODE_DIR="$ROOT/tests/node"
STAMP="$NODE_DIR/node_modules/.setup-stamp"
want="$(sha256sum "$NODE_DIR/package.json" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ] || [ ! -x "$NODE_DIR/node_modules/.bin/codex" ]; then
  log "installing npm test peers (tests/node/package.json)"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --no-package-lock --loglevel=error) \
    || die "npm install in tests/node failed; retry scripts/setup.sh"
  echo "$want" > "$STAMP"
else
  log "npm test peers present"
fi
"$NODE_DIR/node_modules/.bin/codex" --version >/dev/null 2>&1 \
  || die "the Codex CLI in tests/node does not run; delete tests/node/node_modules and retry"
# The official OpenAI Python client (its structured-output helpers are test peers), pinned in
# tests/python/requirements.txt, into tests/python/site-packages for the python3 the tests run.
PY_DIR="$ROOT/tests/python"
PY_STAMP="$PY_DIR/site-packages/.setup-stamp"
want="$(sha256sum "$PY_DIR/requirements.txt" | cut -d' ' -f1)-$(python3 -c 'import sys; print(sys.version_info[:2])' | tr -d ' ()')"
if [ ! -f "$PY_STAMP" ] || [ "$(cat "$PY_STAMP")" != "$want" ]; then
  log "installing Python test peers (tests/python/requirements.txt)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null || die "installing python3-pip failed"
  fi
  rm -rf "$PY_DIR/site-packages"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --no-warn-conflicts --root-user-action=ignore \
    --target "$PY_DIR/site-packages" -r "$PY_DIR/requirements.txt" \
    || die "pip install of tests/python/requirements.txt failed; retry scripts/setup.sh"
  echo "$want" > "$PY_STAMP"
else
  log "Python test peers present"
fi

# The local control plane's binaries (etcd, Kubernetes, kwok, helm), built once from Go modules.
command -v go >/dev/null 2>&1 || die "Go (>= 1.24) is required to build the local control plane; install it and retry"
"$ROOT/scripts/cluster/install.sh" >/dev/null || die "building the control-plane binaries failed; retry scripts/setup.sh"
log "done"
