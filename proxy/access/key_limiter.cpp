#include "proxy/access/key_limiter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace cxp::proxy {
namespace {

using std::chrono::milliseconds;
constexpr double kMinuteMs = 60000.0;

milliseconds until(double missing, double per_ms) {
  return milliseconds(static_cast<std::int64_t>(std::ceil(std::max(0.0, missing) / per_ms)));
}

}  // namespace

std::string reset_duration(milliseconds duration) {
  const auto ms = std::max<std::int64_t>(0, duration.count());
  char out[32];
  if (ms < 1000) {
    std::snprintf(out, sizeof out, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60000) {
    std::snprintf(out, sizeof out, "%gs", static_cast<double>(ms / 10) / 100.0);
  } else {
    std::snprintf(out, sizeof out, "%lldm%llds", static_cast<long long>(ms / 60000),
                  static_cast<long long>((ms % 60000) / 1000));
  }
  return out;
}

KeyLimiter::KeyLimiter(Clock clock) : clock_(std::move(clock)) {}

void KeyLimiter::set_share(std::uint64_t pods) {
  share_ = std::max<std::uint64_t>(1, pods);
}

std::uint64_t KeyLimiter::portion(std::uint64_t limit) const {
  return limit == 0 ? 0 : (limit + share_ - 1) / share_;
}

double KeyLimiter::refill(Bucket& bucket, std::uint64_t limit) {
  const double capacity = static_cast<double>(portion(limit));
  const auto now = clock_();
  if (!bucket.primed) {
    bucket = {capacity, now, true};
    return capacity;
  }
  const double elapsed = std::chrono::duration<double, std::milli>(now - bucket.at).count();
  bucket.level = std::min(capacity, bucket.level + elapsed * capacity / kMinuteMs);
  bucket.at = now;
  return capacity;
}

std::optional<KeyLimiter::Refusal> KeyLimiter::admit(const ApiKey& key) {
  auto& state = state_[key.name];
  const auto& limits = key.limits;
  if (const auto slots = portion(limits.concurrent_turns); slots > 0 && state.in_flight >= slots) {
    return Refusal{"concurrent", milliseconds(1000),
                   "Rate limit reached for concurrent turns of key '" + key.name +
                       "': " + std::to_string(slots) + " in flight on this pod (" +
                       std::to_string(limits.concurrent_turns) + " for the CodexProxy)"};
  }
  if (limits.requests_per_minute > 0) {
    const double capacity = refill(state.requests, limits.requests_per_minute);
    if (state.requests.level < 1) {
      return Refusal{"requests", until(1 - state.requests.level, capacity / kMinuteMs),
                     "Rate limit reached for requests per minute of key '" + key.name +
                         "': limit " + std::to_string(static_cast<std::uint64_t>(capacity)) +
                         " on this pod (" + std::to_string(limits.requests_per_minute) +
                         " for the CodexProxy)"};
    }
  }
  if (limits.tokens_per_minute > 0) {
    const double capacity = refill(state.tokens, limits.tokens_per_minute);
    if (state.tokens.level <= 0) {
      return Refusal{"tokens", until(1 - state.tokens.level, capacity / kMinuteMs),
                     "Rate limit reached for tokens per minute of key '" + key.name + "': limit " +
                         std::to_string(static_cast<std::uint64_t>(capacity)) + " on this pod (" +
                         std::to_string(limits.tokens_per_minute) + " for the CodexProxy)"};
    }
  }
  if (limits.requests_per_minute > 0) state.requests.level -= 1;
  ++state.in_flight;
  return std::nullopt;
}

void KeyLimiter::release(const std::string& name) {
  const auto found = state_.find(name);
  if (found != state_.end() && found->second.in_flight > 0) --found->second.in_flight;
}

void KeyLimiter::charge(const ApiKey& key, std::int64_t tokens) {
  if (key.limits.tokens_per_minute == 0 || tokens <= 0) return;
  auto& bucket = state_[key.name].tokens;
  refill(bucket, key.limits.tokens_per_minute);
  // May go below zero: the key then waits until the minute has paid it back.
  bucket.level -= static_cast<double>(tokens);
}

std::vector<std::pair<std::string, std::string>> KeyLimiter::headers(const ApiKey& key) {
  std::vector<std::pair<std::string, std::string>> out;
  auto& state = state_[key.name];
  const auto add = [&](const char* what, Bucket& bucket, std::uint64_t limit) {
    if (limit == 0) return;
    const double capacity = refill(bucket, limit);
    const auto remaining = static_cast<std::int64_t>(std::max(0.0, std::floor(bucket.level)));
    out.emplace_back(std::string("x-ratelimit-limit-") + what,
                     std::to_string(static_cast<std::uint64_t>(capacity)));
    out.emplace_back(std::string("x-ratelimit-remaining-") + what, std::to_string(remaining));
    out.emplace_back(std::string("x-ratelimit-reset-") + what,
                     reset_duration(until(capacity - bucket.level, capacity / kMinuteMs)));
  };
  add("requests", state.requests, key.limits.requests_per_minute);
  add("tokens", state.tokens, key.limits.tokens_per_minute);
  return out;
}

void KeyLimiter::retain(const KeySet& keys) {
  for (auto it = state_.begin(); it != state_.end();) {
    const bool kept = std::any_of(keys.keys().begin(), keys.keys().end(),
                                  [&](const ApiKey& k) { return k.name == it->first; });
    // A key in flight keeps its count until its requests end.
    it = kept || it->second.in_flight > 0 ? std::next(it) : state_.erase(it);
  }
}

}  // namespace cxp::proxy
