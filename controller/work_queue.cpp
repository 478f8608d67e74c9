#include "controller/work_queue.h"

#include <algorithm>
#include <cmath>

namespace cxp::controller {

RetryRateLimiter::RetryRateLimiter(Options options) : options_(options), tokens_(options.burst) {}

std::uint32_t RetryRateLimiter::failures(const std::string& item) const {
  const auto found = failures_.find(item);
  return found == failures_.end() ? 0 : found->second;
}

std::chrono::milliseconds RetryRateLimiter::when(const std::string& item, Clock::time_point now) {
  const std::uint32_t exponent = failures_[item]++;
  const double per_item =
      std::min(static_cast<double>(options_.max_delay.count()),
               options_.base_delay.count() * std::pow(2.0, std::min(exponent, 62U)));
  // Token bucket: tokens refill at qps up to burst; a retry takes one, and waits when none is left
  // (tokens may go negative: later retries wait longer).
  if (last_) {
    const double elapsed = std::chrono::duration<double>(now - *last_).count();
    tokens_ = std::min(options_.burst, tokens_ + elapsed * options_.qps);
  }
  last_ = now;
  tokens_ -= 1.0;
  const double bucket_ms = tokens_ >= 0 ? 0.0 : -tokens_ / options_.qps * 1000.0;
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(std::ceil(std::max(per_item, bucket_ms))));
}

WorkQueue::WorkQueue(RetryRateLimiter::Options options) : limiter_(options) {}

void WorkQueue::add(const std::string& item) {
  {
    std::lock_guard lock(mutex_);
    add_locked(item);
  }
  ready_.notify_one();
}

void WorkQueue::add_locked(const std::string& item) {
  if (shutting_down_ || dirty_.count(item)) return;
  ++adds_total_;
  dirty_.insert(item);
  if (!processing_.count(item)) queue_.push_back(item);
}

void WorkQueue::add_after(const std::string& item, std::chrono::milliseconds delay) {
  if (delay <= std::chrono::milliseconds::zero()) return add(item);
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) return;
    // Keep only the earliest pending wake-up per item: the queue stays bounded by the item count.
    const auto due = Clock::now() + delay;
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
      if (it->second == item) {
        if (it->first <= due) return;
        waiting_.erase(it);
        break;
      }
    }
    waiting_.emplace(due, item);
  }
  ready_.notify_all();  // a worker may need to wait less now
}

void WorkQueue::add_rate_limited(const std::string& item) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mutex_);
    delay = limiter_.when(item, Clock::now());
  }
  ++retries_total_;
  add_after(item, delay);
}

void WorkQueue::forget(const std::string& item) {
  std::lock_guard lock(mutex_);
  limiter_.forget(item);
}

std::uint32_t WorkQueue::failures(const std::string& item) const {
  std::lock_guard lock(mutex_);
  return limiter_.failures(item);
}

void WorkQueue::promote_due_locked(Clock::time_point now) {
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    const auto item = waiting_.begin()->second;
    waiting_.erase(waiting_.begin());
    add_locked(item);
  }
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (shutting_down_) return std::nullopt;
    promote_due_locked(Clock::now());
    if (!queue_.empty()) break;
    if (waiting_.empty()) {
      ready_.wait(lock);
    } else {
      ready_.wait_until(lock, waiting_.begin()->first);
    }
  }
  auto item = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(item);
  dirty_.erase(item);
  return item;
}

void WorkQueue::done(const std::string& item) {
  {
    std::lock_guard lock(mutex_);
    processing_.erase(item);
    if (dirty_.count(item)) queue_.push_back(item);
  }
  ready_.notify_one();
}

void WorkQueue::shut_down() {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
  }
  ready_.notify_all();
}

std::size_t WorkQueue::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace cxp::controller
