#!/usr/bin/env bash
# Sets up, builds and runs every test tier. Exits non-zero on any failure.
#   scripts/test.sh                 everything: unit, integration, e2e, alerts, images (both images
#                                   built with buildah, checked with podman and on a real kubelet +
#                                   containerd node; needs root), then the unit and
#                                   integration tiers again on the ASan+UBSan build (sanitize), then
#                                   the scan of every kept log and trace file for test secrets (scan)
#   scripts/test.sh -L unit         one tier (any ctest arguments are passed through); the sanitized
#                                   build is made only when the arguments name no label or `sanitize`
# Two tests run side by side (CXP_TEST_JOBS, default 2): one of the `plane` lane (every test of a
# control plane) and one of the `host` lane (the rest); tests/CMakeLists.txt sets the lanes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh"
if [[ " $* " != *" -L "* || "$*" == *sanitize* ]]; then
  "$ROOT/scripts/build.sh" sanitize
fi
rm -rf "$ROOT/build/test-artifacts"
cd "$ROOT/build"
ctest --output-on-failure --timeout 600 -j "${CXP_TEST_JOBS:-2}" "$@"
