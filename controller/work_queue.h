#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cxp::controller {

// The delay before an item's next retry: the larger of a per-item exponential backoff
// (base·2^failures, capped) and an overall token bucket shared by all items (like client-go's
// DefaultControllerRateLimiter). Pure: time is passed in.
class RetryRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds base_delay{5};
    std::chrono::milliseconds max_delay{1000 * 1000};
    double qps = 10;
    double burst = 100;
  };
  explicit RetryRateLimiter(Options options);

  std::chrono::milliseconds when(const std::string& item, Clock::time_point now);
  void forget(const std::string& item) { failures_.erase(item); }
  std::uint32_t failures(const std::string& item) const;

 private:
  Options options_;
  std::map<std::string, std::uint32_t> failures_;
  double tokens_;
  std::optional<Clock::time_point> last_;
};

// A deduplicating work queue of object keys ("namespace/name"), like client-go's: an item added
// while queued is queued once; an item added while being processed is processed again after
// done(); never two workers on the same item. Delayed and rate-limited adds wait in a timer heap.
class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  explicit WorkQueue(RetryRateLimiter::Options options = {});

  void add(const std::string& item);
  void add_after(const std::string& item, std::chrono::milliseconds delay);
  void add_rate_limited(const std::string& item);
  void forget(const std::string& item);
  // Blocks until an item is ready or the queue shuts down (nullopt).
  std::optional<std::string> get();
  void done(const std::string& item);
  void shut_down();

  std::size_t depth() const;
  std::uint64_t adds_total() const { return adds_total_.load(); }
  std::uint64_t retries_total() const { return retries_total_.load(); }
  std::uint32_t failures(const std::string& item) const;

 private:
  void add_locked(const std::string& item);
  void promote_due_locked(Clock::time_point now);

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable ready_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_;
  std::set<std::string> processing_;
  std::multimap<Clock::time_point, std::string> waiting_;
  RetryRateLimiter limiter_;
  bool shutting_down_ = false;
  std::atomic<std::uint64_t> adds_total_{0};
  std::atomic<std::uint64_t> retries_total_{0};
};

}  // namespace cxp::controller
