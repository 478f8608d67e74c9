#include "common/telemetry/log_rate_limiter.h"

#include <algorithm>

namespace cxp::telemetry {

LogRateLimiter::LogRateLimiter(double lines_per_second, double burst)
    : rate_(lines_per_second), burst_(burst), tokens_(burst) {}

bool LogRateLimiter::allow(TimePoint now) {
  if (started_) {
    const std::chrono::duration<double> elapsed = now - last_;
    tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed.count()) * rate_);
  }
  started_ = true;
  last_ = now;
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  ++suppressed_;
  return false;
}

std::uint64_t LogRateLimiter::take_suppressed() {
  const auto value = suppressed_;
  suppressed_ = 0;
  return value;
}

}  // namespace cxp::telemetry
