#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "common/http/http_router.h"
#include "common/http/http_server.h"
#include "common/telemetry/json_log.h"
#include "proxy/api/openai_api.h"
#include "proxy/maintenance/maintenance_switch.h"
#include "proxy/metrics/proxy_metrics.h"
#include "proxy/proxy_config.h"
#include "proxy/reporter/cluster_link.h"
#include "proxy/supervisor/worker_supervisor.h"
#include "proxy/trace/trace_buffer.h"

namespace cxp::proxy {

// The codex-proxy process: one io_context running the HTTP server, the worker supervisor and the
// signal handling. SIGTERM/SIGINT: readiness fails at once, the supervisor drains, the process
// exits 0; a second signal kills the worker at once.
class ProxyServer {
 public:
  explicit ProxyServer(ProxyConfig config);

  // Runs until shutdown; returns the process exit code.
  int run();

 private:
  void register_routes();
  void schedule_trace_prune();
  // The report's in-flight count moves with every turn: it is sampled once a heartbeat (and with
  // every state change), never written per turn.
  void schedule_load_report();
  http::HttpResponse serve_metrics(const http::HttpRequest& request);
  void on_signal(int signal);
  void report_state();
  void apply_live_settings(const LiveSettings& settings);
  // A credential file changed (or failed to): redaction follows, the report says so.
  void on_access_changed();
  std::vector<std::string> secrets() const;

  ProxyConfig config_;
  boost::asio::io_context io_;
  WorkerSupervisor supervisor_;
  MaintenanceSwitch maintenance_;
  TraceBuffer trace_;
  boost::asio::steady_timer trace_prune_timer_;
  boost::asio::steady_timer load_report_timer_;
  AccessControl access_;
  OpenAiApi api_;
  ProxyMetrics metrics_;
  http::HttpRouter router_;  // PORT: the OpenAI API
  http::HttpServer server_;
  http::HttpRouter ops_router_;  // PROXY_OPS_PORT: probes, /metrics, /internal/*
  http::HttpServer ops_server_;
  boost::asio::signal_set signals_;
  telemetry::JsonLog log_{"proxy"};
  int signals_seen_ = 0;
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  std::int64_t settings_generation_ = 0;  // of the live settings applied (io thread)
  std::string settings_problem_;  // why the latest settings were not all applied (io thread)
  std::unique_ptr<ClusterLink> cluster_;  // only inside Kubernetes (POD_NAME etc. set)
};

// Settings left insecure (for warnings and codex_insecure_config).
std::vector<std::string> insecure_settings(const ProxyConfig& config);

// Where the proxy's credentials come from (proxy/access/).
AccessSettings access_settings(const ProxyConfig& config);

// Settings of the supervisor derived from the proxy configuration.
SupervisorSettings supervisor_settings(const ProxyConfig& config);

}  // namespace cxp::proxy
