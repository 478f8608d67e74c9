#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/settings_table.h"

namespace cxp::controller {

// A key of a Secret in the CodexProxy's namespace; empty name: not set.
struct SecretKeyRef {
  std::string name;
  std::string key;
};

// Where the worker's model is (a codex custom provider); empty base URL: not set.
struct ProviderSpec {
  std::string name;
  std::string base_url;
  std::string wire_api = "responses";
  std::string env_key;  // empty: OPENAI_API_KEY
};

// The worker's model credential: an API key (into the provider's env_key variable) or a ChatGPT
// login's auth.json (mounted read-only, copied into CODEX_HOME by the proxy).
struct WorkerCredentials {
  SecretKeyRef api_key{"", "apiKey"};
  SecretKeyRef auth_json{"", "auth.json"};
};

struct ProbeTiming {
  std::int32_t period_seconds;
  std::int32_t failure_threshold;
};

// Where and how the pods run, and the objects around them: Kubernetes types passed through as
// given (the CRD embeds their schemas, the API server validates them); null means not set.
struct PodTemplateSpec {
  nlohmann::json resources;        // null: default_resources()
  nlohmann::json node_selector;    // object
  nlohmann::json affinity;         // object
  nlohmann::json tolerations;      // array
  nlohmann::json topology_spread;  // array; null: over nodes and zones, [] : no spreading
  std::string priority_class_name;
  nlohmann::json image_pull_secrets;  // array of {name}
  std::string image_pull_policy;      // empty: Kubernetes' default
  nlohmann::json pod_labels;          // object of strings (never the operator's own labels)
  nlohmann::json pod_annotations;     // object of strings
  nlohmann::json service_account_annotations;
  std::string service_type = "ClusterIP";
  std::int32_t service_port = 11435;
  nlohmann::json service_annotations;
  nlohmann::json disruption_budget;  // {maxUnavailable} or {minAvailable}; null: maxUnavailable 1
};

// spec.networkPolicy: who may reach which port of the pods, and where the pods may go. Peers are
// NetworkPolicyPeer objects passed through as given (the CRD bounds their schema).
struct NetworkPolicySpec {
  bool enabled = false;
  nlohmann::json api_from = nlohmann::json::array();      // peers of the API port
  nlohmann::json metrics_from = nlohmann::json::array();  // peers of the ops port
  std::vector<std::string> model_cidrs;                   // egressTo.modelCIDRs
  bool all_https = false;                                 // egressTo.allHTTPS
  std::vector<std::int32_t> model_ports{443};             // egressTo.ports
};

// spec.autoscaling: a HorizontalPodAutoscaler that scales the CodexProxy (its scale subresource,
// spec.replicas) on the pods' turns in flight (codex_turns_in_flight, served by the custom
// metrics API). `behavior` is the HPA's own, passed through.
struct AutoscalingSpec {
  bool enabled = false;
  std::int32_t min_replicas = 1;
  std::int32_t max_replicas = 0;              // required when enabled
  std::int32_t target_in_flight_per_pod = 0;  // 0: from target_utilization
  std::int32_t target_utilization = 0;        // % of worker.maxConcurrency; 0 with no target: 70
  nlohmann::json behavior;                    // null: the HPA's defaults
  // "HPA": the operator's HorizontalPodAutoscaler on the custom metrics API; "KEDA": a KEDA
  // ScaledObject whose Prometheus trigger queries prometheus_address (KEDA makes the HPA).
  std::string engine = "HPA";
  std::string prometheus_address;  // engine KEDA: the Prometheus server KEDA queries
};
inline constexpr std::int32_t kDefaultTargetUtilization = 70;
// The per-pod metric an autoscaler scales on (a gauge of every proxy pod).
inline constexpr const char* kAutoscalingMetric = "codex_turns_in_flight";

// A CodexProxy's spec with the CRD's defaults filled in (the API server defaults them too; the
// controller does not rely on it).
struct CodexProxySpec {
  std::int32_t replicas = settings::kReplicas.default_value;
  std::string image;
  std::string model = "gpt-5";
  std::int32_t max_concurrency = settings::kMaxConcurrency.default_value;
  std::int32_t request_timeout_seconds = settings::kRequestTimeoutSeconds.default_value;
  std::int32_t backoff_initial_ms = settings::kBackoffInitialMs.default_value;
  std::int32_t backoff_max_ms = settings::kBackoffMaxMs.default_value;
  std::int32_t drain_seconds = settings::kDrainSeconds.default_value;
  std::int32_t max_turns = settings::kMaxTurns.default_value;   // WORKER_MAX_TURNS
  std::int32_t max_rss_mb = settings::kMaxRssMb.default_value;  // WORKER_MAX_RSS_MB
  WorkerCredentials credentials;
  ProviderSpec provider;
  std::map<std::string, std::string> config_overrides;  // codex `-c key=value`, sorted by key
  bool builtin_tools = false;  // codex's own tools (shell, web search, …) offered to the model
  // The model's instructions for requests without a system message (WORKER_DEFAULT_INSTRUCTIONS);
  // empty: none.
  std::string default_instructions;
  ProbeTiming readiness{settings::kReadinessPeriod.default_value,
                        settings::kReadinessFailures.default_value};
  ProbeTiming liveness{settings::kLivenessPeriod.default_value,
                       settings::kLivenessFailures.default_value};
  ProbeTiming startup{settings::kStartupPeriod.default_value,
                      settings::kStartupFailures.default_value};
  bool maintenance_enabled = false;
  std::int32_t maintenance_retry_after_seconds = settings::kRetryAfterSeconds.default_value;
  bool trace_enabled = false;
  std::int32_t trace_ttl_seconds = settings::kTraceTtlSeconds.default_value;
  std::int32_t trace_max_files = settings::kTraceMaxFiles.default_value;
  bool metrics_enabled = true;
  SecretKeyRef metrics_token_secret{"", "metricsToken"};  // PROXY_METRICS_TOKEN
  bool service_monitor_enabled = false;
  std::string service_monitor_interval = "30s";
  nlohmann::json service_monitor_labels;  // object of strings
  SecretKeyRef api_key_secret{"", "apiKey"};
  // spec.auth.apiKeysSecret: the callers' named keys with their limits and models
  // (PROXY_API_KEYS_FILE, a Secret volume the pods re-read).
  SecretKeyRef api_keys_secret{"", "keys.yaml"};
  SecretKeyRef admin_token_secret{"", "adminToken"};
  PodTemplateSpec pod;
  NetworkPolicySpec network_policy;
  AutoscalingSpec autoscaling;
};

// The parts of a CodexProxy object the controller works from.
struct CodexProxy {
  std::string name;
  std::string namespace_name;
  std::string uid;
  std::int64_t generation = 0;
  CodexProxySpec spec;
  nlohmann::json status = nlohmann::json::object();
};

// Reads a CodexProxy object. Fields of the wrong type count as problems, not exceptions.
CodexProxy parse_codexproxy(const nlohmann::json& object, std::vector<std::string>& problems);

// What only the controller can judge (the CRD schema and CEL rules refuse the rest): each problem
// names the field, what was found and what was expected. Empty when the spec is usable.
std::vector<std::string> validate_spec(const CodexProxySpec& spec);

// Every Secret key the pods need, with the spec field that names it (for CredentialsMissing).
struct SecretUse {
  std::string field;  // e.g. "spec.worker.credentials.apiKeySecret"
  SecretKeyRef ref;
};
std::vector<SecretUse> referenced_secrets(const CodexProxySpec& spec);

// What the spec leaves open to anyone who reaches a pod, each naming the field, in one message
// (the InsecureConfig condition and a Warning Event; the pods log and export the same at start).
// Empty when nothing is open.
std::string insecure_defaults_message(const CodexProxySpec& spec);

// True when `reference` is a well-formed container image reference:
// [host[:port]/]path[:tag][@algorithm:hex] with the distribution grammar's character rules.
bool is_valid_image_reference(const std::string& reference);

}  // namespace cxp::controller
