#!/usr/bin/env bash
# Configures and builds everything.
#   scripts/build.sh            into build/ (binaries in build/bin/)
#   scripts/build.sh sanitize   the ASan+UBSan build into build-sanitize/ (the `sanitize` test tier)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
case "${1:-}" in
  "")
    cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DCXP_WERROR=ON >/dev/null
    cmake --build "$ROOT/build" --parallel "$(nproc)"
    ;;
  sanitize)
    # -O1: the sanitizers' usual level (half the compile time of -O2, stacks still exact). Warnings
    # are not errors here: GCC 12 reports false -Wmaybe-uninitialized inside std::regex and
    # std::function when instrumented; the main build keeps -Werror.
    cmake -S "$ROOT" -B "$ROOT/build-sanitize" -G Ninja -DCMAKE_BUILD_TYPE=None \
      -DCMAKE_CXX_FLAGS="-O1 -g" -DCXP_SANITIZE=address,undefined -DCXP_WERROR=OFF >/dev/null
    cmake --build "$ROOT/build-sanitize" --parallel "$(nproc)"
    ;;
  *) echo "usage: scripts/build.sh [sanitize]" >&2; exit 2 ;;
esac
