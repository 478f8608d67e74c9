#include "controller/status.h"

#include <algorithm>
#include <map>

#include "common/utc_time.h"
#include "common/utf8.h"
#include "controller/conditions.h"
#include "controller/object_diff.h"
#include "controller/render.h"

namespace cxp::controller {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

std::string join(const std::vector<std::string>& names, std::size_t limit = 5) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += " and " + std::to_string(names.size() - limit) + " more";
  return out;
}

bool rollout_complete(const json& deployment, std::int32_t desired, std::string& message) {
  const auto& status = deployment.value("status", json::object());
  const auto generation = deployment["metadata"].value("generation", std::int64_t{0});
  if (status.value("observedGeneration", std::int64_t{0}) < generation) {
    message = "the Deployment controller has not seen the latest Deployment yet";
    return false;
  }
  const auto updated = status.value("updatedReplicas", 0);
  const auto replicas = status.value("replicas", 0);
  if (updated < desired) {
    message = std::to_string(updated) + " of " + std::to_string(desired) + " pods updated";
    return false;
  }
  if (replicas > updated) {
    message = std::to_string(replicas - updated) + " old pods terminating";
    return false;
  }
  return true;
}

bool deadline_exceeded(const json& deployment) {
  const auto conditions =
      deployment.value("status", json::object()).value("conditions", json::array());
  const auto* progressing = find_condition(conditions, "Progressing");
  return progressing != nullptr && progressing->value("reason", "") == "ProgressDeadlineExceeded";
}

// The Deployment's ReplicaFailure condition (its ReplicaSet cannot create pods: a missing
// PriorityClass, a quota, an admission webhook) as the API server worded it; empty when none.
std::string replica_failure(const json& deployment) {
  const auto conditions =
      deployment.value("status", json::object()).value("conditions", json::array());
  const auto* failure = find_condition(conditions, "ReplicaFailure");
  if (failure == nullptr || failure->value("status", "") != "True") return "";
  auto message = failure->value("message", "");
  return message.empty() ? failure->value("reason", "ReplicaFailure") : message;
}

// At most this much of what others wrote (the API server, the scheduler) goes into a condition.
constexpr std::size_t kQuotedMessageMax = 1024;

std::string quoted(const std::string& text) {
  return text.size() > kQuotedMessageMax ? utf8_prefix(text, kQuotedMessageMax) + "..." : text;
}

struct ConditionValue {
  bool status = false;
  std::string reason;
  std::string message;
};

// Autoscaling: what the HorizontalPodAutoscaler says of itself (its AbleToScale and ScalingActive
// conditions: a missing custom metrics API shows as ScalingActive False, FailedGetPodsMetric),
// with its desired and current replicas when it scales (not the metric's value: that changes at
// every sync and would rewrite the status every 15 s).
ConditionValue autoscaling_condition(const CodexProxySpec& spec,
                                     const std::optional<json>& autoscaler,
                                     const std::optional<json>& scaled_object) {
  if (!spec.autoscaling.enabled) {
    return {false, "NotRequested",
            "spec.autoscaling.enabled is false: spec.replicas is what you set"};
  }
  if (spec.autoscaling.engine == "KEDA") {
    // KEDA's ScaledObject: its Ready condition says whether KEDA took it (and made its HPA).
    if (!scaled_object) return {false, "Pending", "the KEDA ScaledObject is not there yet"};
    for (const auto& condition :
         scaled_object->value("status", json::object()).value("conditions", json::array())) {
      if (condition.value("type", "") != "Ready") continue;
      const bool ready = condition.value("status", "") == "True";
      return {ready,
              ready ? "ScaledObjectReady" : condition.value("reason", "ScaledObjectNotReady"),
              quoted("KEDA's ScaledObject: " + condition.value("message", "") +
                     (ready ? "" : "; the replicas stay where they are"))};
    }
    return {false, "Pending",
            "KEDA has not taken the ScaledObject yet (is KEDA's operator running?)"};
  }
  if (!autoscaler) {
    return {false, "Pending", "the HorizontalPodAutoscaler is not there yet"};
  }
  const auto& status = autoscaler->value("status", json::object());
  for (const char* type : {"AbleToScale", "ScalingActive"}) {
    for (const auto& condition : status.value("conditions", json::array())) {
      if (condition.value("type", "") == type && condition.value("status", "") == "False") {
        return {false, condition.value("reason", std::string(type) + "False"),
                quoted("the HorizontalPodAutoscaler cannot scale (" + std::string(type) +
                       "): " + condition.value("message", "") +
                       "; the replicas stay where they are (docs/runbooks/autoscaling.md)")};
      }
    }
  }
  const auto desired = status.value("desiredReplicas", std::int64_t{0});
  const auto current = status.value("currentReplicas", std::int64_t{0});
  if (!status.contains("desiredReplicas")) {
    return {false, "Pending", "the HorizontalPodAutoscaler has not computed a scale yet"};
  }
  return {true, "ScalingActive",
          "desired " + std::to_string(desired) + " replicas (current " + std::to_string(current) +
              ", " + std::to_string(spec.autoscaling.min_replicas) + "-" +
              std::to_string(spec.autoscaling.max_replicas) + ") on " + kAutoscalingMetric +
              ", target " + autoscaling_target(spec) + " per pod on average"};
}

}  // namespace

StatusResult compute_status(const StatusInputs& in) {
  const CodexProxy& proxy = *in.proxy;
  const auto desired = proxy.spec.replicas;
  const auto generation = proxy.generation;
  const auto now_text = format_utc(in.now, UtcFormat::kSeconds);
  StatusResult result;
  json conditions = proxy.status.value("conditions", json::array());

  // The pods' own reports.
  std::int32_t ready = 0;
  std::int64_t restarts = 0;
  std::vector<std::string> backing_off, failed, stale, behind, in_maintenance;
  std::optional<std::chrono::milliseconds> recheck;
  std::set<std::string> reported;
  json listed = json::array(), not_ready = json::array();
  for (const auto& pod : in.reports) {
    auto entry = pod.entry;
    const auto name = entry.value("name", "");
    if (!in.live_pods.count(name) || !reported.insert(name).second) continue;
    restarts += entry.value("restartsTotal", std::int64_t{0});
    const auto state = entry.value("workerState", "");
    if (!pod.fresh_for) {
      stale.push_back(name);
      entry["ready"] = false;
      entry["stale"] = true;
    } else {
      const auto after = std::max(*pod.fresh_for, std::chrono::milliseconds(500));
      if (!recheck || after < *recheck) recheck = after;
      if (entry.value("ready", false)) ++ready;
      if (state == "backoff") backing_off.push_back(name);
      if (state == "failed") failed.push_back(name);
    }
    if (entry.value("settingsGeneration", std::int64_t{0}) < in.settings_generation) {
      behind.push_back(name);
    }
    if (entry.value("maintenance", false)) in_maintenance.push_back(name);
    if (!entry.value("ready", false) && not_ready.size() < kMaxListedPods) {
      not_ready.push_back(entry);
    }
    listed.push_back(std::move(entry));
  }
  for (const auto& name : in.live_pods) {
    if (!reported.count(name)) stale.push_back(name);  // no heartbeat Lease yet
  }
  std::int64_t omitted = 0;
  if (listed.size() > kMaxListedPods) {
    omitted = static_cast<std::int64_t>(listed.size() - not_ready.size());
    listed = std::move(not_ready);
  }
  std::sort(listed.begin(), listed.end(),
            [](const json& a, const json& b) { return a.value("name", "") < b.value("name", ""); });
  result.recheck_after = recheck;

  // Degraded: the first cause that applies, most fundamental first.
  if (!in.spec_problems.empty()) {
    set_condition(conditions, "Degraded", true, "InvalidSpec", join(in.spec_problems, 10),
                  generation, now_text);
  } else if (!in.credential_problems.empty()) {
    set_condition(conditions, "Degraded", true, "CredentialsMissing",
                  join(in.credential_problems, 4) + "; the pods are not rolled until it exists",
                  generation, now_text);
  } else if (!in.apply_error.empty()) {
    set_condition(conditions, "Degraded", true, "ApplyFailed", in.apply_error, generation,
                  now_text);
  } else if (!failed.empty()) {
    set_condition(conditions, "Degraded", true, "WorkerFailed",
                  "worker gave up restarting in pod(s) " + join(failed), generation, now_text);
  } else if (!backing_off.empty()) {
    set_condition(conditions, "Degraded", true, "WorkerBackoff",
                  "worker restarting with backoff in pod(s) " + join(backing_off), generation,
                  now_text);
  } else if (const auto refused = in.deployment ? replica_failure(*in.deployment) : "";
             !refused.empty()) {
    set_condition(conditions, "Degraded", true, "PodsNotCreated",
                  "the Deployment cannot create pods: " + quoted(refused), generation, now_text);
  } else if (in.deployment && deadline_exceeded(*in.deployment)) {
    set_condition(conditions, "Degraded", true, "ProgressDeadlineExceeded",
                  "the Deployment's rollout exceeded its progress deadline", generation, now_text);
  } else {
    set_condition(conditions, "Degraded", false, "AsExpected", "", generation, now_text);
  }

  // Progressing: the rollout, then the live settings.
  std::string rollout_message;
  if (!in.spec_problems.empty()) {
    set_condition(conditions, "Progressing", false, "InvalidSpec", "waiting for a valid spec",
                  generation, now_text);
  } else if (!in.credential_problems.empty()) {
    set_condition(conditions, "Progressing", false, "CredentialsMissing",
                  "waiting for the Secrets the pods need", generation, now_text);
  } else if (!in.deployment) {
    set_condition(conditions, "Progressing", true, "Creating", "creating the Deployment",
                  generation, now_text);
  } else if (!rollout_complete(*in.deployment, desired, rollout_message)) {
    if (!in.unschedulable.empty()) {
      const auto& [pod, reason] = in.unschedulable.front();
      rollout_message += "; " + std::to_string(in.unschedulable.size()) +
                         " pod(s) cannot be scheduled, e.g. " + pod + ": " + quoted(reason);
    }
    set_condition(conditions, "Progressing", true, "RollingOut", rollout_message, generation,
                  now_text);
  } else if (!behind.empty()) {
    set_condition(conditions, "Progressing", true, "ApplyingSettings",
                  "settings generation " + std::to_string(in.settings_generation) +
                      " not yet applied by pod(s) " + join(behind),
                  generation, now_text);
  } else {
    set_condition(conditions, "Progressing", false, "Complete",
                  "every pod runs the current spec and settings", generation, now_text);
  }

  // Available.
  const std::string ready_text = std::to_string(ready) + "/" + std::to_string(desired);
  if (desired == 0) {
    set_condition(conditions, "Available", true, "ScaledToZero", "no pods requested", generation,
                  now_text);
  } else if (ready >= desired) {
    set_condition(conditions, "Available", true, "WorkersReady", ready_text + " workers ready",
                  generation, now_text);
  } else {
    std::string message = ready_text + " workers ready";
    if (!stale.empty()) message += "; no fresh heartbeat from " + join(stale);
    set_condition(conditions, "Available", false, ready > 0 ? "PartiallyReady" : "WorkersNotReady",
                  message, generation, now_text);
  }

  // Maintenance: what the spec asks for, and what the pods have applied. Settled when every live
  // pod agrees with the spec; the MAINTENANCE column then shows True/False, else "in force/pods".
  const auto live = in.live_pods.size();
  const auto in_force = in_maintenance.size();
  const bool enabled = proxy.spec.maintenance_enabled;
  const bool settled = enabled ? in_force == live : in_force == 0;
  const std::string maintenance_text = settled
                                           ? (enabled ? "True" : "False")
                                           : std::to_string(in_force) + "/" + std::to_string(live);
  set_condition(conditions, "Maintenance", enabled,
                enabled ? (settled ? "Enabled" : "Enabling") : (settled ? "Disabled" : "Disabling"),
                "in force on " + std::to_string(in_force) + " of " + std::to_string(live) + " pods",
                generation, now_text);

  // InsecureConfig: abnormal-true like Degraded, but it does not change the phase.
  const auto insecure = insecure_defaults_message(proxy.spec);
  set_condition(conditions, "InsecureConfig", !insecure.empty(),
                insecure.empty() ? "AsExpected" : "OpenEndpoints", insecure, generation, now_text);

  // ServiceMonitor: informational like InsecureConfig.
  if (!proxy.spec.service_monitor_enabled || !proxy.spec.metrics_enabled) {
    set_condition(conditions, "ServiceMonitor", false, "NotRequested",
                  "spec.metrics.serviceMonitor.enabled is false: nothing the operator made scrapes "
                  "the pods",
                  generation, now_text);
  } else if (!in.monitoring_api) {
    set_condition(conditions, "ServiceMonitor", false, "APIMissing",
                  "the cluster served no monitoring.coreos.com/v1 ServiceMonitor API when the "
                  "controller started: install the Prometheus Operator's CRDs, then restart the "
                  "controller (docs/metrics-and-alerts.md)",
                  generation, now_text);
  } else {
    set_condition(conditions, "ServiceMonitor", true, "Created",
                  "ServiceMonitor " + proxy.name + " scrapes the pods' /metrics every " +
                      proxy.spec.service_monitor_interval,
                  generation, now_text);
  }

  // Autoscaling: informational like ServiceMonitor.
  const auto autoscaling = autoscaling_condition(proxy.spec, in.autoscaler, in.scaled_object);
  set_condition(conditions, "Autoscaling", autoscaling.status, autoscaling.reason,
                autoscaling.message, generation, now_text);

  std::string phase = "Pending";
  if (condition_is_true(conditions, "Degraded")) {
    phase = "Degraded";
  } else if (condition_is_true(conditions, "Progressing")) {
    phase = "Progressing";
  } else if (condition_is_true(conditions, "Available")) {
    phase = "Available";
  }

  result.status = {
      {"observedGeneration", generation},
      {"replicas", static_cast<std::int64_t>(live)},
      {"readyReplicas", ready},
      {"ready", ready_text},
      {"restartsTotal", restarts},
      {"maintenance", maintenance_text},
      {"phase", phase},
      {"selector", pod_selector_string(proxy.name)},
      {"conditions", conditions},
      {"pods", std::move(listed)},
      {"podsOmitted", omitted},
  };
  return result;
}

bool status_up_to_date(const json& current, const json& desired) {
  json rest = desired;
  rest.erase("pods");
  if (!contains_subset(current, rest)) return false;
  const auto& want = desired.value("pods", json::array());
  const auto& have = current.value("pods", json::array());
  if (!have.is_array() || have.size() != want.size()) return false;
  std::map<std::string, const json*> by_name;
  for (const auto& entry : have) {
    if (entry.is_object()) by_name[entry.value("name", "")] = &entry;
  }
  for (const auto& entry : want) {
    const auto found = by_name.find(entry.value("name", ""));
    if (found == by_name.end() || !contains_subset(*found->second, entry)) return false;
    // The one field we send only sometimes: gone once the pod's heartbeat is back.
    if (found->second->contains("stale") && !entry.contains("stale")) return false;
  }
  return true;
}

}  // namespace cxp::controller
