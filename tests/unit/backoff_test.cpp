#include "common/backoff.h"

#include <doctest/doctest.h>

using cxp::JitteredBackoff;
using std::chrono::milliseconds;

TEST_CASE("backoff nominal delay doubles from initial and stops at the cap") {
  const JitteredBackoff backoff(milliseconds{250}, milliseconds{5000});
  CHECK(backoff.nominal(0) == milliseconds{0});
  CHECK(backoff.nominal(1) == milliseconds{250});
  CHECK(backoff.nominal(2) == milliseconds{500});
  CHECK(backoff.nominal(3) == milliseconds{1000});
  CHECK(backoff.nominal(5) == milliseconds{4000});
  CHECK(backoff.nominal(6) == milliseconds{5000});
  CHECK(backoff.nominal(60) == milliseconds{5000});
  CHECK(backoff.nominal(4000000000u) == milliseconds{5000});
}

TEST_CASE("jittered delays stay within [0.8 * nominal, nominal] for every seed and attempt") {
  const JitteredBackoff backoff(milliseconds{250}, milliseconds{5000});
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    for (std::uint32_t attempt = 1; attempt <= 12; ++attempt) {
      const auto nominal = backoff.nominal(attempt).count();
      const auto delay = backoff.delay(attempt, rng).count();
      CHECK(delay <= nominal);
      CHECK(delay >= static_cast<std::int64_t>(0.8 * static_cast<double>(nominal)) - 1);
      CHECK(delay <= 5000);
    }
  }
}

TEST_CASE("jitter is deterministic for a seed and differs between seeds") {
  const JitteredBackoff backoff(milliseconds{1000}, milliseconds{60000});
  std::mt19937_64 a(42);
  std::mt19937_64 b(42);
  std::mt19937_64 c(7);
  std::vector<std::int64_t> first;
  std::vector<std::int64_t> second;
  std::vector<std::int64_t> other;
  for (std::uint32_t n = 1; n <= 6; ++n) {
    first.push_back(backoff.delay(n, a).count());
    second.push_back(backoff.delay(n, b).count());
    other.push_back(backoff.delay(n, c).count());
  }
  CHECK(first == second);
  CHECK(first != other);
}

TEST_CASE("a cap below the initial delay is raised to the initial delay") {
  const JitteredBackoff backoff(milliseconds{300}, milliseconds{100});
  CHECK(backoff.max() == milliseconds{300});
  CHECK(backoff.nominal(4) == milliseconds{300});
}
