#include "controller/reconciler.h"

#include <algorithm>
#include <cctype>
#include <future>
#include <set>
#include <tuple>

#include "controller/codexproxy_spec.h"
#include "controller/object_diff.h"
#include "controller/render.h"
#include "controller/status.h"

namespace cxp::controller {

using nlohmann::json;
namespace res = kube::resources;

namespace {

// How long to wait before looking again at a CodexProxy whose writes are refused for a reason
// retrying cannot fix (403, 422): long enough not to spin, short enough to notice fixed RBAC.
constexpr std::chrono::minutes kNotRetryableRecheck{5};
// How often a CodexProxy waiting for a missing Secret looks again (Secrets are not watched: the
// controller reads only the few it is pointed at).
constexpr std::chrono::seconds kCredentialsRecheck{10};

}  // namespace

Reconciler::Reconciler(kube::KubeClient& client, Caches caches, EventRecorder& events,
                       ControllerMetrics& metrics)
    : client_(client),
      caches_(std::move(caches)),
      events_(events),
      metrics_(metrics),
      secrets_(client) {}

std::string Reconciler::apply_concurrently(const json& owner,
                                           const std::vector<const DesiredObject*>& round,
                                           bool& forbidden, std::vector<std::string>& changes) {
  struct Outcome {
    std::string error;
    bool forbidden = false;
    std::vector<std::string> changes;
  };
  // The objects whose cached copy differs, each with whether it exists (created or updated).
  std::vector<std::pair<const DesiredObject*, bool>> stale;
  for (const auto* desired : round) {
    const auto& metadata = desired->object["metadata"];
    const auto existing = caches_.owned.at(desired->resource.plural)
                              ->get(metadata["namespace"].get<std::string>(), desired->name());
    if (!existing || !contains_subset(*existing, desired->object)) {
      stale.emplace_back(desired, existing.has_value());
    }
  }
  const auto write = [&](const std::pair<const DesiredObject*, bool>& object) {
    Outcome outcome;
    outcome.error =
        write_object(owner, *object.first, object.second, outcome.forbidden, outcome.changes);
    return outcome;
  };
  std::vector<Outcome> outcomes;
  if (stale.size() == 1) {
    outcomes.push_back(write(stale.front()));  // no thread for the common single write
  } else {
    std::vector<std::future<Outcome>> running;
    for (const auto& object : stale) {
      running.push_back(std::async(std::launch::async, write, object));
    }
    for (auto& result : running) outcomes.push_back(result.get());
  }
  std::string error;
  for (auto& outcome : outcomes) {  // in render order: Events and errors read the same each time
    forbidden = forbidden || outcome.forbidden;
    changes.insert(changes.end(), outcome.changes.begin(), outcome.changes.end());
    if (error.empty()) error = outcome.error;
  }
  return error;
}

std::string Reconciler::write_object(const json& owner, const DesiredObject& desired, bool existed,
                                     bool& forbidden, std::vector<std::string>& changes) {
  const auto& resource = desired.resource;
  const auto ns = desired.object["metadata"]["namespace"].get<std::string>();
  const auto name = desired.name();
  const auto result = client_.apply(resource, ns, name, desired.object, kFieldManager);
  metrics_.observe_object_write(resource.plural);
  if (!result.ok()) {
    forbidden = forbidden || result.error == kube::ErrorKind::kForbidden ||
                result.error == kube::ErrorKind::kInvalid;
    const auto message = "applying " + resource.kind + " " + name + " failed: " + result.describe();
    events_.warning(owner, "ApplyFailed", message);
    log_.warn("apply_failed",
              {{"object", ns + "/" + name}, {"kind", resource.kind}, {"error", result.describe()}});
    return message;
  }
  caches_.owned.at(resource.plural)->remember(result.object);
  changes.push_back(std::string(existed ? "updated " : "created ") + resource.kind + " " + name);
  log_.info(existed ? "object_updated" : "object_created",
            {{"object", ns + "/" + name}, {"kind", resource.kind}});
  return "";
}

std::string Reconciler::reconcile_optional(const json& owner, const CodexProxy& proxy,
                                           const kube::Resource& resource,
                                           const std::optional<DesiredObject>& desired,
                                           bool& forbidden, std::vector<std::string>& changes) {
  const auto cache = caches_.owned.find(resource.plural);
  if (cache == caches_.owned.end()) return "";  // no such API here: the status says so
  if (desired) return apply_concurrently(owner, {&*desired}, forbidden, changes);
  const auto existing = cache->second->get(proxy.namespace_name, proxy.name);
  if (!existing) return "";
  bool ours = false;
  for (const auto& reference :
       existing->value("metadata", json::object()).value("ownerReferences", json::array())) {
    ours = ours || reference.value("uid", "") == proxy.uid;
  }
  if (!ours) return "";  // someone else's object of the same name: not ours to delete
  const auto result = client_.remove(resource, proxy.namespace_name, proxy.name);
  metrics_.observe_object_write(resource.plural);
  if (!result.ok() && result.error != kube::ErrorKind::kNotFound) {
    forbidden = forbidden || result.error == kube::ErrorKind::kForbidden;
    const auto message =
        "deleting " + resource.kind + " " + proxy.name + " failed: " + result.describe();
    events_.warning(owner, "ApplyFailed", message);
    return message;
  }
  changes.push_back("deleted " + resource.kind + " " + proxy.name);
  log_.info("object_deleted",
            {{"object", proxy.namespace_name + "/" + proxy.name}, {"kind", resource.kind}});
  return "";
}

std::string Reconciler::kind_not_kept(const json& owner, const kube::Resource& resource,
                                      const std::string& field) {
  auto message = field + " is enabled but the controller cannot keep " + resource.plural +
                 ": the cluster did not serve " + resource.api_version() +
                 " when the controller started, or its ClusterRole predates them (upgrade the "
                 "chart, or grant " +
                 (resource.group.empty() ? std::string("core") : resource.group) + " " +
                 resource.plural +
                 " get/list/watch/create/patch/delete), then restart the controller";
  events_.warning(owner, "ApplyFailed", message);
  return message;
}

ApiServerEndpoints Reconciler::api_server_endpoints() {
  std::lock_guard lock(api_server_mutex_);
  const auto now = std::chrono::steady_clock::now();
  // Known: looked at again every 5 minutes; not (a refusal, an outage): every 30 s, not on every
  // reconcile of every CodexProxy with a policy.
  const auto fresh_for = api_server_known_ ? std::chrono::seconds(300) : std::chrono::seconds(30);
  if (api_server_read_at_ != std::chrono::steady_clock::time_point{} &&
      now - api_server_read_at_ < fresh_for) {
    return api_server_;
  }
  api_server_read_at_ = now;
  ApiServerEndpoints found;
  std::string problem;
  // The ClusterIP the pods dial (policies matched before the Service's DNAT), then the addresses
  // behind it (those matched after it, most implementations).
  const auto service = client_.get(res::kServices, "default", "kubernetes");
  if (service.ok()) {
    const auto& spec = service.object.value("spec", json::object());
    for (const auto& port : spec.value("ports", json::array())) {
      if (spec.contains("clusterIP") && spec["clusterIP"].is_string() &&
          spec["clusterIP"] != "None") {
        found.endpoints.emplace_back(spec["clusterIP"].get<std::string>(), port.value("port", 443));
      }
    }
  } else {
    problem = "Service default/kubernetes: " + service.describe();
  }
  const auto slice = client_.get(res::kEndpointSlices, "default", "kubernetes");
  if (slice.ok()) {
    for (const auto& port : slice.object.value("ports", json::array())) {
      for (const auto& endpoint : slice.object.value("endpoints", json::array())) {
        for (const auto& address : endpoint.value("addresses", json::array())) {
          if (address.is_string()) {
            found.endpoints.emplace_back(address.get<std::string>(), port.value("port", 443));
          }
        }
      }
    }
  } else if (slice.error != kube::ErrorKind::kNotFound) {  // none: an API server that publishes
    // no address (e.g. one advertising a loopback address); the ClusterIP rule is all there is
    problem += (problem.empty() ? "" : "; ") + std::string("EndpointSlice default/kubernetes: ") +
               slice.describe();
  }
  std::sort(found.endpoints.begin(), found.endpoints.end());
  found.endpoints.erase(std::unique(found.endpoints.begin(), found.endpoints.end()),
                        found.endpoints.end());
  if (!problem.empty()) {
    // Keep what was known: a passing API hiccup must not cut the pods off the API server.
    log_.warn("api_server_endpoints_unknown", {{"message", problem}});
    if (api_server_known_) return api_server_;
  }
  if (!api_server_known_ || found != api_server_) {
    log_.info("api_server_endpoints", {{"count", found.endpoints.size()}});
  }
  api_server_ = found;
  api_server_known_ = problem.empty();
  return api_server_;
}

void Reconciler::remove_orphan_entries(const std::string& ns, const std::string& name,
                                       const json& status, const json& desired) {
  const auto& pods = status.value("pods", json::array());
  std::set<std::string> wanted;
  for (const auto& entry : desired.value("pods", json::array()))
    wanted.insert(entry.value("name", ""));
  json operations = json::array();
  std::vector<std::string> orphans;
  // From the highest index down, each guarded by a test of the name: if the list changed since
  // we read it, the patch fails as a whole and the next reconcile tries again.
  for (std::size_t i = pods.size(); i-- > 0;) {
    const auto entry_name = pods[i].is_object() ? pods[i].value("name", "") : "";
    if (wanted.count(entry_name)) continue;
    const auto path = "/status/pods/" + std::to_string(i);
    operations.push_back({{"op", "test"}, {"path", path + "/name"}, {"value", entry_name}});
    operations.push_back({{"op", "remove"}, {"path", path}});
    orphans.push_back(entry_name);
  }
  if (operations.empty()) return;
  const auto result = client_.json_patch(res::kCodexProxies, ns, name, operations, "status");
  metrics_.observe_object_write("codexproxies/status");
  if (result.ok()) {
    log_.info("pod_entries_removed", {{"codexproxy", ns + "/" + name}, {"pods", orphans}});
  } else {
    log_.warn("pod_entries_remove_failed",
              {{"codexproxy", ns + "/" + name}, {"error", result.describe()}});
  }
}

ReconcileOutcome Reconciler::reconcile(const std::string& ns, const std::string& name) {
  ReconcileOutcome outcome;
  const auto object = caches_.proxies->get(ns, name);
  if (!object) return outcome;  // deleted: owner references let the garbage collector clean up
  if (object->contains("metadata") && (*object)["metadata"].contains("deletionTimestamp")) {
    return outcome;
  }
  std::vector<std::string> problems;
  const auto proxy = parse_codexproxy(*object, problems);
  if (problems.empty()) problems = validate_spec(proxy.spec);

  std::optional<json> settings_data;
  if (const auto configmap =
          caches_.owned.at("configmaps")->get(ns, settings_configmap_name(name))) {
    settings_data = configmap->value("data", json::object());
  }
  std::string apply_error;
  bool not_retryable = false;
  std::int64_t generation = settings_generation(settings_data.value_or(json::object()));
  std::vector<std::string> credential_problems;
  std::vector<DesiredObject> desired_objects;
  if (problems.empty()) {
    desired_objects = render_objects(proxy, settings_data);
    // Before the pods roll, the Secrets are read afresh; for the status alone a recent look will
    // do.
    const auto deployment =
        std::find_if(desired_objects.begin(), desired_objects.end(),
                     [](const DesiredObject& d) { return d.resource.plural == "deployments"; });
    const auto existing = caches_.owned.at("deployments")->get(ns, name);
    const bool rollout = !existing || !contains_subset(*existing, deployment->object);
    credential_problems = secrets_.check(ns, referenced_secrets(proxy.spec), rollout);
  }
  if (!credential_problems.empty()) {
    std::string message;
    for (const auto& problem : credential_problems)
      message += (message.empty() ? "" : "; ") + problem;
    events_.warning(*object, "CredentialsMissing",
                    message + "; the pods are not rolled until it exists");
  }
  if (problems.empty()) {
    std::vector<std::string> changes;
    // Rounds whose objects go out at once. The Deployment waits only for what its pods need to
    // be admitted and start (ServiceAccount, settings ConfigMap); the Service, PDB and Role go
    // beside it (a Role costs the API server an escalation check of 50-150 ms, and the pods need
    // it only once they run); the RoleBinding last (it needs its Role). A failed round stops the
    // later ones.
    std::vector<const DesiredObject*> rounds[3];
    for (const auto& desired : desired_objects) {
      const auto& plural = desired.resource.plural;
      if (plural == "configmaps") generation = settings_generation(desired.object["data"]);
      if (plural == "deployments" && !credential_problems.empty()) continue;
      const int round = plural == "rolebindings"
                            ? 2
                            : (plural == "configmaps" || plural == "serviceaccounts" ? 0 : 1);
      rounds[round].push_back(&desired);
    }
    for (const auto& round : rounds) {
      if (apply_error.empty()) {
        apply_error = apply_concurrently(*object, round, not_retryable, changes);
      }
    }
    if (apply_error.empty()) {
      apply_error = reconcile_optional(*object, proxy, res::kServiceMonitors,
                                       render_service_monitor(proxy), not_retryable, changes);
    }
    if (apply_error.empty() && proxy.spec.network_policy.enabled &&
        caches_.owned.count(res::kNetworkPolicies.plural) == 0) {
      // Said, not skipped: a policy the user believes in must not silently be missing.
      apply_error = kind_not_kept(*object, res::kNetworkPolicies, "spec.networkPolicy");
      not_retryable = true;
    } else if (apply_error.empty()) {
      const auto api_server =
          proxy.spec.network_policy.enabled ? api_server_endpoints() : ApiServerEndpoints{};
      const auto policy = render_network_policy(proxy, api_server);  // nullopt when not enabled
      const auto before = changes.size();
      apply_error =
          reconcile_optional(*object, proxy, res::kNetworkPolicies, policy, not_retryable, changes);
      if (policy && api_server.endpoints.empty() && changes.size() > before) {
        events_.warning(
            *object, "NetworkPolicyIncomplete",
            "the NetworkPolicy names no API server address: the controller could not read the "
            "kubernetes Service and EndpointSlice in default (ClusterRole "
            "codexproxy-controller-apiserver-endpoints); under an enforcing network plugin the "
            "pods cannot reach their heartbeat Lease");
      }
    }
    // spec.autoscaling: the operator's HPA, or KEDA's ScaledObject (never both: the other is
    // deleted when the engine changes).
    const auto& autoscaling = proxy.spec.autoscaling;
    for (const auto& [resource, desired, engine] :
         {std::tuple{&res::kHorizontalPodAutoscalers, render_autoscaler(proxy), "HPA"},
          std::tuple{&res::kScaledObjects, render_scaled_object(proxy), "KEDA"}}) {
      if (!apply_error.empty()) break;
      if (autoscaling.enabled && autoscaling.engine == engine &&
          caches_.owned.count(resource->plural) == 0) {
        apply_error = kind_not_kept(*object, *resource,
                                    std::string("spec.autoscaling (engine ") + engine + ")");
        not_retryable = true;
      } else {
        apply_error =
            reconcile_optional(*object, proxy, *resource, desired, not_retryable, changes);
      }
    }
    // One Event per reconcile that changed something (not one per object: fewer API calls).
    if (!changes.empty()) {
      std::string message;
      for (const auto& change : changes) message += (message.empty() ? "" : ", ") + change;
      message[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(message[0])));
      const bool created = changes.front().rfind("created", 0) == 0;
      events_.normal(*object, created ? "Created" : "Updated", message);
      // Said once per change of the pods' objects, not on every reconcile.
      if (const auto insecure = insecure_defaults_message(proxy.spec); !insecure.empty()) {
        events_.warning(*object, "InsecureConfig", insecure);
      }
    }
  } else {
    std::string message;
    for (const auto& problem : problems) message += (message.empty() ? "" : "; ") + problem;
    events_.warning(*object, "InvalidSpec", message);
  }

  StatusInputs inputs;
  inputs.proxy = &proxy;
  inputs.deployment = caches_.owned.at("deployments")->get(ns, name);
  inputs.settings_generation = generation;
  inputs.spec_problems = problems;
  inputs.credential_problems = credential_problems;
  inputs.apply_error = apply_error;
  inputs.monitoring_api = caches_.owned.count(res::kServiceMonitors.plural) > 0;
  if (const auto hpas = caches_.owned.find(res::kHorizontalPodAutoscalers.plural);
      hpas != caches_.owned.end()) {
    inputs.autoscaler = hpas->second->get(ns, name);
  }
  if (const auto scaled = caches_.owned.find(res::kScaledObjects.plural);
      scaled != caches_.owned.end()) {
    inputs.scaled_object = scaled->second->get(ns, name);
  }
  inputs.now = std::chrono::system_clock::now();
  const auto steady_now = HeartbeatClock::Clock::now();
  for (const auto& pod : caches_.pods->list(ns, name)) {  // indexed by kInstanceLabel
    const auto& metadata = pod["metadata"];
    if (metadata.contains("deletionTimestamp")) continue;
    const auto pod_name = metadata.value("name", "");
    inputs.live_pods.insert(pod_name);
    // The pod's report: its heartbeat Lease of the same name (only the pod itself may write it:
    // the chart's ValidatingAdmissionPolicy), joined here with a pod that is ours.
    if (const auto lease = caches_.leases->get(ns, pod_name)) {
      inputs.reports.push_back({pod_entry_from_lease(pod_name, *lease),
                                caches_.heartbeats->fresh_for(ns + "/" + pod_name, steady_now)});
    }
    for (const auto& condition :
         pod.value("status", json::object()).value("conditions", json::array())) {
      if (condition.value("type", "") == "PodScheduled" &&
          condition.value("reason", "") == "Unschedulable") {
        inputs.unschedulable.emplace_back(metadata.value("name", ""),
                                          condition.value("message", "Unschedulable"));
      }
    }
  }
  const auto computed = compute_status(inputs);
  const json* current_status = &proxy.status;
  std::optional<json> written;
  if (!status_up_to_date(proxy.status, computed.status)) {
    const json patch = {{"apiVersion", res::kCodexProxies.api_version()},
                        {"kind", res::kCodexProxies.kind},
                        {"metadata", {{"name", name}, {"namespace", ns}}},
                        {"status", computed.status}};
    const auto result = client_.apply(res::kCodexProxies, ns, name, patch, kFieldManager, "status");
    metrics_.observe_object_write("codexproxies/status");
    if (result.ok()) {
      caches_.proxies->remember(result.object);
      written = result.object.value("status", json::object());
      current_status = &*written;
    }
    if (!result.ok() && result.error != kube::ErrorKind::kNotFound) {
      log_.warn("status_update_failed",
                {{"codexproxy", ns + "/" + name}, {"error", result.describe()}});
      if (apply_error.empty()) apply_error = "updating the status failed: " + result.describe();
      not_retryable = not_retryable || result.error == kube::ErrorKind::kForbidden;
    }
  }
  // Entries someone else owns (pods of an older version wrote their own) that server-side apply
  // left in place.
  if (current_status->value("pods", json::array()).size() != computed.status["pods"].size() &&
      caches_.pods->synced()) {
    remove_orphan_entries(ns, name, *current_status, computed.status);
  }

  if (!apply_error.empty()) {
    if (not_retryable) {
      outcome.result = ReconcileOutcome::Result::kRequeueAfter;
      outcome.after = kNotRetryableRecheck;
    } else {
      outcome.result = ReconcileOutcome::Result::kError;
    }
    outcome.error = apply_error;
  } else {
    auto after = computed.recheck_after;
    if (!credential_problems.empty()) {
      after = std::min<std::chrono::milliseconds>(after.value_or(kCredentialsRecheck),
                                                  kCredentialsRecheck);
    }
    if (after) {
      outcome.result = ReconcileOutcome::Result::kRequeueAfter;
      outcome.after = *after;
    }
  }
  return outcome;
}

}  // namespace cxp::controller
