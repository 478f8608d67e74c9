#include "common/telemetry/log_rate_limiter.h"

#include <doctest/doctest.h>

using cxp::telemetry::LogRateLimiter;
using namespace std::chrono_literals;

TEST_CASE("rate limiter allows a burst, then the refill rate, and counts what it refused") {
  LogRateLimiter limiter(10.0, 5.0);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += limiter.allow(t0) ? 1 : 0;
  CHECK(allowed == 5);
  CHECK(limiter.take_suppressed() == 95);
  CHECK(limiter.take_suppressed() == 0);
  // One second later: 10 more tokens, capped at the burst of 5.
  allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += limiter.allow(t0 + 1s) ? 1 : 0;
  CHECK(allowed == 5);
  // 100 ms later: one token.
  CHECK(limiter.allow(t0 + 1100ms));
  CHECK_FALSE(limiter.allow(t0 + 1100ms));
}
