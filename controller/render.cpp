#include "controller/render.h"

#include <algorithm>
#include <cstdio>

namespace cxp::controller {
namespace {

using nlohmann::json;
namespace res = kube::resources;

json owner_reference(const CodexProxy& proxy) {
  return json::array({{{"apiVersion", res::kCodexProxies.api_version()},
                       {"kind", res::kCodexProxies.kind},
                       {"name", proxy.name},
                       {"uid", proxy.uid},
                       {"controller", true},
                       {"blockOwnerDeletion", true}}});
}

json metadata(const CodexProxy& proxy, const std::string& name) {
  return {{"name", name},
          {"namespace", proxy.namespace_name},
          {"labels", common_labels(proxy.name)},
          {"ownerReferences", owner_reference(proxy)}};
}

json object(const kube::Resource& resource, const CodexProxy& proxy, const std::string& name) {
  return {{"apiVersion", resource.api_version()},
          {"kind", resource.kind},
          {"metadata", metadata(proxy, name)}};
}

json env_value(const char* name, const std::string& value) {
  return {{"name", name}, {"value", value}};
}

json env_field(const char* name, const char* field_path) {
  return {{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", field_path}}}}}};
}

json env_secret(const char* name, const SecretKeyRef& ref) {
  return {{"name", name},
          {"valueFrom", {{"secretKeyRef", {{"name", ref.name}, {"key", ref.key}}}}}};
}

json http_probe(const char* path, const ProbeTiming& timing) {
  return {{"httpGet", {{"path", path}, {"port", "ops"}}},
          {"periodSeconds", timing.period_seconds},
          {"failureThreshold", timing.failure_threshold},
          {"timeoutSeconds", 2}};
}

std::string fnv1a_hex(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

void stamp_desired_hash(json& object) {
  object["metadata"]["annotations"][kDesiredHashAnnotation] = fnv1a_hex(object.dump());
}

// A credential the pods read from a Secret volume: the variable naming the file, the volume (also
// the file's name inside it) and the Secret key.
struct CredentialFile {
  const char* variable;
  const char* volume;
  const SecretKeyRef* ref;
};

std::vector<CredentialFile> credential_files(const CodexProxySpec& spec) {
  std::vector<CredentialFile> out;
  const CredentialFile all[] = {
      {"PROXY_API_KEYS_FILE", "api-keys", &spec.api_keys_secret},
      {"PROXY_API_KEY_FILE", "api-key", &spec.api_key_secret},
      {"PROXY_ADMIN_TOKEN_FILE", "admin-token", &spec.admin_token_secret},
      {"PROXY_METRICS_TOKEN_FILE", "metrics-token", &spec.metrics_token_secret}};
  for (const auto& file : all) {
    if (file.ref->name.empty()) continue;
    if (file.ref == &spec.metrics_token_secret && !spec.metrics_enabled) continue;
    out.push_back(file);
  }
  return out;
}

// The pod's part of the worker's model: provider settings, the credential (an env var from a
// Secret key, or a read-only auth.json mount) and codex config overrides.
struct WorkerModelPod {
  json env = json::array();
  json volumes = json::array();
  json mounts = json::array();
};

WorkerModelPod render_worker_model(const CodexProxySpec& spec) {
  WorkerModelPod out;
  const auto& provider = spec.provider;
  const auto& credentials = spec.credentials;
  const std::string key_variable =
      provider.env_key.empty() ? kDefaultModelKeyVariable : provider.env_key;
  // An API key without a provider means OpenAI's own API; a ChatGPT login without a provider
  // means codex's built-in provider (no provider flags at all).
  const std::string base_url = !provider.base_url.empty()          ? provider.base_url
                               : !credentials.api_key.name.empty() ? kOpenAiBaseUrl
                                                                   : "";
  if (!base_url.empty()) {
    out.env.push_back(env_value("WORKER_PROVIDER_BASE_URL", base_url));
    out.env.push_back(env_value("WORKER_PROVIDER_WIRE_API", provider.wire_api));
    out.env.push_back(env_value("WORKER_PROVIDER_ENV_KEY", key_variable));
    if (!provider.name.empty()) out.env.push_back(env_value("WORKER_PROVIDER_NAME", provider.name));
  }
  if (!credentials.api_key.name.empty()) {
    out.env.push_back(env_secret(key_variable.c_str(), credentials.api_key));
  }
  if (!credentials.auth_json.name.empty()) {
    out.env.push_back(
        env_value("WORKER_AUTH_JSON", std::string(kCodexAuthMountPath) + "/auth.json"));
    out.volumes.push_back(
        {{"name", "codex-auth"},
         {"secret",
          {{"secretName", credentials.auth_json.name},
           {"items", json::array({{{"key", credentials.auth_json.key}, {"path", "auth.json"}}})},
           {"defaultMode", 0440}}}});
    out.mounts.push_back(
        {{"name", "codex-auth"}, {"mountPath", kCodexAuthMountPath}, {"readOnly", true}});
  }
  if (spec.builtin_tools) out.env.push_back(env_value("WORKER_BUILTIN_TOOLS", "true"));
  if (!spec.default_instructions.empty()) {
    out.env.push_back(env_value("WORKER_DEFAULT_INSTRUCTIONS", spec.default_instructions));
  }
  out.env.push_back(env_value("WORKER_MAX_TURNS", std::to_string(spec.max_turns)));
  out.env.push_back(env_value("WORKER_MAX_RSS_MB", std::to_string(spec.max_rss_mb)));
  if (!spec.config_overrides.empty()) {
    std::string lines;
    for (const auto& [key, value] : spec.config_overrides) lines += key + "=" + value + "\n";
    out.env.push_back(env_value("WORKER_CONFIG_OVERRIDES", lines));
  }
  return out;
}

json render_deployment(const CodexProxy& proxy) {
  const auto& spec = proxy.spec;
  json env = json::array({
      env_value("PORT", std::to_string(kProxyPort)),
      env_value("PROXY_OPS_PORT", std::to_string(kProxyOpsPort)),
      env_value("PROXY_HOST", "0.0.0.0"),
      env_value("CODEX_MODEL", spec.model),
      env_value("CODEX_HOME", "/var/lib/codex"),
      env_value("WORKER_MAX_CONCURRENCY", std::to_string(spec.max_concurrency)),
      env_value("WORKER_REQUEST_TIMEOUT_MS", std::to_string(spec.request_timeout_seconds * 1000LL)),
      env_value("WORKER_BACKOFF_INITIAL_MS", std::to_string(spec.backoff_initial_ms)),
      env_value("WORKER_BACKOFF_MAX_MS", std::to_string(spec.backoff_max_ms)),
      env_value("WORKER_SHUTDOWN_GRACE_MS", std::to_string(spec.drain_seconds * 1000LL)),
      env_value("PROXY_ENABLE_METRICS", spec.metrics_enabled ? "true" : "false"),
      env_value("PROXY_TRACE_DIR", "/var/lib/codexproxy/trace"),
      env_value("CODEXPROXY_NAME", proxy.name),
      env_field("POD_NAME", "metadata.name"),
      env_field("POD_NAMESPACE", "metadata.namespace"),
      env_field("POD_UID", "metadata.uid"),
  });
  const auto model = render_worker_model(spec);
  for (const auto& entry : model.env) env.push_back(entry);
  json mounts = json::array({{{"name", "codex-home"}, {"mountPath", "/var/lib/codex"}},
                             {{"name", "trace"}, {"mountPath", "/var/lib/codexproxy"}},
                             {{"name", "tmp"}, {"mountPath", "/tmp"}}});
  for (const auto& mount : model.mounts) mounts.push_back(mount);
  json volumes = json::array({{{"name", "codex-home"}, {"emptyDir", json::object()}},
                              {{"name", "trace"}, {"emptyDir", json::object()}},
                              {{"name", "tmp"}, {"emptyDir", json::object()}}});
  for (const auto& volume : model.volumes) volumes.push_back(volume);
  // The callers' keys and the operator tokens: Secret volumes, never env, so that the pods re-read
  // them when the Secret changes (the kubelet swaps the files) — a rotation restarts nothing.
  for (const auto& file : credential_files(spec)) {
    env.push_back(env_value(
        file.variable, std::string(kCredentialsMountRoot) + "/" + file.volume + "/" + file.volume));
    volumes.push_back({{"name", file.volume},
                       {"secret",
                        {{"secretName", file.ref->name},
                         {"items", json::array({{{"key", file.ref->key}, {"path", file.volume}}})},
                         {"defaultMode", 0440}}}});
    mounts.push_back({{"name", file.volume},
                      {"mountPath", std::string(kCredentialsMountRoot) + "/" + file.volume},
                      {"readOnly", true}});
  }
  json container = {
      {"name", "codex-proxy"},
      {"image", spec.image},
      {"ports", json::array({{{"name", "http"}, {"containerPort", kProxyPort}},
                             {{"name", "ops"}, {"containerPort", kProxyOpsPort}}})},
      {"env", env},
      {"readinessProbe", http_probe("/readyz", spec.readiness)},
      {"livenessProbe", http_probe("/livez", spec.liveness)},
      // The worker's first handshake (/readyz): until then liveness and readiness wait; a worker
      // that never starts within period × failureThreshold gets its container restarted.
      {"startupProbe", http_probe("/readyz", spec.startup)},
      // Keep serving while the endpoint is removed from Services and load balancers, then drain.
      {"lifecycle",
       {{"preStop",
         {{"exec", {{"command", json::array({"/bin/sleep", std::to_string(kPreStopSeconds)})}}}}}}},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"readOnlyRootFilesystem", true},
        {"runAsNonRoot", true},
        {"capabilities", {{"drop", json::array({"ALL"})}}}}},
      {"volumeMounts", mounts},
      {"resources", spec.pod.resources.is_null() ? default_resources() : spec.pod.resources},
  };
  if (!spec.pod.image_pull_policy.empty()) {
    container["imagePullPolicy"] = spec.pod.image_pull_policy;
  }
  json pod_spec = {
      {"serviceAccountName", proxy.name},
      // preStop, drain, then the supervisor's SIGTERM → SIGKILL escalation (3 s), plus slack
      {"terminationGracePeriodSeconds", termination_grace_seconds(spec)},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", 65532},
        {"runAsGroup", 65532},
        {"fsGroup", 65532},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"containers", json::array({container})},
      {"volumes", volumes},
      {"topologySpreadConstraints", spec.pod.topology_spread.is_null()
                                        ? default_topology_spread(proxy.name)
                                        : spec.pod.topology_spread},
  };
  const std::pair<const char*, const json*> passed_through[] = {
      {"nodeSelector", &spec.pod.node_selector},
      {"affinity", &spec.pod.affinity},
      {"tolerations", &spec.pod.tolerations},
      {"imagePullSecrets", &spec.pod.image_pull_secrets}};
  for (const auto& [field, value] : passed_through) {
    if (!value->is_null()) pod_spec[field] = *value;
  }
  if (!spec.pod.priority_class_name.empty()) {
    pod_spec["priorityClassName"] = spec.pod.priority_class_name;
  }
  // The user's labels and annotations first: the operator's own win (the CRD refuses them too).
  json labels = spec.pod.pod_labels.is_object() ? spec.pod.pod_labels : json::object();
  labels.update(common_labels(proxy.name));
  json annotations =
      spec.pod.pod_annotations.is_object() ? spec.pod.pod_annotations : json::object();
  annotations[kRestartHashAnnotation] = restart_hash(spec);
  auto deployment = object(res::kDeployments, proxy, proxy.name);
  deployment["spec"] = {
      {"replicas", spec.replicas},
      {"selector", {{"matchLabels", pod_selector(proxy.name)}}},
      {"template",
       {{"metadata", {{"labels", labels}, {"annotations", annotations}}}, {"spec", pod_spec}}},
  };
  return deployment;
}

json render_disruption_budget(const CodexProxy& proxy) {
  auto budget = object(res::kPodDisruptionBudgets, proxy, proxy.name);
  budget["spec"] = {{"selector", {{"matchLabels", pod_selector(proxy.name)}}}};
  const auto& configured = proxy.spec.pod.disruption_budget;
  if (configured.is_object() && configured.contains("minAvailable")) {
    budget["spec"]["minAvailable"] = configured["minAvailable"];
  } else if (configured.is_object() && configured.contains("maxUnavailable")) {
    budget["spec"]["maxUnavailable"] = configured["maxUnavailable"];
  } else {
    budget["spec"]["maxUnavailable"] = 1;
  }
  return budget;
}

}  // namespace

json default_resources() {
  return {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}}}, {"limits", {{"memory", "1536Mi"}}}};
}

json default_topology_spread(const std::string& proxy_name) {
  json out = json::array();
  for (const char* key : {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}) {
    out.push_back({{"maxSkew", 1},
                   {"topologyKey", key},
                   {"whenUnsatisfiable", "ScheduleAnyway"},
                   {"labelSelector", {{"matchLabels", pod_selector(proxy_name)}}},
                   {"matchLabelKeys", json::array({"pod-template-hash"})}});
  }
  return out;
}

std::optional<DesiredObject> render_service_monitor(const CodexProxy& proxy) {
  const auto& spec = proxy.spec;
  if (!spec.metrics_enabled || !spec.service_monitor_enabled) return std::nullopt;
  json endpoint = {
      {"port", "ops"},
      {"path", "/metrics"},
      {"interval", spec.service_monitor_interval},
      // Every series carries the CodexProxy's name (bounded: one value per CodexProxy), so alerts
      // and dashboards aggregate by (namespace, codexproxy).
      {"relabelings",
       json::array(
           {{{"action", "replace"},
             {"sourceLabels", json::array({"__meta_kubernetes_service_label_codexproxy_io_name"})},
             {"targetLabel", "codexproxy"}}})}};
  if (!spec.metrics_token_secret.name.empty()) {
    endpoint["authorization"] = {
        {"type", "Bearer"},
        {"credentials",
         {{"name", spec.metrics_token_secret.name}, {"key", spec.metrics_token_secret.key}}}};
  }
  auto monitor = object(res::kServiceMonitors, proxy, proxy.name);
  if (spec.service_monitor_labels.is_object()) {
    json labels = spec.service_monitor_labels;
    labels.update(monitor["metadata"]["labels"]);
    monitor["metadata"]["labels"] = labels;
  }
  monitor["spec"] = {{"selector", {{"matchLabels", pod_selector(proxy.name)}}},
                     {"endpoints", json::array({endpoint})}};
  stamp_desired_hash(monitor);
  return DesiredObject{res::kServiceMonitors, std::move(monitor)};
}

namespace {

// The target in thousandths of a turn: 70 % of 4 slots is 2800 (never below 1).
std::int64_t autoscaling_target_milli(const CodexProxySpec& spec) {
  const auto& autoscaling = spec.autoscaling;
  if (autoscaling.target_in_flight_per_pod > 0) {
    return std::int64_t{autoscaling.target_in_flight_per_pod} * 1000;
  }
  const auto percent = autoscaling.target_utilization > 0 ? autoscaling.target_utilization
                                                          : kDefaultTargetUtilization;
  return std::max<std::int64_t>(1, std::int64_t{percent} * spec.max_concurrency * 10);
}

// What an autoscaler scales: the CodexProxy, through its scale subresource (spec.replicas).
json scale_target_ref(const CodexProxy& proxy) {
  return {{"apiVersion", res::kCodexProxies.api_version()},
          {"kind", res::kCodexProxies.kind},
          {"name", proxy.name}};
}

}  // namespace

std::string autoscaling_target(const CodexProxySpec& spec) {
  const auto milli = autoscaling_target_milli(spec);
  return milli % 1000 == 0 ? std::to_string(milli / 1000) : std::to_string(milli) + "m";
}

std::string autoscaling_target_decimal(const CodexProxySpec& spec) {
  const auto milli = autoscaling_target_milli(spec);
  auto fraction = std::to_string(1000 + milli % 1000).substr(1);  // three digits
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  return std::to_string(milli / 1000) + (fraction.empty() ? "" : "." + fraction);
}

std::optional<DesiredObject> render_scaled_object(const CodexProxy& proxy) {
  const auto& spec = proxy.spec.autoscaling;
  if (!spec.enabled || spec.engine != "KEDA") return std::nullopt;
  auto scaled = object(res::kScaledObjects, proxy, proxy.name);
  // The pods' series as the operator's ServiceMonitor labels them; KEDA divides the sum by the
  // pods (AverageValue), so the threshold is per pod, as the HPA's target.
  const std::string query = std::string("sum(") + kAutoscalingMetric + "{namespace=\"" +
                            proxy.namespace_name + "\",codexproxy=\"" + proxy.name + "\"})";
  scaled["spec"] = {
      {"scaleTargetRef", scale_target_ref(proxy)},
      {"minReplicaCount", spec.min_replicas},
      {"maxReplicaCount", spec.max_replicas},
      {"triggers", json::array({{{"type", "prometheus"},
                                 {"metricType", "AverageValue"},
                                 {"metadata",
                                  {{"serverAddress", spec.prometheus_address},
                                   {"query", query},
                                   {"threshold", autoscaling_target_decimal(proxy.spec)}}}}})}};
  if (spec.behavior.is_object() && !spec.behavior.empty()) {
    scaled["spec"]["advanced"] = {{"horizontalPodAutoscalerConfig", {{"behavior", spec.behavior}}}};
  }
  stamp_desired_hash(scaled);
  return DesiredObject{res::kScaledObjects, std::move(scaled)};
}

std::optional<DesiredObject> render_autoscaler(const CodexProxy& proxy) {
  const auto& spec = proxy.spec.autoscaling;
  if (!spec.enabled || spec.engine != "HPA") return std::nullopt;
  auto autoscaler = object(res::kHorizontalPodAutoscalers, proxy, proxy.name);
  autoscaler["spec"] = {
      {"scaleTargetRef", scale_target_ref(proxy)},
      {"minReplicas", spec.min_replicas},
      {"maxReplicas", spec.max_replicas},
      {"metrics", json::array({{{"type", "Pods"},
                                {"pods",
                                 {{"metric", {{"name", kAutoscalingMetric}}},
                                  {"target",
                                   {{"type", "AverageValue"},
                                    {"averageValue", autoscaling_target(proxy.spec)}}}}}}})}};
  if (spec.behavior.is_object() && !spec.behavior.empty()) {
    autoscaler["spec"]["behavior"] = spec.behavior;
  }
  stamp_desired_hash(autoscaler);
  return DesiredObject{res::kHorizontalPodAutoscalers, std::move(autoscaler)};
}

std::optional<DesiredObject> render_network_policy(const CodexProxy& proxy,
                                                   const ApiServerEndpoints& api_server) {
  const auto& spec = proxy.spec.network_policy;
  if (!spec.enabled) return std::nullopt;
  const auto tcp = [](std::int32_t port) { return json{{"protocol", "TCP"}, {"port", port}}; };
  const auto ip_block = [](const std::string& address) {
    const bool has_prefix = address.find('/') != std::string::npos;
    const bool v6 = address.find(':') != std::string::npos;
    return json{{"ipBlock", {{"cidr", has_prefix ? address : address + (v6 ? "/128" : "/32")}}}};
  };
  json ingress =
      json::array({{{"from", spec.api_from}, {"ports", json::array({tcp(kProxyPort)})}}});
  if (!spec.metrics_from.empty()) {
    ingress.push_back({{"from", spec.metrics_from}, {"ports", json::array({tcp(kProxyOpsPort)})}});
  }
  json egress = json::array(
      {{{"ports", json::array({{{"protocol", "UDP"}, {"port", 53}}, tcp(53)})}}});  // DNS
  // The API server, one rule per address and port (a port of one address is not the other's).
  for (const auto& [address, port] : api_server.endpoints) {
    egress.push_back(
        {{"to", json::array({ip_block(address)})}, {"ports", json::array({tcp(port)})}});
  }
  json model_ports = json::array();
  for (const auto port : spec.model_ports) model_ports.push_back(tcp(port));
  json model = {{"ports", model_ports}};
  if (!spec.all_https) {
    model["to"] = json::array();
    for (const auto& cidr : spec.model_cidrs) model["to"].push_back(ip_block(cidr));
  }
  egress.push_back(model);
  auto policy = object(res::kNetworkPolicies, proxy, proxy.name);
  policy["spec"] = {{"podSelector", {{"matchLabels", pod_selector(proxy.name)}}},
                    {"policyTypes", json::array({"Ingress", "Egress"})},
                    {"ingress", ingress},
                    {"egress", egress}};
  stamp_desired_hash(policy);
  return DesiredObject{res::kNetworkPolicies, std::move(policy)};
}

std::string settings_configmap_name(const std::string& proxy_name) {
  return proxy_name + "-settings";
}

json common_labels(const std::string& proxy_name) {
  return {{"app.kubernetes.io/name", "codex-proxy"},
          {"app.kubernetes.io/instance", proxy_name},
          {"app.kubernetes.io/part-of", "codexproxy"},
          {kManagedByLabel, kFieldManager},
          {kInstanceLabel, proxy_name}};
}

json pod_selector(const std::string& proxy_name) {
  return {{kPodAppLabel, kPodAppValue}, {kInstanceLabel, proxy_name}};
}

std::string pod_selector_string(const std::string& proxy_name) {
  return std::string("app.kubernetes.io/name=codex-proxy,") + kInstanceLabel + "=" + proxy_name;
}

json render_settings_data(const CodexProxy& proxy, const std::optional<json>& existing_data) {
  const auto& spec = proxy.spec;
  json data = {
      {"maintenance.enabled", spec.maintenance_enabled ? "true" : "false"},
      {"maintenance.retryAfterSeconds", std::to_string(spec.maintenance_retry_after_seconds)},
      {"traceBuffer.enabled", spec.trace_enabled ? "true" : "false"},
      {"traceBuffer.ttlSeconds", std::to_string(spec.trace_ttl_seconds)},
      {"traceBuffer.maxFiles", std::to_string(spec.trace_max_files)},
      // Each pod enforces its share of every API key's limits: the limit over the ready pods.
      {settings::kLimitPodsKey,
       std::to_string(std::max<std::int64_t>(
           1, proxy.status.is_object() &&
                      proxy.status.value("readyReplicas", json()).is_number_integer()
                  ? proxy.status["readyReplicas"].get<std::int64_t>()
                  : 1))},
  };
  std::int64_t generation = proxy.generation;
  if (existing_data && existing_data->is_object()) {
    json previous = *existing_data;
    previous.erase(kSettingsGenerationKey);
    if (previous == data && settings_generation(*existing_data) > 0) {
      generation = settings_generation(*existing_data);
    }
  }
  data[kSettingsGenerationKey] = std::to_string(generation);
  return data;
}

std::int64_t settings_generation(const json& settings_data) {
  if (!settings_data.is_object()) return 0;
  const auto found = settings_data.find(kSettingsGenerationKey);
  if (found == settings_data.end() || !found->is_string()) return 0;
  try {
    return std::stoll(found->get<std::string>());
  } catch (const std::exception&) {
    return 0;
  }
}

namespace {

// The settings of the worker's model that roll the pods.
json model_settings(const CodexProxySpec& spec) {
  return {
      spec.credentials.api_key.name,  spec.credentials.api_key.key, spec.credentials.auth_json.name,
      spec.credentials.auth_json.key, spec.provider.name,           spec.provider.base_url,
      spec.provider.wire_api,         spec.provider.env_key,        spec.config_overrides};
}

}  // namespace

std::string restart_hash(const CodexProxySpec& spec) {
  json restart_settings = {
      {"image", spec.image},
      {"worker",
       {spec.model, spec.max_concurrency, spec.request_timeout_seconds, spec.backoff_initial_ms,
        spec.backoff_max_ms, spec.drain_seconds}},
      {"probes",
       {spec.readiness.period_seconds, spec.readiness.failure_threshold,
        spec.liveness.period_seconds, spec.liveness.failure_threshold, spec.startup.period_seconds,
        spec.startup.failure_threshold}},
      {"metrics", spec.metrics_enabled},
      {"secrets",
       {spec.api_key_secret.name, spec.api_key_secret.key, spec.admin_token_secret.name,
        spec.admin_token_secret.key}},
  };
  // Only when set, so that CodexProxies without these fields keep their hash (no roll on upgrade).
  if (model_settings(spec) != model_settings(CodexProxySpec{})) {
    restart_settings["model"] = model_settings(spec);
  }
  if (!spec.default_instructions.empty()) {
    restart_settings["defaultInstructions"] = spec.default_instructions;
  }
  if (!spec.api_keys_secret.name.empty()) {
    restart_settings["apiKeysSecret"] = {spec.api_keys_secret.name, spec.api_keys_secret.key};
  }
  return fnv1a_hex(restart_settings.dump());
}

std::vector<DesiredObject> render_objects(const CodexProxy& proxy,
                                          const std::optional<json>& existing_settings) {
  std::vector<DesiredObject> out;
  const auto settings_name = settings_configmap_name(proxy.name);

  auto configmap = object(res::kConfigMaps, proxy, settings_name);
  configmap["data"] = render_settings_data(proxy, existing_settings);
  out.push_back({res::kConfigMaps, std::move(configmap)});

  auto account = object(res::kServiceAccounts, proxy, proxy.name);
  if (proxy.spec.pod.service_account_annotations.is_object()) {
    account["metadata"]["annotations"] = proxy.spec.pod.service_account_annotations;
  }
  out.push_back({res::kServiceAccounts, std::move(account)});

  // Each pod reads its own settings and keeps its own heartbeat Lease; nothing else. RBAC cannot
  // name an object not yet created: that a pod writes only the Lease named after itself is
  // enforced by the chart's ValidatingAdmissionPolicy (config/admission/pod-lease-policy.yaml).
  auto role = object(res::kRoles, proxy, proxy.name);
  role["rules"] = json::array({
      {{"apiGroups", json::array({""})},
       {"resources", json::array({"configmaps"})},
       {"resourceNames", json::array({settings_name})},
       {"verbs", json::array({"get", "list", "watch"})}},
      {{"apiGroups", json::array({res::kCodexProxies.group})},
       {"resources", json::array({"codexproxies"})},
       {"resourceNames", json::array({proxy.name})},
       {"verbs", json::array({"get"})}},
      {{"apiGroups", json::array({res::kLeases.group})},
       {"resources", json::array({"leases"})},
       {"verbs", json::array({"get", "create", "update", "patch"})}},
  });
  out.push_back({res::kRoles, std::move(role)});

  auto binding = object(res::kRoleBindings, proxy, proxy.name);
  binding["roleRef"] = {{"apiGroup", res::kRoles.group}, {"kind", "Role"}, {"name", proxy.name}};
  binding["subjects"] = json::array(
      {{{"kind", "ServiceAccount"}, {"name", proxy.name}, {"namespace", proxy.namespace_name}}});
  out.push_back({res::kRoleBindings, std::move(binding)});

  auto service = object(res::kServices, proxy, proxy.name);
  const auto& pod = proxy.spec.pod;
  if (pod.service_annotations.is_object()) {
    service["metadata"]["annotations"] = pod.service_annotations;
  }
  service["spec"] = {
      {"type", pod.service_type},
      {"selector", pod_selector(proxy.name)},
      {"ports",
       // The ops port is named so that the ServiceMonitor scrapes it; callers use "http".
       json::array({{{"name", "http"}, {"port", pod.service_port}, {"targetPort", "http"}},
                    {{"name", "ops"}, {"port", kProxyOpsPort}, {"targetPort", "ops"}}})},
  };
  out.push_back({res::kServices, std::move(service)});

  out.push_back({res::kPodDisruptionBudgets, render_disruption_budget(proxy)});
  out.push_back({res::kDeployments, render_deployment(proxy)});
  for (auto& desired : out) stamp_desired_hash(desired.object);
  return out;
}

}  // namespace cxp::controller
