#include "common/backoff.h"

#include <algorithm>

namespace cxp {

JitteredBackoff::JitteredBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(initial), max_(std::max(initial, max)) {}

std::chrono::milliseconds JitteredBackoff::nominal(std::uint32_t attempt) const {
  if (attempt == 0) return std::chrono::milliseconds{0};
  std::int64_t value = initial_.count();
  for (std::uint32_t i = 1; i < attempt && value < max_.count(); ++i) value *= 2;
  return std::chrono::milliseconds{std::min<std::int64_t>(value, max_.count())};
}

std::chrono::milliseconds JitteredBackoff::delay(std::uint32_t attempt,
                                                 std::mt19937_64& rng) const {
  const auto base = nominal(attempt);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double factor = 1.0 - kJitterRatio * unit(rng);
  return std::chrono::milliseconds{
      static_cast<std::int64_t>(static_cast<double>(base.count()) * factor)};
}

}  // namespace cxp
