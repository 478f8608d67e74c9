#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/http_server.h"
#include "common/telemetry/process_metrics.h"
#include "proxy/access/access_control.h"
#include "proxy/api/admission_gate.h"
#include "proxy/api/api_stats.h"
#include "proxy/supervisor/worker_state.h"

namespace cxp::proxy {

// What /metrics reads at scrape time, besides the request series it records itself. Everything
// here is a view of state owned elsewhere (the supervisor snapshot, the maintenance switch, the
// API's counters): the metrics never keep a second copy of it.
struct MetricsSources {
  const WorkerSnapshot& worker;
  bool maintenance = false;
  std::uint64_t maintenance_refused = 0;  // /v1 requests answered 503 by maintenance mode
  std::int64_t streams_active = 0;
  const ToolBufferCounters& tool_buffer;
  std::size_t trace_files = 0;
  std::uint64_t trace_pruned_ttl = 0;
  std::uint64_t trace_pruned_count = 0;
  std::uint64_t trace_write_errors = 0;
  // The pod's status reports (server-side applies of its entry), when it runs in a cluster.
  std::uint64_t status_reports_written = 0;
  std::uint64_t status_reports_failed = 0;
  const ParamsIgnoredCounters& params_ignored;
  const TokenLedger& tokens;
  // Rate-limit refusals by (key, limit), and the credential files (proxy/access/).
  const std::vector<std::pair<std::pair<std::string, std::string>, std::uint64_t>>& refusals;
  const std::vector<AccessControl::FileStatus>& secret_files;
  // The worker's slots and their queue now, and the turn requests refused for want of them.
  AdmissionLoad load;
  const AdmissionRefusals& admission_refused;
};

// Label values come only from bounded sets: known routes (else "other"), GET/POST (else "other"),
// status families 1xx-5xx, served models (else "other", or "none" when the request named none),
// keys: the configured names, "anonymous" (no key configured, or not an API route) and "invalid".
std::string route_label(std::string_view path);
std::string method_label(std::string_view method);
std::string status_family_label(int status);

class ProxyMetrics {
 public:
  // `models`: the served model names, the only model label values besides "other" and "none".
  // `insecure`: settings left insecure at startup, exported as codex_insecure_config{setting}=1.
  ProxyMetrics(std::vector<std::string> models, const std::vector<std::string>& insecure);

  void observe_request(const http::HttpServer::ObservedRequest& request);
  // How long a turn request waited for a worker slot (codex_queue_wait_ms).
  void observe_queue_wait(std::chrono::milliseconds waited);
  // Prometheus text exposition of every series.
  std::string scrape(const MetricsSources& sources);

  std::string model_label(std::string_view model) const;

 private:
  std::vector<std::string> models_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Counter& restarts_;
  prometheus::Gauge& backoff_ms_;
  prometheus::Gauge& worker_ready_;
  prometheus::Gauge& worker_rss_;
  prometheus::Counter& worker_turns_;
  prometheus::Family<prometheus::Counter>& recycles_;
  prometheus::Gauge& streams_active_;
  prometheus::Counter& tool_started_;
  prometheus::Counter& tool_flushed_;
  prometheus::Counter& tool_aborted_;
  prometheus::Gauge& tool_anomaly_;
  prometheus::Gauge& maintenance_;
  prometheus::Counter& maintenance_refused_;
  prometheus::Gauge& trace_files_;
  prometheus::Counter& trace_pruned_ttl_;
  prometheus::Counter& trace_pruned_count_;
  prometheus::Counter& trace_write_errors_;
  prometheus::Counter& status_reports_written_;
  prometheus::Counter& status_reports_failed_;
  prometheus::Family<prometheus::Counter>& params_ignored_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  std::string build_codex_version_;  // the codex_version label of build_info_'s series
  telemetry::ProcessMetrics process_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Family<prometheus::Counter>& ratelimit_refused_;
  prometheus::Family<prometheus::Gauge>& secret_file_valid_;
  prometheus::Family<prometheus::Counter>& secret_file_reloads_;
  prometheus::Gauge& turns_in_flight_;
  prometheus::Gauge& turn_slots_;
  prometheus::Gauge& queue_depth_;
  prometheus::Histogram& queue_wait_;
  prometheus::Family<prometheus::Counter>& admission_refused_;
  // (scrape time, aborted total) over the last kAnomalyWindow, for codex_tool_buffer_anomaly.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> aborted_history_;
};

}  // namespace cxp::proxy
