#pragma once

#include <chrono>
#include <cstdint>

namespace cxp::telemetry {

// Token bucket that bounds how many lines a noisy source (a worker's stderr) may log.
// Time is passed in, so the limiter is deterministic under test.
class LogRateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  LogRateLimiter(double lines_per_second, double burst);

  // True when a line may be written now. Refused lines are counted until the next allowed line.
  bool allow(TimePoint now);
  // Lines refused since the last allowed line; reading resets it.
  std::uint64_t take_suppressed();

 private:
  double rate_;
  double burst_;
  double tokens_;
  TimePoint last_{};
  bool started_ = false;
  std::uint64_t suppressed_ = 0;
};

}  // namespace cxp::telemetry
