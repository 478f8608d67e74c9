#!/usr/bin/env bash
# Sets up, builds and runs every test tier (unit, integration, e2e). Exits non-zero on any failure.
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         one tier (any ctest arguments are passed through)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh"
cd "$ROOT/build"
ctest --output-on-failure --timeout 600 "$@"
