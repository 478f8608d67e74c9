#include "proxy/reporter/pod_report.h"

#include "common/config_value.h"
#include "common/pod_heartbeat.h"
#include "common/utc_time.h"
#include "common/utf8.h"

namespace cxp::proxy {

using nlohmann::json;

PodReport make_pod_report(const WorkerSnapshot& snapshot, bool maintenance,
                          std::int64_t settings_generation, std::string settings_error,
                          std::uint32_t in_flight) {
  PodReport report;
  report.ready = snapshot.state == WorkerState::kReady;
  report.worker_state = std::string(to_string(snapshot.state));
  report.restarts_total = snapshot.restarts_total;
  report.restart_streak = snapshot.restart_streak;
  report.backoff_ms = snapshot.backoff_ms.count();
  report.last_exit_code = snapshot.last_exit_code;
  report.recycles_total =
      snapshot.recycle.by_turns + snapshot.recycle.by_rss + snapshot.recycle.forced;
  report.maintenance = maintenance;
  report.settings_generation = settings_generation;
  report.settings_error = std::move(settings_error);
  report.in_flight = in_flight;
  return report;
}

json render_pod_report(const PodReport& report) {
  json entry = {{"ready", report.ready},
                {"workerState", report.worker_state},
                {"restartsTotal", report.restarts_total},
                {"restartStreak", report.restart_streak},
                {"backoffMs", report.backoff_ms},
                {"recyclesTotal", report.recycles_total},
                {"maintenance", report.maintenance},
                {"settingsGeneration", report.settings_generation},
                {"settingsError", report.settings_error},
                {"inFlight", report.in_flight}};
  if (report.last_exit_code) entry["lastExitCode"] = *report.last_exit_code;
  return entry;
}

json render_pod_lease(const PodIdentity& pod, const PodReport& report,
                      std::chrono::system_clock::time_point renew, std::chrono::seconds duration) {
  json metadata = {
      {"name", pod.pod_name},
      {"namespace", pod.pod_namespace},
      {"labels", {{kPodAppLabel, kPodAppValue}, {kCodexProxyLabel, pod.codexproxy_name}}},
      {"annotations", {{kPodReportAnnotation, render_pod_report(report).dump()}}}};
  if (!pod.pod_uid.empty()) {
    metadata["ownerReferences"] = json::array(
        {{{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod.pod_name}, {"uid", pod.pod_uid}}});
  }
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", metadata},
          {"spec",
           {{"holderIdentity", pod.pod_name},
            {"leaseDurationSeconds", duration.count()},
            {"renewTime", format_utc(renew, UtcFormat::kMicros)}}}};
}

namespace {

// A live setting's value within the bounds the CRD gives it.
std::int64_t in_bounds(const std::string& source, const std::string& text,
                       const settings::IntSetting& setting) {
  return parse_integer(source, text, setting.min, setting.max);
}

}  // namespace

LiveSettings parse_live_settings(const json& data, const LiveSettings& previous,
                                 std::vector<std::string>& problems) {
  LiveSettings out = previous;
  out.problem.clear();
  if (!data.is_object()) return out;
  const auto first_problem = problems.size();
  const auto text = [&](const char* key) -> std::optional<std::string> {
    const auto found = data.find(key);
    if (found == data.end() || !found->is_string()) return std::nullopt;
    return found->get<std::string>();
  };
  const auto guarded = [&](const char* key, auto apply) {
    if (const auto value = text(key)) {
      try {
        apply(std::string("ConfigMap key ") + key, *value);
      } catch (const ConfigError& error) {
        problems.emplace_back(error.what());
      }
    }
  };
  guarded("maintenance.enabled", [&](const std::string& s, const std::string& v) {
    out.maintenance = parse_boolean(s, v);
  });
  guarded("maintenance.retryAfterSeconds", [&](const std::string& s, const std::string& v) {
    out.retry_after_s = static_cast<int>(in_bounds(s, v, settings::kRetryAfterSeconds));
  });
  guarded("traceBuffer.enabled", [&](const std::string& s, const std::string& v) {
    out.trace_enabled = parse_boolean(s, v);
  });
  guarded("traceBuffer.ttlSeconds", [&](const std::string& s, const std::string& v) {
    out.trace_ttl_s = in_bounds(s, v, settings::kTraceTtlSeconds);
  });
  guarded("traceBuffer.maxFiles", [&](const std::string& s, const std::string& v) {
    out.trace_max_files = static_cast<std::uint32_t>(in_bounds(s, v, settings::kTraceMaxFiles));
  });
  guarded(settings::kLimitPodsKey, [&](const std::string& s, const std::string& v) {
    out.limit_pods = static_cast<std::uint64_t>(parse_integer(s, v, 1, settings::kReplicas.max));
  });
  guarded("settingsGeneration", [&](const std::string& s, const std::string& v) {
    out.generation = parse_integer(s, v, 0, INT64_MAX);
  });
  for (auto i = first_problem; i < problems.size(); ++i) {
    out.problem += (out.problem.empty() ? "" : "; ") + problems[i];
  }
  out.problem = utf8_prefix(out.problem, kMaxSettingsError);
  return out;
}

}  // namespace cxp::proxy
