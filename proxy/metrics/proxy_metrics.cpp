#include "proxy/metrics/proxy_metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <sstream>

namespace cxp::proxy {

namespace {

constexpr std::chrono::minutes kAnomalyWindow{5};
constexpr std::size_t kMaxHistory = 1024;  // bounds memory however often /metrics is scraped
constexpr std::array<std::string_view, 8> kRoutes = {"/v1/chat/completions",
                                                     "/v1/responses",
                                                     "/v1/models",
                                                     "/livez",
                                                     "/readyz",
                                                     "/healthz",
                                                     "/metrics",
                                                     "/internal/maintenance"};

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000};
  return buckets;
}

// Waits for a worker slot: most are none at all (the first bucket), the longest reach
// PROXY_QUEUE_TIMEOUT_MS (30 s by default).
const prometheus::Histogram::BucketBoundaries& queue_wait_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 30000, 60000};
  return buckets;
}

// Brings a Prometheus counter up to a total kept elsewhere (totals only grow).
void sync_counter(prometheus::Counter& counter, double total) {
  if (total > counter.Value()) counter.Increment(total - counter.Value());
}

}  // namespace

std::string route_label(std::string_view path) {
  for (auto route : kRoutes) {
    if (path == route) return std::string(route);
  }
  return "other";
}

std::string method_label(std::string_view method) {
  return method == "GET" || method == "POST" ? std::string(method) : "other";
}

std::string status_family_label(int status) {
  if (status < 100 || status > 599) return "other";
  return std::to_string(status / 100) + "xx";
}

ProxyMetrics::ProxyMetrics(std::vector<std::string> models,
                           const std::vector<std::string>& insecure)
    : models_(std::move(models)),
      requests_(prometheus::BuildCounter()
                    .Name("codex_http_requests_total")
                    .Help("HTTP requests by route, method, status family and model")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("codex_http_latency_ms")
                   .Help("HTTP request latency in milliseconds (until the last byte of the answer)")
                   .Register(*registry_)),
      restarts_(prometheus::BuildCounter()
                    .Name("codex_worker_restarts_total")
                    .Help("Worker restarts (the same count as /readyz worker.restarts_total)")
                    .Register(*registry_)
                    .Add({})),
      backoff_ms_(prometheus::BuildGauge()
                      .Name("codex_worker_backoff_ms")
                      .Help("Delay of the current or latest restart backoff of this streak")
                      .Register(*registry_)
                      .Add({})),
      worker_ready_(prometheus::BuildGauge()
                        .Name("codex_worker_ready")
                        .Help("1 when the worker finished its handshake and takes requests")
                        .Register(*registry_)
                        .Add({})),
      worker_rss_(prometheus::BuildGauge()
                      .Name("codex_worker_rss_bytes")
                      .Help("Memory of the current worker's process tree (latest sample)")
                      .Register(*registry_)
                      .Add({})),
      worker_turns_(prometheus::BuildCounter()
                        .Name("codex_worker_turns_total")
                        .Help("Turns started on the workers")
                        .Register(*registry_)
                        .Add({})),
      recycles_(prometheus::BuildCounter()
                    .Name("codex_worker_recycles_total")
                    .Help("Workers recycled: reason turns or rss (a warm successor took over), "
                          "forced (past the hard limit, restarted with a gap)")
                    .Register(*registry_)),
      streams_active_(prometheus::BuildGauge()
                          .Name("codex_streams_active")
                          .Help("Server-sent event streams open now")
                          .Register(*registry_)
                          .Add({})),
      tool_started_(prometheus::BuildCounter()
                        .Name("codex_tool_buffer_started_total")
                        .Help("Function calls the model made (worker item/tool/call requests)")
                        .Register(*registry_)
                        .Add({})),
      tool_flushed_(prometheus::BuildCounter()
                        .Name("codex_tool_buffer_flushed_total")
                        .Help("Function calls delivered to API clients")
                        .Register(*registry_)
                        .Add({})),
      tool_aborted_(prometheus::BuildCounter()
                        .Name("codex_tool_buffer_aborted_total")
                        .Help("Function calls not delivered: undeclared, arguments not JSON, or "
                              "lost with a failed, timed-out or abandoned request")
                        .Register(*registry_)
                        .Add({})),
      tool_anomaly_(prometheus::BuildGauge()
                        .Name("codex_tool_buffer_anomaly")
                        .Help("Function calls aborted in the last 5 minutes")
                        .Register(*registry_)
                        .Add({})),
      maintenance_(prometheus::BuildGauge()
                       .Name("codex_maintenance_mode")
                       .Help("1 while maintenance mode is on")
                       .Register(*registry_)
                       .Add({})),
      maintenance_refused_(prometheus::BuildCounter()
                               .Name("codex_maintenance_refused_total")
                               .Help("/v1 requests answered 503 because of maintenance mode")
                               .Register(*registry_)
                               .Add({})),
      trace_files_(prometheus::BuildGauge()
                       .Name("codex_trace_buffer_files")
                       .Help("Trace files in the trace buffer directory")
                       .Register(*registry_)
                       .Add({})),
      trace_pruned_ttl_(prometheus::BuildCounter()
                            .Name("codex_trace_buffer_pruned_total")
                            .Help("Trace files pruned, by reason")
                            .Register(*registry_)
                            .Add({{"reason", "ttl"}})),
      trace_pruned_count_(prometheus::BuildCounter()
                              .Name("codex_trace_buffer_pruned_total")
                              .Help("Trace files pruned, by reason")
                              .Register(*registry_)
                              .Add({{"reason", "count"}})),
      trace_write_errors_(
          prometheus::BuildCounter()
              .Name("codex_trace_buffer_write_errors_total")
              .Help("Trace files that could not be written (full disk, unwritable directory)")
              .Register(*registry_)
              .Add({})),
      status_reports_written_(
          prometheus::BuildCounter()
              .Name("codex_status_reports_total")
              .Help("Writes of this pod's heartbeat Lease (its report and heartbeat), by result")
              .Register(*registry_)
              .Add({{"result", "written"}})),
      status_reports_failed_(
          prometheus::BuildCounter()
              .Name("codex_status_reports_total")
              .Help("Writes of this pod's heartbeat Lease (its report and heartbeat), by result")
              .Register(*registry_)
              .Add({{"result", "failed"}})),
      params_ignored_(prometheus::BuildCounter()
                          .Name("codex_params_ignored_total")
                          .Help("Requests that set a parameter codex-proxy accepts without effect, "
                                "by parameter (docs/api.md lists them)")
                          .Register(*registry_)),
      build_info_(prometheus::BuildGauge()
                      .Name("codex_proxy_build_info")
                      .Help("1, labelled with codex-proxy's version and its worker's codex "
                            "version (from the worker's initialize answer; unknown before)")
                      .Register(*registry_)),
      process_(*registry_),
      tokens_(prometheus::BuildCounter()
                  .Name("codex_tokens_total")
                  .Help("Tokens the model billed, by key, model and type (input, cached_input "
                        "within input, output, reasoning within output)")
                  .Register(*registry_)),
      ratelimit_refused_(prometheus::BuildCounter()
                             .Name("codex_ratelimit_refused_total")
                             .Help("Requests refused by their key's limits, by key and limit "
                                   "(requests, tokens, concurrent)")
                             .Register(*registry_)),
      secret_file_valid_(prometheus::BuildGauge()
                             .Name("codex_secret_file_valid")
                             .Help("1 when the credential file's latest content is in force, 0 "
                                   "when it was refused (the last good content stays)")
                             .Register(*registry_)),
      secret_file_reloads_(prometheus::BuildCounter()
                               .Name("codex_secret_file_reloads_total")
                               .Help("Contents of a credential file read, by result (loaded, "
                                     "failed)")
                               .Register(*registry_)),
      turns_in_flight_(prometheus::BuildGauge()
                           .Name("codex_turns_in_flight")
                           .Help("Turns holding a worker slot now (the load signal to scale on)")
                           .Register(*registry_)
                           .Add({})),
      turn_slots_(prometheus::BuildGauge()
                      .Name("codex_turn_slots")
                      .Help("Worker slots: turns that may run at once (WORKER_MAX_CONCURRENCY)")
                      .Register(*registry_)
                      .Add({})),
      queue_depth_(prometheus::BuildGauge()
                       .Name("codex_queue_depth")
                       .Help("Turn requests waiting for a worker slot now (at most "
                             "PROXY_QUEUE_MAX)")
                       .Register(*registry_)
                       .Add({})),
      queue_wait_(prometheus::BuildHistogram()
                      .Name("codex_queue_wait_ms")
                      .Help("How long turn requests waited for a worker slot, in milliseconds "
                            "(admitted, or refused when PROXY_QUEUE_TIMEOUT_MS ran out)")
                      .Register(*registry_)
                      .Add({}, queue_wait_buckets())),
      admission_refused_(prometheus::BuildCounter()
                             .Name("codex_admission_refused_total")
                             .Help("Turn requests refused for want of capacity or of leave to run "
                                   "now, by reason (the error code: maintenance, "
                                   "rate_limit_exceeded, queue_full, queue_timeout, "
                                   "worker_not_ready)")
                             .Register(*registry_)) {
  for (const auto reason : AdmissionRefusals::kReasons) {
    admission_refused_.Add({{"reason", std::string(reason)}});
  }
  auto& insecure_family = prometheus::BuildGauge()
                              .Name("codex_insecure_config")
                              .Help("1 for each setting left insecure at startup")
                              .Register(*registry_);
  for (const auto& setting : insecure) insecure_family.Add({{"setting", setting}}).Set(1);
}

std::string ProxyMetrics::model_label(std::string_view model) const {
  if (model.empty()) return "none";
  for (const auto& served : models_) {
    if (served == model) return served;
  }
  return "other";
}

void ProxyMetrics::observe_request(const http::HttpServer::ObservedRequest& r) {
  const prometheus::Labels labels = {
      {"route", route_label(r.path)},
      {"method", method_label(r.method)},
      {"status_family", status_family_label(r.status)},
      {"model", model_label(r.model)},
      // Names come from the keys file (bounded by it) or are one of two fixed words.
      {"key", r.caller.empty() ? std::string(kAnonymousCaller) : std::string(r.caller)}};
  requests_.Add(labels).Increment();
  latency_.Add(labels, latency_buckets()).Observe(r.latency_ms);
}

void ProxyMetrics::observe_queue_wait(std::chrono::milliseconds waited) {
  queue_wait_.Observe(static_cast<double>(waited.count()));
}

std::string ProxyMetrics::scrape(const MetricsSources& s) {
  sync_counter(restarts_, static_cast<double>(s.worker.restarts_total));
  backoff_ms_.Set(static_cast<double>(s.worker.backoff_ms.count()));
  worker_ready_.Set(s.worker.state == WorkerState::kReady ? 1 : 0);
  worker_rss_.Set(static_cast<double>(s.worker.rss_bytes));
  sync_counter(worker_turns_, static_cast<double>(s.worker.turns_total));
  sync_counter(recycles_.Add({{"reason", "turns"}}),
               static_cast<double>(s.worker.recycle.by_turns));
  sync_counter(recycles_.Add({{"reason", "rss"}}), static_cast<double>(s.worker.recycle.by_rss));
  sync_counter(recycles_.Add({{"reason", "forced"}}), static_cast<double>(s.worker.recycle.forced));
  streams_active_.Set(static_cast<double>(s.streams_active));
  maintenance_.Set(s.maintenance ? 1 : 0);
  sync_counter(maintenance_refused_, static_cast<double>(s.maintenance_refused));
  trace_files_.Set(static_cast<double>(s.trace_files));
  sync_counter(trace_pruned_ttl_, static_cast<double>(s.trace_pruned_ttl));
  sync_counter(trace_pruned_count_, static_cast<double>(s.trace_pruned_count));
  sync_counter(trace_write_errors_, static_cast<double>(s.trace_write_errors));
  sync_counter(status_reports_written_, static_cast<double>(s.status_reports_written));
  sync_counter(status_reports_failed_, static_cast<double>(s.status_reports_failed));
  process_.update();
  const auto codex_version = s.worker.codex_version.empty() ? "unknown" : s.worker.codex_version;
  if (codex_version != build_codex_version_) {
    if (!build_codex_version_.empty()) {
      build_info_.Remove(
          &build_info_.Add({{"version", CXP_VERSION}, {"codex_version", build_codex_version_}}));
    }
    build_info_.Add({{"version", CXP_VERSION}, {"codex_version", codex_version}}).Set(1);
    build_codex_version_ = codex_version;
  }
  for (const auto& [labels, totals] : s.tokens.totals()) {
    const auto& [key, model] = labels;
    const std::pair<const char*, std::uint64_t> types[] = {{"input", totals.input},
                                                           {"cached_input", totals.cached_input},
                                                           {"output", totals.output},
                                                           {"reasoning", totals.reasoning}};
    for (const auto& [type, count] : types) {
      sync_counter(tokens_.Add({{"key", key}, {"model", model_label(model)}, {"type", type}}),
                   static_cast<double>(count));
    }
  }
  for (const auto& [labels, count] : s.refusals) {
    sync_counter(ratelimit_refused_.Add({{"key", labels.first}, {"limit", labels.second}}),
                 static_cast<double>(count));
  }
  for (const auto& file : s.secret_files) {
    secret_file_valid_.Add({{"setting", file.setting}}).Set(file.valid ? 1 : 0);
    sync_counter(secret_file_reloads_.Add({{"setting", file.setting}, {"result", "loaded"}}),
                 static_cast<double>(file.loaded));
    sync_counter(secret_file_reloads_.Add({{"setting", file.setting}, {"result", "failed"}}),
                 static_cast<double>(file.failed));
  }
  for (const auto& [param, total] : s.params_ignored.totals()) {
    sync_counter(params_ignored_.Add({{"param", std::string(param)}}), static_cast<double>(total));
  }
  turns_in_flight_.Set(s.load.in_flight);
  turn_slots_.Set(s.load.slots);
  queue_depth_.Set(static_cast<double>(s.load.queued));
  for (const auto& [reason, total] : s.admission_refused.totals()) {
    sync_counter(admission_refused_.Add({{"reason", std::string(reason)}}),
                 static_cast<double>(total));
  }
  const auto aborted = s.tool_buffer.aborted.load();
  sync_counter(tool_started_, static_cast<double>(s.tool_buffer.started.load()));
  sync_counter(tool_flushed_, static_cast<double>(s.tool_buffer.flushed.load()));
  sync_counter(tool_aborted_, static_cast<double>(aborted));
  const auto now = std::chrono::steady_clock::now();
  aborted_history_.emplace_back(now, aborted);
  while (aborted_history_.size() > 1 && (now - aborted_history_.front().first > kAnomalyWindow ||
                                         aborted_history_.size() > kMaxHistory)) {
    aborted_history_.pop_front();
  }
  tool_anomaly_.Set(static_cast<double>(aborted - aborted_history_.front().second));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace cxp::proxy
