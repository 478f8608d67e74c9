#include "proxy/reporter/status_reporter.h"

#include "common/backoff.h"
#include "common/pod_heartbeat.h"

namespace cxp::proxy {

using Clock = std::chrono::steady_clock;

StatusReporter::StatusReporter(kube::KubeClient& client, PodIdentity pod,
                               std::chrono::seconds heartbeat)
    : client_(client), pod_(std::move(pod)), heartbeat_(heartbeat) {}

StatusReporter::~StatusReporter() {
  stop(std::chrono::milliseconds(0));
}

void StatusReporter::start() {
  thread_ = std::thread([this] { run(); });
}

void StatusReporter::update(const PodReport& report) {
  {
    std::lock_guard lock(mutex_);
    if (latest_ && *latest_ == report) return;
    latest_ = report;
    dirty_ = true;
  }
  wake_.notify_all();  // stop() may wait on the same condition variable
}

bool StatusReporter::stop(std::chrono::milliseconds flush_timeout) {
  std::unique_lock lock(mutex_);
  if (!thread_.joinable()) return true;
  if (!stopping_) {
    stopping_ = true;
    flush_deadline_ = Clock::now() + flush_timeout;
  }
  wake_.notify_all();
  // A little past the deadline: a write that started just before it may finish.
  return wake_.wait_until(lock, flush_deadline_ + std::chrono::milliseconds(200),
                          [this] { return finished_; });
}

void StatusReporter::join() {
  if (thread_.joinable()) thread_.join();
}

std::uint64_t StatusReporter::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

std::uint64_t StatusReporter::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

void StatusReporter::run() {
  const JitteredBackoff backoff(std::chrono::milliseconds(250), std::chrono::seconds(30));
  std::uint32_t failed_in_row = 0;
  auto next_allowed = Clock::now();
  auto last_success = Clock::now() - heartbeat_;  // the first report goes out at once
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto now = Clock::now();
    if (stopping_ && (!dirty_ || now >= flush_deadline_)) return;
    const bool due = latest_ && now >= next_allowed && (dirty_ || now >= last_success + heartbeat_);
    if (!due) {
      auto wake_at = dirty_ ? next_allowed : std::max(next_allowed, last_success + heartbeat_);
      if (stopping_) wake_at = std::min(wake_at, flush_deadline_);
      wake_.wait_until(lock, wake_at);
      continue;
    }
    const PodReport report = *latest_;
    dirty_ = false;
    lock.unlock();
    const auto body = render_pod_lease(pod_, report, std::chrono::system_clock::now(),
                                       heartbeat_ * kLeaseDurationFactor);
    const auto result = client_.apply(kube::resources::kLeases, pod_.pod_namespace, pod_.pod_name,
                                      body, pod_.field_manager());
    lock.lock();
    if (result.ok()) {
      ++writes_;
      failed_in_row = 0;
      last_success = Clock::now();
      next_allowed = last_success + kMinInterval;
      continue;
    }
    ++failures_;
    dirty_ = true;  // retry with the latest report (which may be newer than the failed one)
    const auto delay = backoff.delay(++failed_in_row, rng_);
    next_allowed = Clock::now() + delay;
    if (failed_in_row == 1 || failed_in_row % 10 == 0) {
      log_.warn("status_report_failed", {{"error", result.describe()},
                                         {"attempt", failed_in_row},
                                         {"retry_in_ms", delay.count()}});
    }
  }
}

}  // namespace cxp::proxy
