#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "controller/codexproxy_spec.h"

namespace cxp::controller {

// status.pods lists every pod up to this many; beyond, only the pods that are not ready (up to
// this many), and status.podsOmitted counts the rest. The counts are always over every pod.
inline constexpr std::size_t kMaxListedPods = 64;

// One live pod's report, from its heartbeat Lease (controller/heartbeats.h).
struct PodHeartbeat {
  nlohmann::json entry;  // a status.pods entry: name and the pod's reported fields
  // How much longer the report is fresh; nullopt: the Lease expired (the entry says `stale`).
  std::optional<std::chrono::milliseconds> fresh_for;
};

// What the status is computed from. Everything is a value: the function is pure.
struct StatusInputs {
  const CodexProxy* proxy = nullptr;
  std::optional<nlohmann::json> deployment;
  std::set<std::string> live_pods;    // pods of this CodexProxy that exist and are not deleting
  std::vector<PodHeartbeat> reports;  // the live pods that have a heartbeat Lease
  // Live pods the scheduler could not place, each with the scheduler's reason
  // (the pod's PodScheduled condition): named in Progressing.
  std::vector<std::pair<std::string, std::string>> unschedulable;
  std::int64_t settings_generation = 0;          // what the ConfigMap says pods should apply
  std::vector<std::string> spec_problems;        // → Degraded/InvalidSpec
  std::vector<std::string> credential_problems;  // → Degraded/CredentialsMissing
  std::string apply_error;                       // → Degraded/ApplyFailed
  bool monitoring_api = false;  // the cluster serves monitoring.coreos.com/v1 ServiceMonitors
  std::optional<nlohmann::json> autoscaler;     // the CodexProxy's HorizontalPodAutoscaler, if any
  std::optional<nlohmann::json> scaled_object;  // its KEDA ScaledObject, if any
  std::chrono::system_clock::time_point now;
};

struct StatusResult {
  nlohmann::json status;  // the whole status the controller writes, `pods` included
  // When the status must be recomputed even without any event (a heartbeat expires).
  // nullopt: only on events.
  std::optional<std::chrono::milliseconds> recheck_after;
};

StatusResult compute_status(const StatusInputs& inputs);

// True when `current` (the object's status) already holds every field of `desired`; `pods`
// compared by name, in any order, with no other entries.
bool status_up_to_date(const nlohmann::json& current, const nlohmann::json& desired);

}  // namespace cxp::controller
