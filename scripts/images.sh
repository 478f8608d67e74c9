#!/usr/bin/env bash
# Builds, checks and publishes the two images of images/Dockerfile with buildah and podman (no
# Docker daemon needed; as root).
#
#   scripts/images.sh build [proxy|controller]   build both (or one) images, tagged with the version
#                                                (buildah's layer cache: unchanged steps are reused)
#   scripts/images.sh run-check                  run each built image with podman the way a pod runs
#                                                it (read-only root, non-root, empty dirs at its writable
#                                                paths) and check it works (tests/images/test_run_check.py)
#   scripts/images.sh push                       push both to $IMAGE_REGISTRY (log in first:
#                                                `podman login <registry>`)
#   scripts/images.sh save DIR                   write both as image archives into DIR (for containerd)
#   scripts/images.sh names                      print the two image references
#   scripts/images.sh pin-codex                  record the sha512 of the Codex CLI's platform
#                                                builds for the version in tests/node/package.json
#
# IMAGE_REGISTRY (default ghcr.io/codexproxy, where releases are published and what the chart's
# defaults name) and IMAGE_TAG (default the chart's appVersion) name the images. DEBIAN_IMAGE picks
# the base (default docker.io/library/debian:bookworm-slim; pin a digest for releases): when it is
# not present locally it is pulled, and when no registry is reachable it is made from Debian's
# packages with mmdebstrap.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/build/images"
CHART="$ROOT/charts/codexproxy-operator/Chart.yaml"
APP_VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART")"
IMAGE_REGISTRY="${IMAGE_REGISTRY:-ghcr.io/codexproxy}"
IMAGE_TAG="${IMAGE_TAG:-$APP_VERSION}"
DEBIAN_IMAGE="${DEBIAN_IMAGE:-docker.io/library/debian:bookworm-slim}"
PROXY_IMAGE="$IMAGE_REGISTRY/codex-proxy:$IMAGE_TAG"
CONTROLLER_IMAGE="$IMAGE_REGISTRY/codexproxy-controller:$IMAGE_TAG"

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

# podman and buildah read this instead of /etc/containers/containers.conf (nothing of the host's
# configuration changes): runc and cgroupfs work on cgroup v1 and v2 hosts alike (crun refuses some
# v1 hybrids), and the default ulimits stay within what an unprivileged container may be given.
configure() {
  [ "$(id -u)" -eq 0 ] || die "run as root (buildah and podman here use root's storage)"
  local tool
  for tool in buildah podman mmdebstrap; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh (it installs buildah, podman, runc, mmdebstrap)"
  done
  mkdir -p "$WORK"
  cat > "$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  export CONTAINERS_CONF="$WORK/containers.conf"
}

# apt options the host itself needs (e.g. a snapshot mirror whose Release files are past their
# Valid-Until date), passed to the build's apt only.
host_apt_options() {
  local opts=() dump
  dump="$(apt-config dump 2>/dev/null || true)"  # whole (a `| grep -q` would SIGPIPE it: pipefail)
  grep -q '^Acquire::Check-Valid-Until "false"' <<<"$dump" && opts+=(-o Acquire::Check-Valid-Until=false)
  grep -q '^Acquire::Check-Date "false"' <<<"$dump" && opts+=(-o Acquire::Check-Date=false)
  echo "${opts[*]:-}"
}

registry_reachable() {  # image reference → its registry answers /v2/ (401 counts)
  local registry="${1%%/*}" code
  [ "$registry" = docker.io ] && registry=registry-1.docker.io
  code="$(curl -sS -o /dev/null -m 5 -w '%{http_code}' "https://$registry/v2/" 2>/dev/null || true)"
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

# The base image: present, pulled, or made from Debian's packages (like the official slim image:
# minbase, merged /usr, no docs, man pages or locales).
ensure_base() {
  podman image exists "$DEBIAN_IMAGE" && return 0
  if registry_reachable "$DEBIAN_IMAGE"; then
    log "pulling $DEBIAN_IMAGE"
    podman pull -q "$DEBIAN_IMAGE" >/dev/null || die "pulling $DEBIAN_IMAGE failed; check the registry and retry"
    return 0
  fi
  [[ "$DEBIAN_IMAGE" == *:bookworm-slim ]] \
    || die "$DEBIAN_IMAGE is not present and its registry is unreachable; import it (podman load) or unset DEBIAN_IMAGE"
  log "no registry reachable: making $DEBIAN_IMAGE from Debian's packages (mmdebstrap)"
  local tar="$WORK/debian-bookworm-slim.tar" aptopts=()
  local opt
  for opt in $(host_apt_options); do [ "$opt" = -o ] || aptopts+=(--aptopt="${opt/=/ \"}\""); done
  mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    "${aptopts[@]}" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -f "$1"/etc/apt/apt.conf.d/99mmdebstrap "$1"/etc/hostname "$1"/etc/resolv.conf' \
    bookworm "$tar" >"$WORK/mmdebstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $WORK/mmdebstrap.log): check access to deb.debian.org and retry"; }
  podman import -q "$tar" "$DEBIAN_IMAGE" >/dev/null || die "podman import of $tar failed"
  rm -f "$tar"
}

build_target() {  # target image
  local target="$1" image="$2" started=$SECONDS
  local ca=/etc/ssl/certs/ca-certificates.crt digest
  digest="$(podman image inspect --format '{{.Digest}}' "$DEBIAN_IMAGE")"
  log "building $image (target $target)"
  # The host's CA bundle is the build's `ca` secret, for its one download (an inspecting TLS proxy
  # has its own CA); a secret is never part of a layer, and unlike a volume it keeps the layer cache.
  buildah bud --pull=never --isolation chroot --network host --layers \
    --file "$ROOT/images/Dockerfile" --target "$target" --tag "$image" --secret "id=ca,src=$ca" \
    --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" --build-arg APT_OPTIONS="$(host_apt_options)" \
    --build-arg VERSION="$IMAGE_TAG" --build-arg BASE_NAME="$DEBIAN_IMAGE" --build-arg BASE_DIGEST="$digest" \
    "$ROOT" >"$WORK/build-$target.log" 2>&1 \
    || { tail -n 30 "$WORK/build-$target.log" >&2; die "building target $target failed (log: $WORK/build-$target.log)"; }
  log "built $image in $((SECONDS - started)) s, $(image_size "$image")"
}

image_size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

cmd_build() {
  case "${1:-all}" in all|controller|proxy) ;; *) die "unknown target '$1': use proxy, controller or nothing for both" ;; esac
  configure
  ensure_base
  case "${1:-all}" in
    all) build_target codexproxy-controller "$CONTROLLER_IMAGE"; build_target codex-proxy "$PROXY_IMAGE" ;;
    controller) build_target codexproxy-controller "$CONTROLLER_IMAGE" ;;
    proxy) build_target codex-proxy "$PROXY_IMAGE" ;;
  esac
}

require_built() {
  local image
  for image in "$PROXY_IMAGE" "$CONTROLLER_IMAGE"; do
    podman image exists "$image" || die "$image is not built: run scripts/images.sh build"
  done
}

cmd_run_check() {
  configure
  require_built
  (cd "$ROOT/tests/images" && CXP_PROXY_IMAGE="$PROXY_IMAGE" CXP_CONTROLLER_IMAGE="$CONTROLLER_IMAGE" \
    PYTHONPATH="$ROOT/tests/pylib" PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -v test_run_check) \
    || die "run-check failed (above: which image and what)"
}

cmd_push() {
  configure
  require_built
  [ "$IMAGE_REGISTRY" != "${IMAGE_REGISTRY#localhost}" ] && die "IMAGE_REGISTRY=$IMAGE_REGISTRY is local: set IMAGE_REGISTRY=<registry>/<org> and build again"
  local image
  for image in "$CONTROLLER_IMAGE" "$PROXY_IMAGE"; do
    log "pushing $image"
    podman push "$image" || die "pushing $image failed: are you logged in (podman login ${IMAGE_REGISTRY%%/*})?"
  done
}

cmd_save() {  # dir
  [ $# -eq 1 ] || die "usage: scripts/images.sh save DIR"
  configure
  require_built
  mkdir -p "$1"
  local image name
  for image in "$CONTROLLER_IMAGE" "$PROXY_IMAGE"; do
    name="${image##*/}"; name="${name%%:*}"
    rm -f "$1/$name.tar"
    podman save -q --format docker-archive -o "$1/$name.tar" "$image" || die "saving $image failed"
  done
}

cmd_pin_codex() {
  local pin="$ROOT/tests/node/package.json"
  python3 - "$pin" <<'PY'
import json, sys, urllib.request
path = sys.argv[1]
pkg = json.load(open(path))
version = pkg["dependencies"]["@openai/codex"]
pins = pkg.setdefault("codexNativeIntegrity", {})
for platform in ("linux-x64", "linux-arm64"):
    url = f"https://registry.npmjs.org/@openai/codex/{version}-{platform}"
    with urllib.request.urlopen(url, timeout=30) as r:
        pins[platform] = json.load(r)["dist"]["integrity"]
    print(f"codex {version}-{platform}: {pins[platform]}")
json.dump(pkg, open(path, "w"), indent=2)
open(path, "a").write("\n")
PY
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  run-check) cmd_run_check ;;
  push) cmd_push ;;
  save) shift; cmd_save "$@" ;;
  names) echo "$PROXY_IMAGE"; echo "$CONTROLLER_IMAGE" ;;
  pin-codex) cmd_pin_codex ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
