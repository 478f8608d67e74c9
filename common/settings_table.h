#pragma once

#include <cstdint>
#include <string_view>

namespace cxp::settings {

// The integer settings of a CodexProxy, in one place: the CRD field (under `spec`), its default and
// bounds exactly as the CRD states them, the pod's variable with the factor from the field's unit
// to the variable's (seconds → milliseconds: 1000), and whether running pods take a change live
// (through the settings ConfigMap) or are rolled. CodexProxySpec's and ProxyConfig's defaults, the
// ConfigMap parser's bounds and the trace buffer's defaults come from here; a unit test
// (tests/unit/settings_table_test.cpp) holds the CRD file and the variables' parsers to it.
//
// A variable may accept more than the CRD (a proxy run by hand may keep traces for 2 s), never
// less: every value the CRD admits must start a pod.
struct IntSetting {
  std::string_view field;  // e.g. "worker.maxConcurrency"
  std::int64_t default_value;
  std::int64_t min;
  std::int64_t max;
  std::string_view env;  // "" when the pods get no variable (e.g. probe timings)
  std::int64_t env_factor;
  bool live;

  constexpr std::int64_t env_default() const { return default_value * env_factor; }
};

inline constexpr IntSetting kReplicas{"replicas", 1, 0, 1000, "", 1, false};
inline constexpr IntSetting kMaxConcurrency{"worker.maxConcurrency", 64, 1,    1024,
                                            "WORKER_MAX_CONCURRENCY", 1, false};
inline constexpr IntSetting kRequestTimeoutSeconds{"worker.requestTimeoutSeconds", 120,  1,    3600,
                                                   "WORKER_REQUEST_TIMEOUT_MS",    1000, false};
inline constexpr IntSetting kBackoffInitialMs{"worker.backoff.initialMs",  250, 1,    600000,
                                              "WORKER_BACKOFF_INITIAL_MS", 1,   false};
inline constexpr IntSetting kBackoffMaxMs{"worker.backoff.maxMs",  5000, 1,    600000,
                                          "WORKER_BACKOFF_MAX_MS", 1,    false};
inline constexpr IntSetting kDrainSeconds{"worker.drainSeconds",      10,   0,    3600,
                                          "WORKER_SHUTDOWN_GRACE_MS", 1000, false};
inline constexpr IntSetting kMaxTurns{"worker.maxTurns",  400, 1,    1000000,
                                      "WORKER_MAX_TURNS", 1,   false};
inline constexpr IntSetting kMaxRssMb{"worker.maxRssMB",   1024, 64,   1048576,
                                      "WORKER_MAX_RSS_MB", 1,    false};
inline constexpr IntSetting kReadinessPeriod{
    "probes.readiness.periodSeconds", 5, 1, 300, "", 1, false};
inline constexpr IntSetting kReadinessFailures{
    "probes.readiness.failureThreshold", 2, 1, 100, "", 1, false};
inline constexpr IntSetting kLivenessPeriod{
    "probes.liveness.periodSeconds", 10, 1, 300, "", 1, false};
inline constexpr IntSetting kLivenessFailures{
    "probes.liveness.failureThreshold", 3, 1, 100, "", 1, false};
inline constexpr IntSetting kStartupPeriod{"probes.startup.periodSeconds", 5, 1, 300, "", 1, false};
inline constexpr IntSetting kStartupFailures{
    "probes.startup.failureThreshold", 30, 1, 1000, "", 1, false};
inline constexpr IntSetting kRetryAfterSeconds{"maintenance.retryAfterSeconds",   120, 0,   86400,
                                               "PROXY_MAINTENANCE_RETRY_AFTER_S", 1,   true};
inline constexpr IntSetting kTraceTtlSeconds{"traceBuffer.ttlSeconds", 86400, 60,  2592000,
                                             "PROXY_TRACE_TTL_S",      1,     true};
inline constexpr IntSetting kTraceMaxFiles{"traceBuffer.maxFiles",  100, 1,   100000,
                                           "PROXY_TRACE_MAX_FILES", 1,   true};

// The settings ConfigMap's key that tells each pod how many pods share the API keys' limits (the
// CodexProxy's ready replicas, at least 1): the controller writes it, the pods divide by it.
inline constexpr const char* kLimitPodsKey = "limits.pods";

inline constexpr const IntSetting* kIntSettings[] = {
    &kReplicas,          &kMaxConcurrency,  &kRequestTimeoutSeconds,
    &kBackoffInitialMs,  &kBackoffMaxMs,    &kDrainSeconds,
    &kMaxTurns,          &kMaxRssMb,        &kReadinessPeriod,
    &kReadinessFailures, &kLivenessPeriod,  &kLivenessFailures,
    &kStartupPeriod,     &kStartupFailures, &kRetryAfterSeconds,
    &kTraceTtlSeconds,   &kTraceMaxFiles};

}  // namespace cxp::settings
