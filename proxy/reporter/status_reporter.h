#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"
#include "proxy/reporter/pod_report.h"

namespace cxp::proxy {

// Keeps this pod's heartbeat Lease (common/pod_heartbeat.h; server-side apply, a field manager of
// its own): the report in its annotation, renewed every `heartbeat` and on every change of the
// report. The controller copies the reports into status.pods. update() never blocks serving: it
// replaces the pending report (the latest state wins; nothing queues). A writer thread coalesces
// bursts (at most one write per kMinInterval) and retries failures with jittered backoff.
class StatusReporter {
 public:
  static constexpr std::chrono::milliseconds kMinInterval{250};

  StatusReporter(kube::KubeClient& client, PodIdentity pod, std::chrono::seconds heartbeat);
  ~StatusReporter();

  void start();
  void update(const PodReport& report);
  // Writes what is pending (waiting at most `flush_timeout`), then stops the thread. Returns
  // false when the thread did not end in time (a write still in flight: the owner cancels the
  // client, then calls join()).
  bool stop(std::chrono::milliseconds flush_timeout);
  void join();

  std::uint64_t writes() const;
  std::uint64_t failures() const;

 private:
  void run();

  kube::KubeClient& client_;
  PodIdentity pod_;
  std::chrono::seconds heartbeat_;
  telemetry::JsonLog log_{"status_reporter"};
  std::mt19937_64 rng_{std::random_device{}()};

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::optional<PodReport> latest_;  // the state to report
  bool dirty_ = false;               // latest_ differs from what was last written
  bool stopping_ = false;
  bool finished_ = false;  // the thread has left run()
  std::chrono::steady_clock::time_point flush_deadline_{};
  std::uint64_t writes_ = 0;
  std::uint64_t failures_ = 0;
  std::thread thread_;
};

}  // namespace cxp::proxy
