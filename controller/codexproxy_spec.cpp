#include "controller/codexproxy_spec.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <regex>

#include "common/codex_config.h"
#include "common/json_fields.h"
#include "common/utf8.h"

namespace cxp::controller {
namespace {

using nlohmann::json;

// Reads `object[key]` into `out` when present; a value of the wrong type becomes a problem.
template <typename T>
void read(const json& object, const char* key, T& out, const std::string& path,
          std::vector<std::string>& problems) {
  if (!object.is_object()) return;
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) return;
  bool ok = false;
  if constexpr (std::is_same_v<T, bool>) {
    ok = found->is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    ok = found->is_string();
  } else {
    // An integer that fits: a float (7.7e96) or a huge number is a problem, not a conversion.
    static_assert(std::is_integral_v<T>);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<T>::max());
    constexpr auto kMin = static_cast<std::int64_t>(std::numeric_limits<T>::min());
    if (found->is_number_unsigned()) {
      ok = found->get<std::uint64_t>() <= kMax;
    } else if (found->is_number_integer()) {
      const auto value = found->get<std::int64_t>();
      ok = value >= kMin && (value < 0 || static_cast<std::uint64_t>(value) <= kMax);
    }
  }
  if (ok) {
    out = found->get<T>();
    return;
  }
  problems.push_back(path + "." + key + ": expected " +
                     (std::is_same_v<T, bool>          ? "a boolean"
                      : std::is_same_v<T, std::string> ? "a string"
                                                       : "an integer in range") +
                     ", found " +
                     utf8_prefix(found->dump(-1, ' ', false, json::error_handler_t::replace), 64));
}

// Reads a Kubernetes-typed field (an object or an array) as it is; another type is a problem.
void read_raw(const json& object, const char* key, json::value_t type, json& out,
              const std::string& path, std::vector<std::string>& problems) {
  if (!object.is_object()) return;
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) return;
  if (found->type() == type) {
    out = *found;
    return;
  }
  problems.push_back(path + "." + key + ": expected " +
                     (type == json::value_t::array ? "a list" : "an object") + ", found " +
                     utf8_prefix(found->dump(-1, ' ', false, json::error_handler_t::replace), 64));
}

const json& child(const json& object, const char* key) {
  static const json kEmpty = json::object();
  if (!object.is_object()) return kEmpty;
  const auto found = object.find(key);
  return found != object.end() && found->is_object() ? *found : kEmpty;
}

void read_probe(const json& probes, const char* key, ProbeTiming& timing,
                std::vector<std::string>& problems) {
  const auto& probe = child(probes, key);
  const std::string path = std::string("spec.probes.") + key;
  read(probe, "periodSeconds", timing.period_seconds, path, problems);
  read(probe, "failureThreshold", timing.failure_threshold, path, problems);
}

void read_secret_ref(const json& parent, const char* key, SecretKeyRef& ref,
                     const std::string& path, std::vector<std::string>& problems) {
  const auto& object = child(parent, key);
  read(object, "name", ref.name, path + "." + key, problems);
  read(object, "key", ref.key, path + "." + key, problems);
}

void read_worker_model(const json& worker, CodexProxySpec& out,
                       std::vector<std::string>& problems) {
  read_secret_ref(child(worker, "credentials"), "apiKeySecret", out.credentials.api_key,
                  "spec.worker.credentials", problems);
  read_secret_ref(child(worker, "credentials"), "authJsonSecret", out.credentials.auth_json,
                  "spec.worker.credentials", problems);
  const auto& provider = child(worker, "provider");
  read(provider, "name", out.provider.name, "spec.worker.provider", problems);
  read(provider, "baseURL", out.provider.base_url, "spec.worker.provider", problems);
  read(provider, "wireAPI", out.provider.wire_api, "spec.worker.provider", problems);
  read(provider, "envKey", out.provider.env_key, "spec.worker.provider", problems);
  read(worker, "builtinTools", out.builtin_tools, "spec.worker", problems);
  read(worker, "defaultInstructions", out.default_instructions, "spec.worker", problems);
  for (const auto& [key, value] : child(worker, "configOverrides").items()) {
    if (!value.is_string()) {
      problems.push_back("spec.worker.configOverrides." + key +
                         ": expected a string (TOML text; quote numbers and booleans), found " +
                         value.dump());
      continue;
    }
    out.config_overrides[key] = value.get<std::string>();
  }
}

void read_pod_template(const json& spec, PodTemplateSpec& out, std::vector<std::string>& problems) {
  constexpr auto kObject = json::value_t::object;
  constexpr auto kArray = json::value_t::array;
  read_raw(spec, "resources", kObject, out.resources, "spec", problems);
  read_raw(spec, "nodeSelector", kObject, out.node_selector, "spec", problems);
  read_raw(spec, "affinity", kObject, out.affinity, "spec", problems);
  read_raw(spec, "tolerations", kArray, out.tolerations, "spec", problems);
  read_raw(spec, "topologySpreadConstraints", kArray, out.topology_spread, "spec", problems);
  read(spec, "priorityClassName", out.priority_class_name, "spec", problems);
  read_raw(spec, "imagePullSecrets", kArray, out.image_pull_secrets, "spec", problems);
  read(spec, "imagePullPolicy", out.image_pull_policy, "spec", problems);
  read_raw(spec, "podLabels", kObject, out.pod_labels, "spec", problems);
  read_raw(spec, "podAnnotations", kObject, out.pod_annotations, "spec", problems);
  read_raw(spec, "serviceAccountAnnotations", kObject, out.service_account_annotations, "spec",
           problems);
  const auto& service = child(spec, "service");
  read(service, "type", out.service_type, "spec.service", problems);
  read(service, "port", out.service_port, "spec.service", problems);
  read_raw(service, "annotations", kObject, out.service_annotations, "spec.service", problems);
  read_raw(spec, "disruptionBudget", kObject, out.disruption_budget, "spec", problems);
}

void read_network_policy(const json& spec, NetworkPolicySpec& out,
                         std::vector<std::string>& problems) {
  const auto& policy = child(spec, "networkPolicy");
  const std::string where = "spec.networkPolicy";
  read(policy, "enabled", out.enabled, where, problems);
  read_raw(policy, "apiFrom", json::value_t::array, out.api_from, where, problems);
  read_raw(policy, "metricsFrom", json::value_t::array, out.metrics_from, where, problems);
  if (out.api_from.is_null()) out.api_from = json::array();
  if (out.metrics_from.is_null()) out.metrics_from = json::array();
  const auto& egress = child(policy, "egressTo");
  read(egress, "allHTTPS", out.all_https, where + ".egressTo", problems);
  for (const auto& cidr : egress.value("modelCIDRs", json::array())) {
    if (cidr.is_string()) out.model_cidrs.push_back(cidr.get<std::string>());
  }
  if (egress.contains("ports") && egress["ports"].is_array()) {
    out.model_ports.clear();
    for (const auto& port : egress["ports"]) {
      if (port.is_number_integer()) out.model_ports.push_back(port.get<std::int32_t>());
    }
  }
}

void read_autoscaling(const json& spec, AutoscalingSpec& out, std::vector<std::string>& problems) {
  const auto& autoscaling = child(spec, "autoscaling");
  const std::string where = "spec.autoscaling";
  read(autoscaling, "enabled", out.enabled, where, problems);
  read(autoscaling, "minReplicas", out.min_replicas, where, problems);
  read(autoscaling, "maxReplicas", out.max_replicas, where, problems);
  read(autoscaling, "targetInFlightPerPod", out.target_in_flight_per_pod, where, problems);
  read(autoscaling, "targetUtilization", out.target_utilization, where, problems);
  read_raw(autoscaling, "behavior", json::value_t::object, out.behavior, where, problems);
  read(autoscaling, "engine", out.engine, where, problems);
  read(child(autoscaling, "keda"), "prometheusAddress", out.prometheus_address, where + ".keda",
       problems);
}

}  // namespace

std::string insecure_defaults_message(const CodexProxySpec& spec) {
  std::string message;
  const auto add = [&](const char* open) {
    message += (message.empty() ? "" : "; ") + std::string(open);
  };
  if (spec.api_key_secret.name.empty() && spec.api_keys_secret.name.empty()) {
    add("neither spec.auth.apiKeysSecret nor spec.apiKeySecret is set: /v1/* accept any caller");
  }
  if (spec.admin_token_secret.name.empty()) {
    add("spec.adminTokenSecret is not set: the pods' /internal/maintenance answers 404");
  }
  if (spec.metrics_enabled && spec.metrics_token_secret.name.empty()) {
    add("spec.metrics.enabled without spec.metrics.tokenSecret: /metrics answer anyone who "
        "reaches a pod");
  }
  return message.empty() ? message : message + " (docs/security.md)";
}

std::vector<SecretUse> referenced_secrets(const CodexProxySpec& spec) {
  std::vector<SecretUse> out;
  const std::pair<const char*, const SecretKeyRef*> all[] = {
      {"spec.apiKeySecret", &spec.api_key_secret},
      {"spec.auth.apiKeysSecret", &spec.api_keys_secret},
      {"spec.adminTokenSecret", &spec.admin_token_secret},
      {"spec.worker.credentials.apiKeySecret", &spec.credentials.api_key},
      {"spec.worker.credentials.authJsonSecret", &spec.credentials.auth_json}};
  for (const auto& [field, ref] : all) {
    if (!ref->name.empty()) out.push_back({field, *ref});
  }
  if (spec.metrics_enabled && !spec.metrics_token_secret.name.empty()) {
    out.push_back({"spec.metrics.tokenSecret", spec.metrics_token_secret});
  }
  return out;
}

CodexProxy parse_codexproxy(const json& object, std::vector<std::string>& problems) {
  CodexProxy proxy;
  const auto& metadata = child(object, "metadata");
  proxy.name = string_field(metadata, "name");
  proxy.namespace_name = string_field(metadata, "namespace");
  proxy.uid = string_field(metadata, "uid");
  proxy.generation = int_field(metadata, "generation", 0);
  if (object.contains("status") && object["status"].is_object()) proxy.status = object["status"];
  const auto& spec = child(object, "spec");
  auto& out = proxy.spec;
  read(spec, "replicas", out.replicas, "spec", problems);
  read(spec, "image", out.image, "spec", problems);
  const auto& worker = child(spec, "worker");
  read(worker, "model", out.model, "spec.worker", problems);
  read(worker, "maxConcurrency", out.max_concurrency, "spec.worker", problems);
  read(worker, "requestTimeoutSeconds", out.request_timeout_seconds, "spec.worker", problems);
  read(worker, "drainSeconds", out.drain_seconds, "spec.worker", problems);
  read(worker, "maxTurns", out.max_turns, "spec.worker", problems);
  read(worker, "maxRssMB", out.max_rss_mb, "spec.worker", problems);
  read_worker_model(worker, out, problems);
  const auto& backoff = child(worker, "backoff");
  read(backoff, "initialMs", out.backoff_initial_ms, "spec.worker.backoff", problems);
  read(backoff, "maxMs", out.backoff_max_ms, "spec.worker.backoff", problems);
  const auto& probes = child(spec, "probes");
  read_probe(probes, "readiness", out.readiness, problems);
  read_probe(probes, "liveness", out.liveness, problems);
  read_probe(probes, "startup", out.startup, problems);
  const auto& maintenance = child(spec, "maintenance");
  read(maintenance, "enabled", out.maintenance_enabled, "spec.maintenance", problems);
  read(maintenance, "retryAfterSeconds", out.maintenance_retry_after_seconds, "spec.maintenance",
       problems);
  const auto& trace = child(spec, "traceBuffer");
  read(trace, "enabled", out.trace_enabled, "spec.traceBuffer", problems);
  read(trace, "ttlSeconds", out.trace_ttl_seconds, "spec.traceBuffer", problems);
  read(trace, "maxFiles", out.trace_max_files, "spec.traceBuffer", problems);
  const auto& metrics = child(spec, "metrics");
  read(metrics, "enabled", out.metrics_enabled, "spec.metrics", problems);
  read_secret_ref(metrics, "tokenSecret", out.metrics_token_secret, "spec.metrics", problems);
  const auto& monitor = child(metrics, "serviceMonitor");
  read(monitor, "enabled", out.service_monitor_enabled, "spec.metrics.serviceMonitor", problems);
  read(monitor, "interval", out.service_monitor_interval, "spec.metrics.serviceMonitor", problems);
  read_raw(monitor, "labels", json::value_t::object, out.service_monitor_labels,
           "spec.metrics.serviceMonitor", problems);
  read_secret_ref(spec, "apiKeySecret", out.api_key_secret, "spec", problems);
  read_secret_ref(child(spec, "auth"), "apiKeysSecret", out.api_keys_secret, "spec.auth", problems);
  read_secret_ref(spec, "adminTokenSecret", out.admin_token_secret, "spec", problems);
  read_pod_template(spec, out.pod, problems);
  read_network_policy(spec, out.network_policy, problems);
  read_autoscaling(spec, out.autoscaling, problems);
  return proxy;
}

bool is_valid_image_reference(const std::string& reference) {
  // The distribution reference grammar, simplified: lower-case path components separated by
  // [._-] runs, an optional registry host with port, tag of [\w][\w.-]{0,127}, optional digest.
  static const std::regex kReference(
      R"(^((([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:]+\])(:[0-9]+)?/)?)"
      R"([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*)"
      R"((:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$)");
  return reference.size() <= 512 && std::regex_match(reference, kReference);
}

std::vector<std::string> validate_spec(const CodexProxySpec& spec) {
  std::vector<std::string> problems;
  if (!is_valid_image_reference(spec.image)) {
    problems.push_back("spec.image: '" + spec.image.substr(0, 128) +
                       "' is not a valid image reference (expected [registry/]repository[:tag]"
                       "[@digest], repository in lower case)");
  }
  const auto& provider = spec.provider;
  if (!provider.base_url.empty() && !is_http_url(provider.base_url)) {
    problems.push_back("spec.worker.provider.baseURL: '" + provider.base_url.substr(0, 128) +
                       "' is not an http(s) URL with a host");
  }
  if (provider.wire_api != "responses") {
    problems.push_back("spec.worker.provider.wireAPI: '" + provider.wire_api.substr(0, 64) +
                       "' is not supported (codex speaks only 'responses')");
  }
  if (!provider.env_key.empty() &&
      (!is_env_var_name(provider.env_key) || is_reserved_env_var(provider.env_key))) {
    problems.push_back("spec.worker.provider.envKey: '" + provider.env_key.substr(0, 128) +
                       "' is not usable (expected [A-Za-z_][A-Za-z0-9_]*, not a variable of "
                       "codex-proxy such as PROXY_*, WORKER_*, CODEX_*, POD_*)");
  }
  if (!spec.credentials.api_key.name.empty() && !spec.credentials.auth_json.name.empty()) {
    problems.push_back("spec.worker.credentials: set apiKeySecret or authJsonSecret, not both");
  }
  if (spec.config_overrides.size() > 64) {
    problems.push_back("spec.worker.configOverrides: " +
                       std::to_string(spec.config_overrides.size()) + " keys; at most 64");
  }
  for (const auto& [key, value] : spec.config_overrides) {
    const bool control = std::any_of(value.begin(), value.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 && c != '\t';
    });
    if (!is_codex_config_key(key) || value.empty() || value.size() > 4096 || control) {
      problems.push_back("spec.worker.configOverrides." + key.substr(0, 128) +
                         ": expected a dotted key of [A-Za-z0-9_-] and a one-line value of 1-4096 "
                         "characters");
    }
  }
  if (spec.backoff_initial_ms > spec.backoff_max_ms) {
    problems.push_back("spec.worker.backoff: initialMs " + std::to_string(spec.backoff_initial_ms) +
                       " is greater than maxMs " + std::to_string(spec.backoff_max_ms));
  }
  // The CRD refuses these too (CEL); an object stored before the rules still gets a clear word.
  const auto& policy = spec.network_policy;
  if (policy.enabled && policy.api_from.empty()) {
    problems.push_back(
        "spec.networkPolicy.apiFrom: list at least one peer when enabled (an empty list would "
        "admit no caller)");
  }
  if (policy.enabled && policy.model_cidrs.empty() == !policy.all_https) {
    problems.push_back(
        "spec.networkPolicy.egressTo: set modelCIDRs (at least one) or allHTTPS: true, not both");
  }
  const auto& autoscaling = spec.autoscaling;
  if (autoscaling.enabled) {
    if (autoscaling.max_replicas < 1) {
      problems.push_back("spec.autoscaling.maxReplicas: required (at least 1) when enabled");
    } else if (autoscaling.min_replicas > autoscaling.max_replicas) {
      problems.push_back(
          "spec.autoscaling.minReplicas " + std::to_string(autoscaling.min_replicas) +
          " is greater than maxReplicas " + std::to_string(autoscaling.max_replicas));
    }
    if (autoscaling.min_replicas < 1) {
      problems.push_back("spec.autoscaling.minReplicas: at least 1");
    }
    if (autoscaling.target_in_flight_per_pod < 0 || autoscaling.target_utilization < 0 ||
        autoscaling.target_utilization > 100) {
      problems.push_back(
          "spec.autoscaling: targetInFlightPerPod must be at least 1 and targetUtilization 1-100");
    }
    if (autoscaling.target_in_flight_per_pod > 0 && autoscaling.target_utilization > 0) {
      problems.push_back(
          "spec.autoscaling: set targetInFlightPerPod or targetUtilization, not both");
    }
    if (autoscaling.engine != "HPA" && autoscaling.engine != "KEDA") {
      problems.push_back("spec.autoscaling.engine: HPA or KEDA, found '" +
                         autoscaling.engine.substr(0, 32) + "'");
    }
    if (autoscaling.engine == "KEDA" && autoscaling.prometheus_address.empty()) {
      problems.push_back(
          "spec.autoscaling.keda.prometheusAddress: required with engine KEDA (the Prometheus "
          "server KEDA's trigger queries)");
    }
    if (spec.replicas == 0) {
      problems.push_back(
          "spec.replicas 0 with spec.autoscaling.enabled: an autoscaler never scales a target at "
          "0 replicas (turn autoscaling off to scale to zero)");
    }
  }
  return problems;
}

}  // namespace cxp::controller
