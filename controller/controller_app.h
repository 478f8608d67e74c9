#pragma once

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/http/http_router.h"
#include "common/http/http_server.h"
#include "common/kube/informer.h"
#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"
#include "common/telemetry/log_rate_limiter.h"
#include "common/tls/server_tls.h"
#include "controller/controller_metrics.h"
#include "controller/controller_options.h"
#include "controller/event_recorder.h"
#include "controller/heartbeats.h"
#include "controller/leader_elector.h"
#include "controller/metrics_auth.h"
#include "controller/reconciler.h"
#include "controller/work_queue.h"

namespace cxp::controller {

// The codexproxy-controller process: informers feed the work queue with CodexProxy keys; worker
// threads reconcile them (only while leading, when leader election is on); one io_context serves
// /healthz, /readyz and /metrics and handles SIGTERM/SIGINT.
class ControllerApp {
 public:
  ControllerApp(ControllerOptions options, kube::KubeConfig config);
  ~ControllerApp();
  // Runs until SIGTERM/SIGINT (exit code 0) or lost leadership (1).
  int run();

 private:
  void enqueue_owner(const nlohmann::json& object);
  void start_workers();
  void mark_own_pod(bool leading);
  void worker_loop();
  void shutdown(int exit_code);
  bool caches_synced() const;
  // The plurals of the informers not synced yet, ", "-joined ("" when all are).
  std::string unsynced_resources() const;
  // A kind the controller keeps only where it may: the cluster serves it and the controller's
  // ClusterRole lets it list it (ServiceMonitors, NetworkPolicies). Its informer starts (on the
  // io thread) only then, and only then do its objects count for readiness.
  struct OptionalKind {
    const kube::Resource* resource = nullptr;
    const char* log_prefix = "";  // <prefix>_found / _absent / _forbidden / _discovery_failed
    kube::Informer* informer = nullptr;
    std::atomic<bool> available{false};
  };
  // Asks until the API server answers (jittered backoff): true when the kind can be listed.
  bool discover(const OptionalKind& kind);
  bool ready() const;
  void serve(http::HttpRouter& router);

  ControllerOptions options_;
  telemetry::JsonLog log_{"controller"};
  std::string identity_;
  kube::KubeClient client_;
  ControllerMetrics metrics_;
  WorkQueue queue_;
  EventRecorder events_;
  std::vector<std::unique_ptr<kube::Informer>> informers_;
  kube::Informer* proxies_ = nullptr;
  kube::Informer* pods_ = nullptr;
  kube::Informer* leases_ = nullptr;  // the pods' heartbeat Leases
  HeartbeatClock heartbeats_;
  OptionalKind service_monitors_{&kube::resources::kServiceMonitors, "monitoring_api"};
  // A ClusterRole from before spec.networkPolicy: the rest works, such a spec is refused.
  OptionalKind network_policies_{&kube::resources::kNetworkPolicies, "network_policy_api"};
  // Likewise before spec.autoscaling.
  OptionalKind autoscalers_{&kube::resources::kHorizontalPodAutoscalers, "autoscaling_api"};
  // KEDA's ScaledObjects, where KEDA is installed (spec.autoscaling.engine KEDA).
  OptionalKind scaled_objects_{&kube::resources::kScaledObjects, "keda_api"};
  std::array<OptionalKind*, 4> optional_kinds() {
    return {&service_monitors_, &network_policies_, &autoscalers_, &scaled_objects_};
  }
  std::array<const OptionalKind*, 4> optional_kinds() const {
    return {&service_monitors_, &network_policies_, &autoscalers_, &scaled_objects_};
  }
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<LeaderElector> elector_;
  static constexpr std::chrono::seconds kShutdownGrace{10};
  // The pods' report changes within this window are written to a CodexProxy's status at once.
  static constexpr std::chrono::milliseconds kReportAggregation{300};
  ReportWindow report_window_{kReportAggregation};
  std::mutex workers_mutex_;  // guards workers_ and running_workers_
  std::condition_variable workers_done_;
  std::vector<std::thread> workers_;
  int running_workers_ = 0;
  std::atomic<int> active_workers_{0};
  std::atomic<bool> workers_started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> exit_code_{0};

  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  http::HttpRouter health_router_;
  http::HttpRouter metrics_router_;
  std::unique_ptr<http::HttpServer> health_server_;
  std::unique_ptr<http::HttpServer> metrics_server_;
  // --metrics-secure: HTTPS, and every scrape's token reviewed by the API server.
  std::unique_ptr<tls::ServerTls> metrics_tls_;
  std::unique_ptr<MetricsAuthorizer> metrics_authorizer_;
  std::unique_ptr<boost::asio::steady_timer> cert_reload_;
  telemetry::LogRateLimiter denied_log_{0.2, 5.0};
  void serve_metrics(const http::ExchangePtr& exchange);
  void watch_certificate();
};

}  // namespace cxp::controller
