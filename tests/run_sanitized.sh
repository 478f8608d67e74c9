#!/usr/bin/env bash
# Runs the unit and integration tiers on the ASan+UBSan build and fails on any sanitizer report.
#   tests/run_sanitized.sh BUILD_DIR      (BUILD_DIR made by `scripts/build.sh sanitize`)
# Every sanitized process (codex-proxy, codex-fake-worker, the unit tests) writes its reports to
# BUILD_DIR/sanitizer-reports/ (ASan with leak detection, UBSan: every finding is fatal, see
# CXP_SANITIZE in CMakeLists.txt); the reports found are printed.
set -euo pipefail
BUILD="$1"
if [ ! -f "$BUILD/CTestTestfile.cmake" ] || [ ! -x "$BUILD/bin/codex-proxy" ]; then
  echo "no sanitized build in $BUILD: run scripts/build.sh sanitize (scripts/test.sh does)" >&2
  exit 1
fi
REPORTS="$BUILD/sanitizer-reports"
rm -rf "$REPORTS" "$BUILD/test-artifacts"
mkdir -p "$REPORTS"
export ASAN_OPTIONS="log_path=$REPORTS/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="log_path=$REPORTS/ubsan:print_stacktrace=1:halt_on_error=1"
status=0
ctest --test-dir "$BUILD" -L '^(unit|integration)$' --output-on-failure --timeout 600 || status=$?
reports=$(find "$REPORTS" -type f | sort)
if [ -n "$reports" ]; then
  echo "sanitizer reports:" >&2
  for report in $reports; do
    echo "=== $report" >&2
    head -c 20000 "$report" >&2
  done
  exit 1
fi
exit "$status"
