#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace cxp::fuzz {

// One fuzz target: takes any bytes, returns 0. A finding is a crash, a sanitizer report, an
// exception other than the documented error of the code under test (it escapes and aborts), or a
// broken invariant (checked with `require`, which aborts). The same functions run under libFuzzer
// (tests/fuzz/fuzz_main.cpp, `bench/fuzz.sh`) and replay the committed corpus in the unit tests
// (tests/unit/fuzz_replay_test.cpp), crash regressions included.
struct FuzzTarget {
  std::string_view name;  // also the folder of its corpus: tests/fuzz/corpus/<name>/
  int (*run)(const std::uint8_t* data, std::size_t size);
};

const std::vector<FuzzTarget>& fuzz_targets();
const FuzzTarget* find_fuzz_target(std::string_view name);

}  // namespace cxp::fuzz
