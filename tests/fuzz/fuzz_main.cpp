// libFuzzer's entry for one target, chosen at build time (CXP_FUZZ_TARGET):
// tests/fuzz/CMakeLists.txt builds one executable per target, `bench/fuzz.sh` runs them.
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const cxp::fuzz::FuzzTarget* target = [] {
    const auto* found = cxp::fuzz::find_fuzz_target(CXP_FUZZ_TARGET);
    if (found == nullptr) {
      std::fprintf(stderr, "no fuzz target named %s\n", CXP_FUZZ_TARGET);
      std::abort();
    }
    return found;
  }();
  return target->run(data, size);
}
