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

// A pod's report is fresh while its heartbeat is younger than this (three 30 s heartbeats).
inline constexpr std::chrono::seconds kHeartbeatFresh{90};
// An entry of a pod that no longer exists is removed once it is older than this (so a pod that
// reported before the controller's cache saw it keeps its entry).
inline constexpr std::chrono::seconds kOrphanEntryGrace{5};

// What the status is computed from. Everything is a value: the function is pure.
struct StatusInputs {
  const CodexProxy* proxy = nullptr;
  std::optional<nlohmann::json> deployment;
  std::set<std::string> live_pods;  // pods of this CodexProxy that exist and are not deleting
  // Live pods the scheduler could not place, each with the scheduler's reason
  // (the pod's PodScheduled condition): named in Progressing.
  std::vector<std::pair<std::string, std::string>> unschedulable;
  std::int64_t settings_generation = 0;          // what the ConfigMap says pods should apply
  std::vector<std::string> spec_problems;        // → Degraded/InvalidSpec
  std::vector<std::string> credential_problems;  // → Degraded/CredentialsMissing
  std::string apply_error;                       // → Degraded/ApplyFailed
  bool monitoring_api = false;  // the cluster serves monitoring.coreos.com/v1 ServiceMonitors
  std::chrono::system_clock::time_point now;
};

struct StatusResult {
  nlohmann::json status;  // the controller-owned status fields (everything but `pods`)
  // Entries of pods that are gone (by name): the reconciler removes them.
  std::vector<std::string> orphan_entries;
  // When the status must be recomputed even without any event (a heartbeat goes stale, an
  // orphan's grace ends). nullopt: only on events.
  std::optional<std::chrono::milliseconds> recheck_after;
};

StatusResult compute_status(const StatusInputs& inputs);

// True when `current` (the object's status) already holds every field of `desired`.
bool status_up_to_date(const nlohmann::json& current, const nlohmann::json& desired);

}  // namespace cxp::controller
