#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/access/api_keys.h"

namespace cxp::proxy {

// Each key's limits as this pod enforces them: its share of the CodexProxy's limit (the limit
// divided by the pods that share it, rounded up), per minute, as token buckets that refill
// continuously — requests take one each at admission; tokens are charged from each turn's usage
// afterwards and a request is admitted while the key's bucket is not empty (so a key may overshoot
// by the turns it has in flight); concurrent turns are counted from admission to the request's end.
// One key's limits never take anything from another's. Single-threaded (the io thread).
class KeyLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit KeyLimiter(Clock clock = [] { return std::chrono::steady_clock::now(); });

  // How many pods share each limit now (>= 1).
  void set_share(std::uint64_t pods);
  std::uint64_t share() const { return share_; }

  struct Refusal {
    std::string limit;  // "requests", "tokens" or "concurrent"
    std::chrono::milliseconds retry_after{0};
    std::string message;
  };
  // Admits one request of `key` (takes a request and a concurrency slot), or says why not.
  std::optional<Refusal> admit(const ApiKey& key);
  // The request admitted for `name` ended.
  void release(const std::string& name);
  // Charges a finished turn's tokens.
  void charge(const ApiKey& key, std::int64_t tokens);

  // OpenAI's x-ratelimit-* headers for `key`: limit, remaining and reset of each limited
  // dimension (requests, tokens). Empty for a key without those limits.
  std::vector<std::pair<std::string, std::string>> headers(const ApiKey& key);

  // Drops the state of keys no longer configured.
  void retain(const KeySet& keys);
  std::size_t tracked() const { return state_.size(); }

 private:
  struct Bucket {
    double level = 0;
    std::chrono::steady_clock::time_point at{};
    bool primed = false;
  };
  struct State {
    Bucket requests;
    Bucket tokens;
    std::uint64_t in_flight = 0;
  };
  // This pod's share of a limit.
  std::uint64_t portion(std::uint64_t limit) const;
  // The bucket refilled up to now for a per-minute `limit` (its capacity).
  double refill(Bucket& bucket, std::uint64_t limit);

  Clock clock_;
  std::uint64_t share_ = 1;
  std::map<std::string, State> state_;
};

// A duration as OpenAI writes x-ratelimit-reset-*: "250ms", "1.5s", "6m0s".
std::string reset_duration(std::chrono::milliseconds duration);

}  // namespace cxp::proxy
