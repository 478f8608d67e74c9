#!/usr/bin/env bash
# ThreadSanitizer run (not part of the tests: a TSan build of everything does not fit CI's budget
# beside the ASan+UBSan tier). Builds build-tsan/ (-fsanitize=thread) and runs, on a local control
# plane, the tests that exercise the threads: the proxy's status reporter and settings watch (its
# cluster link) and the controller's informers, work queue workers and leader election.
#   bench/tsan.sh [CTEST_REGEX]      default: e2e.test_pod_reports|e2e.test_controller|integration.test_supervisor
# Prints the reports found (build-tsan/tsan-reports/) and exits 1 if there is any.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGEX="${1:-e2e.test_pod_reports|e2e.test_controller|integration.test_supervisor}"
BUILD="$ROOT/build-tsan"
"$ROOT/scripts/setup.sh" >/dev/null
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g" \
  -DCXP_SANITIZE=thread -DCXP_WERROR=OFF >/dev/null
cmake --build "$BUILD" --parallel "$(nproc)"
REPORTS="$BUILD/tsan-reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
"$ROOT/scripts/cluster.sh" up >/dev/null
export TSAN_OPTIONS="log_path=$REPORTS/tsan:halt_on_error=0:second_deadlock_stack=1"
# The e2e tests of build-tsan use the same control plane (build/cluster) as the main build's.
status=0
(cd "$BUILD" && ctest -R "$REGEX" --output-on-failure --timeout 900) || status=$?
reports=$(find "$REPORTS" -type f | sort)
if [ -n "$reports" ]; then
  echo "ThreadSanitizer reports:"
  for report in $reports; do echo "=== $report"; head -c 20000 "$report"; done
  exit 1
fi
echo "no ThreadSanitizer report (tests exit status $status)"
exit "$status"
