#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/settings_table.h"
#include "proxy/supervisor/worker_state.h"

namespace cxp::proxy {

// Who this pod is and which CodexProxy it reports to.
struct PodIdentity {
  std::string pod_name;
  std::string pod_namespace;
  std::string codexproxy_name;
  std::string pod_uid;  // empty: the Lease has no owner (outside a real pod)
  std::string field_manager() const { return "codex-proxy-" + pod_name.substr(0, 100); }
  std::string settings_configmap() const { return codexproxy_name + "-settings"; }
};

// What a pod reports about itself: a view of the supervisor snapshot plus the live settings.
struct PodReport {
  bool ready = false;
  std::string worker_state;
  std::uint64_t restarts_total = 0;
  std::uint32_t restart_streak = 0;
  std::int64_t backoff_ms = 0;
  std::optional<int> last_exit_code;
  std::uint64_t recycles_total = 0;  // handovers to a warm successor (and forced restarts)
  bool maintenance = false;
  std::int64_t settings_generation = 0;
  std::string settings_error;  // why the latest settings were not all applied; empty when they were
  std::uint32_t in_flight = 0;  // turns holding a worker slot when the report was made
  bool operator==(const PodReport&) const = default;
};

PodReport make_pod_report(const WorkerSnapshot& snapshot, bool maintenance,
                          std::int64_t settings_generation, std::string settings_error = {},
                          std::uint32_t in_flight = 0);

// The report as the controller copies it into status.pods (every field but `name`).
nlohmann::json render_pod_report(const PodReport& report);

// The server-side-apply body of this pod's heartbeat Lease (common/pod_heartbeat.h): renewed at
// `renew`, valid for `duration`, carrying the report in its annotation.
nlohmann::json render_pod_lease(const PodIdentity& pod, const PodReport& report,
                                std::chrono::system_clock::time_point renew,
                                std::chrono::seconds duration);

// The live settings a pod takes from its ConfigMap.
struct LiveSettings {
  bool maintenance = false;
  int retry_after_s = settings::kRetryAfterSeconds.default_value;
  bool trace_enabled = false;
  std::int64_t trace_ttl_s = settings::kTraceTtlSeconds.default_value;
  std::uint32_t trace_max_files = settings::kTraceMaxFiles.default_value;
  // How many pods share each API key's limits (the CodexProxy's ready replicas): each pod
  // enforces limit / limit_pods.
  std::uint64_t limit_pods = 1;
  std::int64_t generation = 0;
  // The problems of the latest ConfigMap version ("; "-joined, at most kMaxSettingsError bytes),
  // empty when every value applied: the pod kept its previous value for each bad key.
  std::string problem;
};
inline constexpr std::size_t kMaxSettingsError = 1024;

// Reads the ConfigMap's data. A key with a bad value keeps the value from `previous` and becomes
// a problem naming the key; missing keys keep `previous` too.
LiveSettings parse_live_settings(const nlohmann::json& data, const LiveSettings& previous,
                                 std::vector<std::string>& problems);

}  // namespace cxp::proxy
