#include "proxy/health/probe_report.h"

#include <nlohmann/json.hpp>

namespace cxp::proxy {
namespace {

using nlohmann::json;

constexpr const char* kJson = "application/json";
constexpr const char* kText = "text/plain; charset=utf-8";

bool is_ready(const WorkerSnapshot& w) {
  return w.state == WorkerState::kReady;
}
bool is_live(const WorkerSnapshot& w) {
  return w.state != WorkerState::kFailed;
}

json optional_int(const std::optional<int>& value) {
  return value ? json(*value) : json(nullptr);
}

// The handover of a recycled worker: both workers are visible while it is under way.
json recycle_json(const RecycleSnapshot& r) {
  return {{"phase", to_string(r.phase)},
          {"reason", r.reason ? json(to_string(*r.reason)) : json(nullptr)},
          {"successor_pid", r.successor_pid > 0 ? json(r.successor_pid) : json(nullptr)},
          {"successor_failures", r.successor_failures},
          {"successor_backoff_ms", r.successor_backoff_ms.count()},
          {"retiring_pids", r.retiring_pids},
          {"recycles", {{"turns", r.by_turns}, {"rss", r.by_rss}, {"forced", r.forced}}}};
}

json worker_json(const ProbeInput& in) {
  const auto& w = in.worker;
  return {{"state", to_string(w.state)},
          {"pid", w.pid > 0 ? json(w.pid) : json(nullptr)},
          {"restarts_total", w.restarts_total},
          {"restart_streak", w.restart_streak},
          {"backoff_ms", w.backoff_ms.count()},
          {"last_exit_code", optional_int(w.last_exit_code)},
          {"last_exit_signal", optional_int(w.last_exit_signal)},
          {"handshake_ms", w.handshake_ms ? json(w.handshake_ms->count()) : json(nullptr)},
          {"last_error", w.last_error.empty() ? json(nullptr) : json(w.last_error)},
          {"state_age_ms",
           std::chrono::duration_cast<std::chrono::milliseconds>(in.now - w.state_since).count()},
          {"turns", w.turns},
          {"rss_bytes", w.rss_bytes},
          {"recycle", recycle_json(w.recycle)}};
}

json capacity_json(const AdmissionLoad& load) {
  return {{"in_flight", load.in_flight},
          {"slots", load.slots},
          {"queued", load.queued},
          {"queue_max", load.queue_max}};
}

std::string worker_detail(const WorkerSnapshot& w) {
  std::string detail = "worker " + std::string(to_string(w.state));
  if (w.state == WorkerState::kBackoff)
    detail += ", next start in up to " + std::to_string(w.backoff_ms.count()) + " ms";
  if (w.restart_streak > 0) detail += ", restart streak " + std::to_string(w.restart_streak);
  if (!w.last_error.empty() && !is_ready(w)) detail += ", last error: " + w.last_error;
  return detail;
}

std::string check_line(bool ok, const std::string& name, const std::string& detail) {
  return ok ? "[+]" + name + " ok\n" : "[-]" + name + " failed: " + detail + "\n";
}

}  // namespace

std::string readiness_reason(const WorkerSnapshot& worker) {
  return std::string(to_string(worker.state));
}

ProbeResponse readiness_probe(const ProbeInput& in, bool verbose) {
  const auto& w = in.worker;
  const bool ready = is_ready(w);
  const int status = ready ? 200 : 503;
  if (verbose) {
    const bool shutting_down =
        w.state == WorkerState::kDraining || w.state == WorkerState::kStopped;
    std::string body = check_line(true, "ping", "");
    body += check_line(!shutting_down, "shutdown", "draining for shutdown");
    body += check_line(ready || shutting_down, "worker", worker_detail(w));
    if (w.recycle.phase != RecyclePhase::kIdle || !w.recycle.retiring_pids.empty()) {
      body += "[+]recycle " + std::string(to_string(w.recycle.phase)) + ", " +
              std::to_string(w.recycle.retiring_pids.size()) +
              " retiring worker(s) (does not affect readiness)\n";
    }
    body += std::string("[+]maintenance ") + (in.maintenance ? "on" : "off") +
            " (does not affect readiness)\n";
    body += "[+]capacity " + std::to_string(in.load.in_flight) + "/" +
            std::to_string(in.load.slots) + " turns in flight, " + std::to_string(in.load.queued) +
            "/" + std::to_string(in.load.queue_max) + " queued (does not affect readiness)\n";
    body += ready ? "readyz check passed\n" : "readyz check failed\n";
    return {status, kText, body};
  }
  json body = {{"ready", ready},
               {"reason", readiness_reason(w)},
               {"maintenance", in.maintenance},
               {"capacity", capacity_json(in.load)},
               {"worker", worker_json(in)}};
  return {status, kJson, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

ProbeResponse liveness_probe(const ProbeInput& in, bool verbose) {
  const auto& w = in.worker;
  const bool live = is_live(w);
  const int status = live ? 200 : 503;
  if (verbose) {
    std::string body = check_line(true, "ping", "");
    body += check_line(live, "supervisor",
                       "gave up after " + std::to_string(w.restart_streak) +
                           " consecutive worker failures; last error: " + w.last_error);
    body += live ? "livez check passed\n" : "livez check failed\n";
    return {status, kText, body};
  }
  json body = {{"live", live},
               {"reason", live ? "ok" : "restart_limit"},
               {"worker", {{"state", to_string(w.state)}, {"restart_streak", w.restart_streak}}}};
  return {status, kJson, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

ProbeResponse health_summary(const ProbeInput& in) {
  const auto& w = in.worker;
  json body = {
      {"status", "ok"},
      {"version", CXP_VERSION},
      {"codex_version", w.codex_version.empty() ? json(nullptr) : json(w.codex_version)},
      {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(in.now - in.started).count()},
      {"live", is_live(w)},
      {"ready", is_ready(w)},
      {"reason", readiness_reason(w)},
      {"maintenance", in.maintenance},
      {"capacity", capacity_json(in.load)},
      {"worker", worker_json(in)}};
  return {200, kJson, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

}  // namespace cxp::proxy
