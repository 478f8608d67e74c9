#!/usr/bin/env bash
# Fuzzes every target of tests/fuzz with libFuzzer (clang, ASan+UBSan); not part of the tests.
#   bench/fuzz.sh [SECONDS] [TARGET...]     default: 600 s for each target, all targets
# Builds build-fuzz/ (clang, -DCXP_FUZZ=ON), then runs each target on a copy of its committed
# seed corpus (tests/fuzz/corpus/<target>/) for SECONDS with one job, and prints for each:
# executions, executions/s, coverage (libFuzzer's `cov` edges and `ft` features) and the corpus
# size reached. A crash leaves its input in build-fuzz/findings/<target>/; fix the cause, then
# commit the input into tests/fuzz/corpus/<target>/ as crash-<what> so the unit tests replay it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-600}"
shift || true
"$ROOT/scripts/setup.sh" --fuzz >/dev/null
BUILD="$ROOT/build-fuzz"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -g" -DCXP_FUZZ=ON -DCXP_SANITIZE=address,undefined -DCXP_WERROR=OFF >/dev/null
cmake --build "$BUILD" --target fuzz --parallel "$(nproc)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=($(ls "$ROOT/tests/fuzz/corpus"))
fi
status=0
for target in "${targets[@]}"; do
  work="$BUILD/work/$target"
  findings="$BUILD/findings/$target"
  rm -rf "$work"
  mkdir -p "$work" "$findings"
  cp "$ROOT/tests/fuzz/corpus/$target/"* "$work/"
  log="$BUILD/fuzz-$target.log"
  # -max_len 64 KiB: requests and frames of realistic size; rss_limit bounds a runaway input.
  if ! ASAN_OPTIONS=detect_leaks=1 "$BUILD/bin/fuzz-$target" "$work" -max_total_time="$SECONDS_PER_TARGET" \
      -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" \
      >"$log" 2>&1; then
    status=1
    echo "$target: FOUND A CRASH (input in $findings/, log $log)"
    grep -m3 -E "ERROR|runtime error|invariant|terminate" "$log" || true
    continue
  fi
  runs=$(grep -oP 'stat::number_of_executed_units:\s*\K\d+' "$log" || echo 0)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -oP 'cov: \K\d+' || echo "?")
  ft=$(echo "$last" | grep -oP 'ft: \K\d+' || echo "?")
  corp=$(echo "$last" | grep -oP 'corp: \K[0-9]+' || echo "?")
  echo "$target: $runs executions in $SECONDS_PER_TARGET s ($((runs / SECONDS_PER_TARGET))/s), cov $cov, ft $ft, corpus $corp inputs"
done
exit $status
