#!/usr/bin/env bash
# Sets up, builds and runs every test tier. Exits non-zero on any failure.
#   scripts/test.sh                 everything: unit, integration, e2e, alerts, images (both images
#                                   built with buildah, checked with podman and on a real kubelet +
#                                   containerd node; needs root), then the unit and
#                                   integration tiers again on the ASan+UBSan build (sanitize), then
#                                   the scan of every kept log and trace file for test secrets (scan)
#   scripts/test.sh -L unit         one tier (any ctest arguments are passed through); the sanitized
#                                   build is made only when the arguments name no label or `sanitize`
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh"
if [[ " $* " != *" -L "* || "$*" == *sanitize* ]]; then
  "$ROOT/scripts/build.sh" sanitize
fi
rm -rf "$ROOT/build/test-artifacts"
cd "$ROOT/build"
ctest --output-on-failure --timeout 600 "$@"
