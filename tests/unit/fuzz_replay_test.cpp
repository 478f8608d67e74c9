// Replays every committed fuzz input (tests/fuzz/corpus/<target>/: the seeds and every crash a
// fuzzing run found, kept as a regression) through its target. A target aborts on a finding, so a
// regression fails this binary.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/fuzz/fuzz_targets.h"

namespace fs = std::filesystem;

TEST_CASE("every fuzz input of the committed corpus replays cleanly") {
  const fs::path corpus = fs::path(CXP_SOURCE_DIR) / "tests/fuzz/corpus";
  for (const auto& target : cxp::fuzz::fuzz_targets()) {
    const auto folder = corpus / std::string(target.name);
    REQUIRE_MESSAGE(fs::is_directory(folder), "no corpus for fuzz target " << target.name);
    std::size_t inputs = 0;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream file(entry.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(file)),
                              std::istreambuf_iterator<char>());
      INFO("fuzz input " << entry.path().string());
      CHECK(target.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
      ++inputs;
    }
    CHECK_MESSAGE(inputs > 0, "the corpus of " << target.name << " is empty");
  }
}
