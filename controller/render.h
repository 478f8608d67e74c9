#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/kube/resource.h"
#include "common/pod_heartbeat.h"
#include "controller/codexproxy_spec.h"

namespace cxp::controller {

inline constexpr const char* kFieldManager = "codexproxy-controller";
inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kInstanceLabel = kCodexProxyLabel;
inline constexpr const char* kRestartHashAnnotation = "codexproxy.io/restart-hash";
inline constexpr const char* kSettingsGenerationKey = "settingsGeneration";
// A hash of everything the controller asked of an object: a removed field changes it, so the
// object is applied again (a subset comparison alone would not see a removal).
inline constexpr const char* kDesiredHashAnnotation = "codexproxy.io/desired-hash";
inline constexpr int kProxyPort = 11435;     // the OpenAI API (container port "http")
inline constexpr int kProxyOpsPort = 11436;  // probes, /metrics, /internal/* (container port "ops")
// The model endpoint the pods use when a CodexProxy gives an API key but no provider.
inline constexpr const char* kOpenAiBaseUrl = "https://api.openai.com/v1";
inline constexpr const char* kDefaultModelKeyVariable = "OPENAI_API_KEY";
// Where a ChatGPT login's auth.json Secret is mounted (read-only) in the proxy container.
inline constexpr const char* kCodexAuthMountPath = "/var/run/secrets/codexproxy/codex-auth";
// Where the callers' keys and the operator tokens are mounted, one Secret volume each
// (<root>/api-keys/api-keys, …/api-key/api-key, …/admin-token/admin-token, …/metrics-token/…).
inline constexpr const char* kCredentialsMountRoot = "/var/run/secrets/codexproxy";
// How long a terminating pod keeps serving before its SIGTERM (preStop), so that Services and load
// balancers stop sending to it first: no request is refused during a rollout or a drain.
inline constexpr std::int32_t kPreStopSeconds = 5;
// preStop + worker.drainSeconds + the supervisor's SIGTERM → SIGKILL step (3 s) + slack.
inline std::int32_t termination_grace_seconds(const CodexProxySpec& spec) {
  return kPreStopSeconds + spec.drain_seconds + 5;
}

// One object the controller wants to exist, and the resource type it belongs to.
struct DesiredObject {
  kube::Resource resource;
  nlohmann::json object;
  std::string name() const { return object["metadata"]["name"].get<std::string>(); }
};

std::string settings_configmap_name(const std::string& proxy_name);
// The labels of every object of a CodexProxy, and the (smaller) selector of its pods.
nlohmann::json common_labels(const std::string& proxy_name);
nlohmann::json pod_selector(const std::string& proxy_name);
std::string pod_selector_string(const std::string& proxy_name);

// The settings a running pod takes live (maintenance, trace buffer), as ConfigMap data.
// `settingsGeneration` stays what `existing_data` says while the settings are unchanged, and
// becomes the CodexProxy's metadata.generation when they change.
nlohmann::json render_settings_data(const CodexProxy& proxy,
                                    const std::optional<nlohmann::json>& existing_data);
std::int64_t settings_generation(const nlohmann::json& settings_data);

// Hash of the settings that need a new process (image, worker, probes, metrics): a pod-template
// annotation, so that exactly these roll the pods.
std::string restart_hash(const CodexProxySpec& spec);

// The proxy container's resources when spec.resources is unset, sized from measurements
// (docs/benchmarks.md, docs/autoscaling.md): 64 concurrent turns of a slow model take ~0.7 CPU and
// ~330 MiB of worker, which grows ~1.1 MiB per turn until recycled (worker.maxTurns 400,
// worker.maxRssMB 1024); two workers during a handover (maxRssMB + ~400 MiB). No CPU limit:
// throttling a turn only makes it slower.
nlohmann::json default_resources();
// Spread over nodes and zones, per rollout revision, never blocking scheduling.
nlohmann::json default_topology_spread(const std::string& proxy_name);

// Every object of a CodexProxy: ConfigMap, ServiceAccount, Role, RoleBinding, Service,
// PodDisruptionBudget, Deployment — in that order (the Deployment's pods need the others). Pure.
std::vector<DesiredObject> render_objects(const CodexProxy& proxy,
                                          const std::optional<nlohmann::json>& existing_settings);

// Where the pods reach the Kubernetes API server (their heartbeat Leases, the settings
// ConfigMap): the `kubernetes` Service's ClusterIP and the addresses behind it (its EndpointSlice),
// each with its port. Empty when unknown.
struct ApiServerEndpoints {
  std::vector<std::pair<std::string, std::int32_t>> endpoints;  // address, TCP port
  bool operator==(const ApiServerEndpoints&) const = default;
};

// The NetworkPolicy of a CodexProxy's pods (spec.networkPolicy), or nullopt when not enabled:
// ingress to the API port from apiFrom, to the ops port from metricsFrom (the node's own traffic,
// the kubelet's probes, is allowed by NetworkPolicy itself); egress to DNS, to the API server and
// to the model provider (egressTo), nothing else. Pure.
std::optional<DesiredObject> render_network_policy(const CodexProxy& proxy,
                                                   const ApiServerEndpoints& api_server);

// The Prometheus Operator ServiceMonitor of a CodexProxy's pods (spec.metrics.serviceMonitor), or
// nullopt when not asked for. Only applied where the monitoring.coreos.com/v1 API exists. Pure.
std::optional<DesiredObject> render_service_monitor(const CodexProxy& proxy);

// The HorizontalPodAutoscaler of a CodexProxy (spec.autoscaling), or nullopt when not enabled: it
// scales the CodexProxy through its scale subresource on the average turns in flight per pod
// (kAutoscalingMetric, a Pods metric of the custom metrics API), aiming at targetInFlightPerPod or
// targetUtilization % of worker.maxConcurrency. Pure.
std::optional<DesiredObject> render_autoscaler(const CodexProxy& proxy);
// The average turns in flight per pod the autoscaler aims at, as a Kubernetes quantity ("2800m")
// and as a decimal ("2.8", KEDA's threshold).
std::string autoscaling_target(const CodexProxySpec& spec);
std::string autoscaling_target_decimal(const CodexProxySpec& spec);
// The KEDA ScaledObject of a CodexProxy (spec.autoscaling with engine KEDA), or nullopt: KEDA's
// Prometheus trigger on the pods' summed codex_turns_in_flight (AverageValue: per pod), the same
// bounds, target and behavior as the HPA would have. Only applied where keda.sh/v1alpha1 is
// served. Pure.
std::optional<DesiredObject> render_scaled_object(const CodexProxy& proxy);

}  // namespace cxp::controller
