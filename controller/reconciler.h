#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/kube/informer.h"
#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"
#include "controller/controller_metrics.h"
#include "controller/event_recorder.h"
#include "controller/heartbeats.h"
#include "controller/render.h"
#include "controller/secret_check.h"

namespace cxp::controller {

// The caches the reconciler reads: CodexProxies and every kind of object they own.
struct Caches {
  kube::Informer* proxies = nullptr;
  std::map<std::string, kube::Informer*> owned;  // by resource plural
  // servicemonitors and networkpolicies are in `owned` only when the controller could list them
  // at start.
  kube::Informer* pods = nullptr;
  kube::Informer* leases = nullptr;  // the pods' heartbeat Leases (common/pod_heartbeat.h)
  const HeartbeatClock* heartbeats = nullptr;
};

struct ReconcileOutcome {
  enum class Result { kSuccess, kError, kRequeueAfter };
  Result result = Result::kSuccess;
  std::chrono::milliseconds after{0};
  std::string error;
};

// Reconciles one CodexProxy: reads the caches, renders the desired objects (pure), applies only
// what differs, then writes the status (only when it differs). All API writes go through here.
// While a Secret the pods need is missing, the Deployment is left as it is (running pods keep
// serving; no pod is rolled onto a Secret it cannot start with) and the CodexProxy is Degraded
// (CredentialsMissing) until the Secret appears.
class Reconciler {
 public:
  Reconciler(kube::KubeClient& client, Caches caches, EventRecorder& events,
             ControllerMetrics& metrics);

  ReconcileOutcome reconcile(const std::string& ns, const std::string& name);
  // The cluster serves an optional kind (ServiceMonitors, NetworkPolicies) and we may list it:
  // keep those objects too. Before the first reconcile only.
  void own(const kube::Resource& resource, kube::Informer* informer) {
    caches_.owned[resource.plural] = informer;
  }

 private:
  // Applies the objects of `round` whose cached copy differs, concurrently (the client is
  // thread-safe); the first error in render order, or "". Changes and `forbidden` merge in order.
  std::string apply_concurrently(const nlohmann::json& owner,
                                 const std::vector<const DesiredObject*>& round, bool& forbidden,
                                 std::vector<std::string>& changes);
  // Applies one object the cache shows differs (`existed`: it is there, to be updated); returns
  // the error text or "". Thread-safe: the client, cache, Events and log lock.
  std::string write_object(const nlohmann::json& owner, const DesiredObject& desired, bool existed,
                           bool& forbidden, std::vector<std::string>& changes);
  // An object the spec may or may not ask for (the ServiceMonitor, the NetworkPolicy): applied
  // when `desired` is set, deleted (if ours) when not; nothing when the cluster serves no such API
  // (no cache of it). Error text or "".
  // A kind the spec asks for that the controller may not keep (its ClusterRole lacks it): said
  // in a Warning Event and returned as the apply error, never silently skipped.
  std::string kind_not_kept(const nlohmann::json& owner, const kube::Resource& resource,
                            const std::string& field);
  std::string reconcile_optional(const nlohmann::json& owner, const CodexProxy& proxy,
                                 const kube::Resource& resource,
                                 const std::optional<DesiredObject>& desired, bool& forbidden,
                                 std::vector<std::string>& changes);
  // Where the pods reach the API server (the `kubernetes` Service and its EndpointSlice), read
  // at most every 5 minutes (30 s while unknown), and only when a NetworkPolicy needs it.
  ApiServerEndpoints api_server_endpoints();
  // Removes the entries of status.pods that are not in `desired` (written by someone else, e.g.
  // pods of an older version that wrote their own entries).
  void remove_orphan_entries(const std::string& ns, const std::string& name,
                             const nlohmann::json& status, const nlohmann::json& desired);

  kube::KubeClient& client_;
  Caches caches_;
  EventRecorder& events_;
  ControllerMetrics& metrics_;
  SecretKeyCheck secrets_;
  std::mutex api_server_mutex_;
  ApiServerEndpoints api_server_;
  std::chrono::steady_clock::time_point api_server_read_at_{};
  bool api_server_known_ = false;
  telemetry::JsonLog log_{"reconciler"};
};

}  // namespace cxp::controller
