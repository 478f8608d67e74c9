#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace cxp {

// Jittered exponential backoff.
//
//   nominal(n) = min(max, initial * 2^(n-1))          n = 1, 2, ... (consecutive failures)
//   delay(n)   = nominal(n) * (1 - kJitterRatio * u)   u uniform in [0, 1)
//
// so every delay lies in [0.8 * nominal, nominal] and never exceeds `max`. Jitter only shortens the
// wait: the cap stays a hard upper bound that probe timings can be planned against, while replicas
// that crashed together still spread their restarts over a fifth of the interval.
class JitteredBackoff {
 public:
  static constexpr double kJitterRatio = 0.2;

  JitteredBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  std::chrono::milliseconds nominal(std::uint32_t attempt) const;
  std::chrono::milliseconds delay(std::uint32_t attempt, std::mt19937_64& rng) const;

  std::chrono::milliseconds initial() const { return initial_; }
  std::chrono::milliseconds max() const { return max_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
};

}  // namespace cxp
