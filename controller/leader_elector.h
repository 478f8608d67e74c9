#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"

namespace cxp::controller {

struct LeaderElectionConfig {
  std::string namespace_name;
  std::string lease_name = "codexproxy-controller-leader";
  std::string identity;
  std::chrono::milliseconds lease_duration{15000};  // controller-runtime's defaults
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

// Lease-based leader election with client-go's semantics: a candidate takes the Lease when its
// holder has not renewed it for lease_duration (measured on our own clock from when we last saw it
// change, so clock skew does not matter); the leader renews every retry_period and steps down
// when it could not renew for renew_deadline. release() hands the Lease over at once (on
// SIGTERM), so a successor does not wait for it to expire.
class LeaderElector {
 public:
  LeaderElector(kube::KubeClient& client, LeaderElectionConfig config);
  ~LeaderElector();

  // Runs in its own thread. on_started once leadership is acquired; on_stopped if it is lost.
  void start(std::function<void()> on_started, std::function<void()> on_stopped);
  void stop_and_release();
  bool leading() const { return leading_.load(); }

 private:
  void run();
  bool try_acquire_or_renew();
  nlohmann::json lease_spec(const nlohmann::json& previous, bool taking_over) const;
  bool wait(std::chrono::milliseconds delay);  // false when stopping

  kube::KubeClient& client_;
  LeaderElectionConfig config_;
  telemetry::JsonLog log_{"leader_election"};
  std::function<void()> on_started_;
  std::function<void()> on_stopped_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<bool> leading_{false};

  // Observed record (election thread only): the holder/renewTime we last saw and when we saw it.
  std::string observed_record_;
  std::chrono::steady_clock::time_point observed_at_{};
  nlohmann::json last_lease_;  // the Lease as we last read or wrote it

  std::mutex mutex_;  // guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cxp::controller
