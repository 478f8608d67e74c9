#include <doctest/doctest.h>

#include "controller/codexproxy_spec.h"
#include "controller/object_diff.h"
#include "controller/render.h"

using namespace cxp::controller;
using nlohmann::json;

namespace {

CodexProxy sample(std::int64_t generation = 3) {
  std::vector<std::string> problems;
  auto proxy = parse_codexproxy(
      json::parse(R"({"metadata":{"name":"demo","namespace":"ns","uid":"u-1","generation":)" +
                  std::to_string(generation) +
                  R"(},"spec":{"replicas":2,"image":"ghcr.io/example/codex-proxy:1.0",
                     "worker":{"model":"gpt-5","backoff":{"initialMs":100,"maxMs":2000}},
                     "maintenance":{"enabled":true,"retryAfterSeconds":30}}})"),
      problems);
  REQUIRE(problems.empty());
  return proxy;
}

const json& find(const std::vector<DesiredObject>& objects, const std::string& kind) {
  for (const auto& object : objects) {
    if (object.resource.kind == kind) return object.object;
  }
  FAIL("no " << kind);
  static json none;
  return none;
}

}  // namespace

TEST_CASE("render gives every owned object with the owner reference and labels") {
  const auto objects = render_objects(sample(), std::nullopt);
  REQUIRE(objects.size() == 7);
  CHECK(objects.back().resource.kind == "Deployment");  // last: it needs the others
  for (const auto& object : objects) {
    const auto& metadata = object.object["metadata"];
    CHECK(metadata["namespace"] == "ns");
    CHECK(metadata["ownerReferences"][0]["uid"] == "u-1");
    CHECK(metadata["ownerReferences"][0]["controller"] == true);
    CHECK(metadata["labels"]["codexproxy.io/name"] == "demo");
    CHECK(metadata["labels"]["app.kubernetes.io/managed-by"] == "codexproxy-controller");
  }
  CHECK(find(objects, "ConfigMap")["metadata"]["name"] == "demo-settings");
}

TEST_CASE("the Deployment carries the spec as env, probes and a locked-down security context") {
  const auto deployment = find(render_objects(sample(), std::nullopt), "Deployment");
  CHECK(deployment["spec"]["replicas"] == 2);
  const auto& pod = deployment["spec"]["template"]["spec"];
  const auto& container = pod["containers"][0];
  CHECK(container["image"] == "ghcr.io/example/codex-proxy:1.0");
  std::map<std::string, json> env;
  for (const auto& e : container["env"])
    env[e["name"]] = e.contains("value") ? e["value"] : e["valueFrom"];
  CHECK(env["CODEX_MODEL"] == "gpt-5");
  CHECK(env["WORKER_BACKOFF_INITIAL_MS"] == "100");
  CHECK(env["WORKER_BACKOFF_MAX_MS"] == "2000");
  CHECK(env["WORKER_REQUEST_TIMEOUT_MS"] == "120000");
  CHECK(env["CODEXPROXY_NAME"] == "demo");
  CHECK(env["POD_NAME"]["fieldRef"]["fieldPath"] == "metadata.name");
  CHECK(env["POD_NAMESPACE"]["fieldRef"]["fieldPath"] == "metadata.namespace");
  CHECK(env["POD_UID"]["fieldRef"]["fieldPath"] == "metadata.uid");  // owner of its Lease
  CHECK(env.count("PROXY_MAINTENANCE_MODE") == 0);  // live settings never go into the pod template
  CHECK(container["readinessProbe"]["httpGet"]["path"] == "/readyz");
  CHECK(container["livenessProbe"]["httpGet"]["path"] == "/livez");
  CHECK(container["startupProbe"]["httpGet"]["path"] == "/readyz");  // the first handshake
  CHECK(container["lifecycle"]["preStop"]["exec"]["command"] ==
        json::array({"/bin/sleep", std::to_string(kPreStopSeconds)}));
  CHECK(container["securityContext"]["readOnlyRootFilesystem"] == true);
  CHECK(container["securityContext"]["allowPrivilegeEscalation"] == false);
  CHECK(pod["securityContext"]["runAsNonRoot"] == true);
  CHECK(pod["serviceAccountName"] == "demo");
  CHECK(pod["terminationGracePeriodSeconds"] == kPreStopSeconds + 10 + 5);  // drainSeconds 10
}

TEST_CASE("only restart-requiring settings change the pod template") {
  auto base = sample();
  const auto template_of = [](const CodexProxy& proxy) {
    return find(render_objects(proxy, std::nullopt), "Deployment")["spec"]["template"];
  };
  auto live = base;
  live.spec.maintenance_enabled = !live.spec.maintenance_enabled;
  live.spec.trace_enabled = true;
  live.spec.trace_max_files = 7;
  live.spec.replicas = 5;
  CHECK(template_of(live) == template_of(base));
  for (auto change : std::vector<std::function<void(CodexProxySpec&)>>{
           [](auto& s) { s.model = "other"; }, [](auto& s) { s.image = "x/y:2"; },
           [](auto& s) { s.backoff_max_ms = 9000; },
           [](auto& s) { s.readiness.period_seconds = 9; },
           [](auto& s) { s.metrics_enabled = false; }, [](auto& s) { s.drain_seconds = 1; },
           [](auto& s) { s.api_key_secret.name = "keys"; }}) {
    auto rolled = base;
    change(rolled.spec);
    CHECK(restart_hash(rolled.spec) != restart_hash(base.spec));
    CHECK(template_of(rolled) != template_of(base));
  }
}

TEST_CASE("the settings generation moves only when the live settings change") {
  const auto first = render_settings_data(sample(3), std::nullopt);
  CHECK(first["settingsGeneration"] == "3");
  CHECK(first["maintenance.enabled"] == "true");
  CHECK(first["maintenance.retryAfterSeconds"] == "30");
  // a later spec generation (e.g. a model change) with the same live settings keeps generation 3
  CHECK(render_settings_data(sample(7), first)["settingsGeneration"] == "3");
  auto changed = sample(8);
  changed.spec.maintenance_enabled = false;
  CHECK(render_settings_data(changed, first)["settingsGeneration"] == "8");
}

TEST_CASE("keys and tokens are Secret volumes the pods re-read, never env values") {
  auto proxy = sample();
  proxy.spec.api_key_secret = {"proxy-keys", "apiKey"};
  proxy.spec.api_keys_secret = {"callers", "keys.yaml"};
  proxy.spec.admin_token_secret = {"proxy-keys", "admin"};
  const auto pod =
      find(render_objects(proxy, std::nullopt), "Deployment")["spec"]["template"]["spec"];
  const auto& container = pod["containers"][0];
  std::map<std::string, json> env;
  for (const auto& e : container["env"]) env[e["name"]] = e;
  CHECK(env["PROXY_API_KEYS_FILE"]["value"] == "/var/run/secrets/codexproxy/api-keys/api-keys");
  CHECK(env["PROXY_API_KEY_FILE"]["value"] == "/var/run/secrets/codexproxy/api-key/api-key");
  CHECK(env["PROXY_ADMIN_TOKEN_FILE"]["value"] ==
        "/var/run/secrets/codexproxy/admin-token/admin-token");
  CHECK_FALSE(env.count("PROXY_API_KEY"));
  CHECK_FALSE(env.count("PROXY_ADMIN_TOKEN"));
  std::map<std::string, json> volumes;
  for (const auto& v : pod["volumes"]) volumes[v["name"]] = v;
  CHECK(volumes["api-keys"]["secret"] ==
        json{{"secretName", "callers"},
             {"items", json::array({{{"key", "keys.yaml"}, {"path", "api-keys"}}})},
             {"defaultMode", 0440}});
  CHECK(volumes["admin-token"]["secret"]["items"][0]["key"] == "admin");
  // No subPath: the kubelet updates only whole Secret volumes.
  for (const auto& mount : container["volumeMounts"]) CHECK_FALSE(mount.contains("subPath"));
  CHECK(insecure_defaults_message(proxy.spec).find("apiKeysSecret") == std::string::npos);
  CHECK(referenced_secrets(proxy.spec)[1].field == "spec.auth.apiKeysSecret");
  // without them, nothing at all (the proxy warns that /v1/* are open)
  const auto plain = find(render_objects(sample(), std::nullopt), "Deployment").dump();
  CHECK(plain.find("PROXY_API_KEY") == std::string::npos);
}

TEST_CASE("each pod's share of the keys' limits is the CodexProxy's ready replicas") {
  auto proxy = sample();
  CHECK(render_settings_data(proxy, std::nullopt)["limits.pods"] == "1");
  proxy.status = {{"readyReplicas", 3}};
  CHECK(render_settings_data(proxy, std::nullopt)["limits.pods"] == "3");
  proxy.status = {{"readyReplicas", 0}};
  CHECK(render_settings_data(proxy, std::nullopt)["limits.pods"] == "1");
}

TEST_CASE("the pods' Role reads only their own ConfigMap and CodexProxy and writes only Leases") {
  const auto role = find(render_objects(sample(), std::nullopt), "Role");
  REQUIRE(role["rules"].size() == 3);
  for (int i = 0; i < 2; ++i) {
    const auto& rule = role["rules"][i];
    REQUIRE(rule.contains("resourceNames"));
    for (const auto& verb : rule["verbs"])
      CHECK((verb == "get" || verb == "list" || verb == "watch"));
  }
  CHECK(role["rules"][0]["resourceNames"] == json::array({"demo-settings"}));
  CHECK(role["rules"][1]["resourceNames"] == json::array({"demo"}));
  // The heartbeat Lease: RBAC cannot name it before it exists; the admission policy narrows it
  // to the pod's own (config/admission/pod-lease-policy.yaml). No delete, no status.
  CHECK(role["rules"][2] == json{{"apiGroups", json::array({"coordination.k8s.io"})},
                                 {"resources", json::array({"leases"})},
                                 {"verbs", json::array({"get", "create", "update", "patch"})}});
  CHECK(role.dump().find("codexproxies/status") == std::string::npos);
}

TEST_CASE("spec problems only the controller can judge") {
  auto spec = sample().spec;
  CHECK(validate_spec(spec).empty());
  spec.image = "Example.com/Upper/Case:1";
  const auto problems = validate_spec(spec);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("spec.image") != std::string::npos);
  for (const char* good : {"nginx", "ghcr.io/a/b:1.0", "localhost:5000/x",
                           "a/b@sha256:0123456789abcdef0123456789abcdef",
                           "registry.example.com:443/team/codex-proxy:v1.2.3-rc.1"}) {
    CHECK_MESSAGE(is_valid_image_reference(good), good);
  }
  for (const char* bad : {"", "UPPER", "a//b", "a/b:", "a/b:-tag", ":tag", "a b"}) {
    CHECK_MESSAGE(!is_valid_image_reference(bad), bad);
  }
}

TEST_CASE("fields of the wrong type are problems, not exceptions") {
  std::vector<std::string> problems;
  parse_codexproxy(
      json::parse(
          R"({"metadata":{"name":"x"},"spec":{"image":5,"worker":{"maxConcurrency":"many"}}})"),
      problems);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].find("spec.image: expected a string") != std::string::npos);
  CHECK(problems[1].find("spec.worker.maxConcurrency: expected an integer") != std::string::npos);
}

TEST_CASE("numbers that are not integers of the field's range are problems, not conversions") {
  std::vector<std::string> problems;
  const auto proxy = parse_codexproxy(
      json::parse(R"({"metadata":{"name":"x","generation":"7"},"spec":{"replicas":7.7e96,)"
                  R"("worker":{"maxConcurrency":4294967297,"maxTurns":-5}}})"),
      problems);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].find("spec.replicas: expected an integer in range") != std::string::npos);
  CHECK(problems[1].find("spec.worker.maxConcurrency") != std::string::npos);
  CHECK(proxy.spec.replicas == 1);    // kept its default
  CHECK(proxy.spec.max_turns == -5);  // in range for the type: validate_spec judges it
  CHECK(proxy.generation == 0);       // metadata read leniently
}

TEST_CASE("an object that already holds every desired field needs no write") {
  const auto desired = json::parse(R"({"spec":{"ports":[{"name":"http","port":1}],"x":{}},"n":1})");
  CHECK(contains_subset(
      json::parse(
          R"({"spec":{"ports":[{"name":"http","port":1,"protocol":"TCP"}],"type":"A"},"n":1.0,"extra":2})"),
      desired));
  CHECK_FALSE(contains_subset(json::parse(R"({"spec":{"ports":[{"name":"http","port":2}]},"n":1})"),
                              desired));
  CHECK_FALSE(contains_subset(json::parse(R"({"spec":{"ports":[]},"n":1})"), desired));
  CHECK_FALSE(
      contains_subset(json::parse(R"({"spec":{"ports":[{"name":"http","port":1}]}})"), desired));
}

namespace {

CodexProxy with_worker(const std::string& worker_json) {
  std::vector<std::string> problems;
  auto proxy = parse_codexproxy(
      json::parse(R"({"metadata":{"name":"demo","namespace":"ns","uid":"u-1","generation":1},
                      "spec":{"image":"ghcr.io/example/codex-proxy:1.0","worker":)" +
                  worker_json + "}}"),
      problems);
  REQUIRE(problems.empty());
  return proxy;
}

std::map<std::string, json> env_of(const json& deployment) {
  std::map<std::string, json> env;
  for (const auto& e : deployment["spec"]["template"]["spec"]["containers"][0]["env"])
    env[e["name"]] = e.contains("value") ? e["value"] : e["valueFrom"];
  return env;
}

}  // namespace

TEST_CASE(
    "an API key without a provider points the worker at OpenAI with the key from its Secret") {
  const auto deployment = find(
      render_objects(with_worker(R"({"credentials":{"apiKeySecret":{"name":"openai","key":"k"}}})"),
                     std::nullopt),
      "Deployment");
  auto env = env_of(deployment);
  CHECK(env["WORKER_PROVIDER_BASE_URL"] == "https://api.openai.com/v1");
  CHECK(env["WORKER_PROVIDER_ENV_KEY"] == "OPENAI_API_KEY");
  CHECK(env["OPENAI_API_KEY"] == json{{"secretKeyRef", {{"name", "openai"}, {"key", "k"}}}});
  CHECK(env["CODEX_HOME"] == "/var/lib/codex");
  CHECK_FALSE(env.count("WORKER_AUTH_JSON"));
}

TEST_CASE("a provider gets its env key, and the overrides become sorted key=value lines") {
  const auto deployment =
      find(render_objects(with_worker(R"({"credentials":{"apiKeySecret":{"name":"azure"}},
          "provider":{"name":"Azure OpenAI","baseURL":"https://x.openai.azure.com/openai/v1",
                      "envKey":"AZURE_OPENAI_API_KEY"},
          "configOverrides":{"model_reasoning_effort":"high","a.b":"1"}})"),
                          std::nullopt),
           "Deployment");
  auto env = env_of(deployment);
  CHECK(env["WORKER_PROVIDER_BASE_URL"] == "https://x.openai.azure.com/openai/v1");
  CHECK(env["WORKER_PROVIDER_NAME"] == "Azure OpenAI");
  CHECK(env["WORKER_PROVIDER_ENV_KEY"] == "AZURE_OPENAI_API_KEY");
  CHECK(env["AZURE_OPENAI_API_KEY"]["secretKeyRef"]["key"] == "apiKey");
  CHECK_FALSE(env.count("OPENAI_API_KEY"));
  CHECK(env["WORKER_CONFIG_OVERRIDES"] == "a.b=1\nmodel_reasoning_effort=high\n");
}

TEST_CASE("default instructions become WORKER_DEFAULT_INSTRUCTIONS, and roll the pods") {
  const auto spec = with_worker(R"({"defaultInstructions":"You are a helpful assistant."})");
  auto env = env_of(find(render_objects(spec, std::nullopt), "Deployment"));
  CHECK(env["WORKER_DEFAULT_INSTRUCTIONS"] == "You are a helpful assistant.");
  CHECK_FALSE(env_of(find(render_objects(with_worker("{}"), std::nullopt), "Deployment"))
                  .count("WORKER_DEFAULT_INSTRUCTIONS"));
  CHECK(restart_hash(spec.spec) != restart_hash(with_worker("{}").spec));
}

TEST_CASE("a ChatGPT auth.json Secret is mounted read-only and named by WORKER_AUTH_JSON") {
  const auto deployment = find(
      render_objects(with_worker(R"({"credentials":{"authJsonSecret":{"name":"codex-login"}}})"),
                     std::nullopt),
      "Deployment");
  auto env = env_of(deployment);
  CHECK(env["WORKER_AUTH_JSON"] == "/var/run/secrets/codexproxy/codex-auth/auth.json");
  CHECK_FALSE(env.count("WORKER_PROVIDER_BASE_URL"));  // codex's built-in provider
  const auto& pod = deployment["spec"]["template"]["spec"];
  json volume;
  for (const auto& v : pod["volumes"])
    if (v["name"] == "codex-auth") volume = v;
  CHECK(volume["secret"]["secretName"] == "codex-login");
  CHECK(volume["secret"]["items"][0] == json{{"key", "auth.json"}, {"path", "auth.json"}});
  json mount;
  for (const auto& m : pod["containers"][0]["volumeMounts"])
    if (m["name"] == "codex-auth") mount = m;
  CHECK(mount["readOnly"] == true);
  CHECK(mount["mountPath"] == "/var/run/secrets/codexproxy/codex-auth");
}

TEST_CASE("the worker's model settings roll the pods, and leave the hash of specs without them") {
  // The restart hash of a spec without model settings is what it was before they existed:
  // upgrading the controller does not roll every CodexProxy's pods. It changes only with a default
  // that needs a new process (worker.maxConcurrency 4 → 64: pods roll once, docs/install.md).
  CHECK(restart_hash(CodexProxySpec{}) == "96940360ce1cd074");
  const auto base = restart_hash(with_worker("{}").spec);
  CHECK(restart_hash(with_worker(R"({"credentials":{"apiKeySecret":{"name":"a"}}})").spec) != base);
  CHECK(restart_hash(with_worker(R"({"provider":{"baseURL":"https://h/v1"}})").spec) != base);
  CHECK(restart_hash(with_worker(R"({"configOverrides":{"k":"v"}})").spec) != base);
}

TEST_CASE("worker model problems the controller judges name the field") {
  auto problems_of = [](const std::string& worker) {
    return validate_spec(with_worker(worker).spec);
  };
  auto mentions = [](const std::vector<std::string>& problems, const std::string& text) {
    for (const auto& p : problems)
      if (p.find(text) != std::string::npos) return true;
    return false;
  };
  CHECK(mentions(problems_of(R"({"provider":{"baseURL":"ftp://x"}})"),
                 "spec.worker.provider.baseURL"));
  CHECK(mentions(problems_of(R"({"provider":{"baseURL":"https://x/v1","wireAPI":"chat"}})"),
                 "spec.worker.provider.wireAPI"));
  CHECK(mentions(problems_of(R"({"provider":{"envKey":"PROXY_API_KEY"}})"),
                 "spec.worker.provider.envKey"));
  CHECK(mentions(problems_of(R"({"credentials":{"apiKeySecret":{"name":"a"},
                                                "authJsonSecret":{"name":"b"}}})"),
                 "not both"));
  CHECK(mentions(problems_of(R"({"configOverrides":{"bad key":"v"}})"),
                 "spec.worker.configOverrides.bad key"));
  CHECK(problems_of(R"({"provider":{"baseURL":"https://x/v1","envKey":"GATEWAY_KEY"}})").empty());
  std::vector<std::string> problems;
  parse_codexproxy(json::parse(R"({"spec":{"image":"x","worker":{"configOverrides":{"n":3}}}})"),
                   problems);
  CHECK(mentions(problems, "spec.worker.configOverrides.n: expected a string"));
}

namespace {

CodexProxy with_spec(const std::string& extra) {
  std::vector<std::string> problems;
  auto object = json::parse(R"({"metadata":{"name":"demo","namespace":"ns","uid":"u-1"},
                                "spec":{"image":"x/y:1"}})");
  object["spec"].update(json::parse(extra));
  auto proxy = parse_codexproxy(object, problems);
  REQUIRE(problems.empty());
  return proxy;
}

}  // namespace

TEST_CASE("the pod template carries the scheduling fields, labels and annotations as given") {
  const auto proxy = with_spec(R"({
      "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
      "nodeSelector": {"pool": "codex"},
      "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                   {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}}},
      "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "codex", "effect": "NoSchedule"}],
      "topologySpreadConstraints": [],
      "priorityClassName": "high", "imagePullSecrets": [{"name": "regcred"}], "imagePullPolicy": "Always",
      "podLabels": {"team": "ml", "codexproxy.io/name": "forged"}, "podAnnotations": {"mesh/inject": "true"},
      "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"},
      "service": {"type": "LoadBalancer", "port": 443, "annotations": {"lb/internal": "true"}},
      "disruptionBudget": {"minAvailable": "50%"}})");
  const auto objects = render_objects(proxy, std::nullopt);
  const auto& deployment = find(objects, "Deployment");
  const auto& pod = deployment["spec"]["template"]["spec"];
  const auto& container = pod["containers"][0];
  CHECK(container["resources"] == proxy.spec.pod.resources);
  CHECK(container["imagePullPolicy"] == "Always");
  CHECK(pod["nodeSelector"] == json{{"pool", "codex"}});
  CHECK(pod["affinity"] == proxy.spec.pod.affinity);
  CHECK(pod["tolerations"] == proxy.spec.pod.tolerations);
  CHECK(pod["topologySpreadConstraints"] == json::array());  // [] turns the default off
  CHECK(pod["priorityClassName"] == "high");
  CHECK(pod["imagePullSecrets"] == json::parse(R"([{"name":"regcred"}])"));
  const auto& metadata = deployment["spec"]["template"]["metadata"];
  CHECK(metadata["labels"]["team"] == "ml");
  CHECK(metadata["labels"]["codexproxy.io/name"] == "demo");  // the operator's own label wins
  CHECK(metadata["annotations"]["mesh/inject"] == "true");
  CHECK(metadata["annotations"].contains(kRestartHashAnnotation));
  CHECK(find(objects, "ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] ==
        "arn:aws:iam::1:role/x");
  const auto& service = find(objects, "Service");
  CHECK(service["spec"]["type"] == "LoadBalancer");
  CHECK(service["spec"]["ports"][0]["port"] == 443);
  CHECK(service["spec"]["ports"][0]["targetPort"] == "http");
  CHECK(service["metadata"]["annotations"]["lb/internal"] == "true");
  const auto& budget = find(objects, "PodDisruptionBudget");
  CHECK(budget["spec"]["minAvailable"] == "50%");
  CHECK_FALSE(budget["spec"].contains("maxUnavailable"));
  CHECK(budget["spec"]["selector"]["matchLabels"] == pod_selector("demo"));
}

TEST_CASE("unset, the pods get measured resources, a spread over nodes and zones and a budget") {
  const auto objects = render_objects(with_spec("{}"), std::nullopt);
  const auto& pod = find(objects, "Deployment")["spec"]["template"]["spec"];
  CHECK(pod["containers"][0]["resources"] == default_resources());
  CHECK(pod["containers"][0]["resources"]["requests"]["memory"] == "1Gi");
  CHECK_FALSE(pod["containers"][0].contains("imagePullPolicy"));
  CHECK(pod["topologySpreadConstraints"] == default_topology_spread("demo"));
  CHECK(pod["topologySpreadConstraints"][1]["topologyKey"] == "topology.kubernetes.io/zone");
  for (const char* absent :
       {"nodeSelector", "affinity", "tolerations", "priorityClassName", "imagePullSecrets"}) {
    CHECK_FALSE(pod.contains(absent));
  }
  CHECK(find(objects, "Service")["spec"]["type"] == "ClusterIP");
  CHECK(find(objects, "Service")["spec"]["ports"][0]["port"] == kProxyPort);
  CHECK(find(objects, "Service")["spec"]["ports"][1] ==
        json{{"name", "ops"}, {"port", kProxyOpsPort}, {"targetPort", "ops"}});
  const auto& container = pod["containers"][0];
  for (const char* probe : {"readinessProbe", "livenessProbe", "startupProbe"}) {
    CHECK(container[probe]["httpGet"]["port"] == "ops");  // the kubelet's port, not the callers'
  }
  CHECK(find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1);
}

TEST_CASE("removing a field changes the desired hash, so the object is applied again") {
  const auto with = find(
      render_objects(with_spec(R"({"nodeSelector":{"pool":"a"}})"), std::nullopt), "Deployment");
  const auto without = find(render_objects(with_spec("{}"), std::nullopt), "Deployment");
  // what the API server holds after the first apply still contains every field of the second
  // apart from the hash: without the hash the removal would never be written
  auto stale = with;
  stale["metadata"]["annotations"].erase(kDesiredHashAnnotation);
  auto without_hash = without;
  without_hash["metadata"]["annotations"].erase(kDesiredHashAnnotation);
  CHECK(contains_subset(stale, without_hash));
  CHECK_FALSE(contains_subset(with, without));
}

TEST_CASE("a Kubernetes-typed field of the wrong JSON type is a problem naming it") {
  std::vector<std::string> problems;
  parse_codexproxy(json::parse(R"({"spec":{"image":"x","tolerations":{"key":"a"},
                                           "service":{"annotations":[1]}}})"),
                   problems);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].find("spec.tolerations: expected a list") == 0);
  CHECK(problems[1].find("spec.service.annotations: expected an object") == 0);
}

TEST_CASE("a ServiceMonitor only when asked for, labelled per CodexProxy and sending the token") {
  CHECK_FALSE(render_service_monitor(with_spec("{}")));
  CHECK_FALSE(render_service_monitor(
      with_spec(R"({"metrics":{"enabled":false,"serviceMonitor":{"enabled":true}}})")));
  const auto proxy = with_spec(R"({"metrics":{"tokenSecret":{"name":"scrape","key":"t"},
      "serviceMonitor":{"enabled":true,"interval":"15s","labels":{"release":"kps",
      "codexproxy.io/name":"forged"}}}})");
  const auto monitor = render_service_monitor(proxy);
  REQUIRE(monitor);
  const auto& object = monitor->object;
  CHECK(object["apiVersion"] == "monitoring.coreos.com/v1");
  CHECK(object["metadata"]["labels"]["release"] == "kps");
  CHECK(object["metadata"]["labels"]["codexproxy.io/name"] == "demo");
  CHECK(object["metadata"]["ownerReferences"][0]["uid"] == proxy.uid);
  CHECK(object["metadata"]["annotations"].contains(kDesiredHashAnnotation));
  CHECK(object["spec"]["selector"]["matchLabels"] == pod_selector("demo"));
  const auto& endpoint = object["spec"]["endpoints"][0];
  CHECK(endpoint["port"] == "ops");
  CHECK(endpoint["interval"] == "15s");
  CHECK(endpoint["authorization"]["credentials"] == json{{"name", "scrape"}, {"key", "t"}});
  CHECK(endpoint["relabelings"][0]["targetLabel"] == "codexproxy");
  // the pods get the same token, and the Secret is checked before they roll
  const auto objects = render_objects(proxy, std::nullopt);
  const auto& env = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
  bool token = false;
  for (const auto& entry : env) {
    if (entry["name"] == "PROXY_METRICS_TOKEN_FILE") {
      token = entry["value"] == "/var/run/secrets/codexproxy/metrics-token/metrics-token";
    }
  }
  CHECK(token);
  const auto secrets = referenced_secrets(proxy.spec);
  REQUIRE_FALSE(secrets.empty());
  CHECK(secrets.back().field == "spec.metrics.tokenSecret");
  CHECK(insecure_defaults_message(proxy.spec).find("spec.metrics") == std::string::npos);
}

TEST_CASE(
    "spec.networkPolicy renders one NetworkPolicy: each port from its peers, egress to DNS, "
    "the API server and the model only") {
  CHECK_FALSE(render_network_policy(with_spec("{}"), {}).has_value());
  std::vector<std::string> problems;
  const auto proxy = with_spec(R"({"networkPolicy": {"enabled": true,
      "apiFrom": [{"namespaceSelector": {"matchLabels": {"team": "search"}}}],
      "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}},
                       "podSelector": {"matchLabels": {"app": "prometheus"}}}],
      "egressTo": {"modelCIDRs": ["203.0.113.0/24", "2001:db8::1"], "ports": [443, 8443]}}})");
  CHECK(validate_spec(proxy.spec).empty());
  const ApiServerEndpoints api{{{"10.96.0.1", 443}, {"192.0.2.10", 6443}}};
  const auto policy = render_network_policy(proxy, api);
  REQUIRE(policy.has_value());
  CHECK(policy->resource.kind == "NetworkPolicy");
  const auto& spec = policy->object["spec"];
  CHECK(spec["podSelector"]["matchLabels"] == pod_selector("demo"));
  CHECK(spec["policyTypes"] == json::array({"Ingress", "Egress"}));
  REQUIRE(spec["ingress"].size() == 2);
  CHECK(spec["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["team"] == "search");
  CHECK(spec["ingress"][0]["ports"] == json::array({{{"protocol", "TCP"}, {"port", kProxyPort}}}));
  CHECK(spec["ingress"][1]["from"][0]["podSelector"]["matchLabels"]["app"] == "prometheus");
  CHECK(spec["ingress"][1]["ports"] ==
        json::array({{{"protocol", "TCP"}, {"port", kProxyOpsPort}}}));
  const auto& egress = spec["egress"];
  REQUIRE(egress.size() == 4);  // DNS, two API server addresses, the model
  CHECK_FALSE(egress[0].contains("to"));
  CHECK(egress[0]["ports"].size() == 2);
  CHECK(egress[1]["to"][0]["ipBlock"]["cidr"] == "10.96.0.1/32");
  CHECK(egress[2]["to"][0]["ipBlock"]["cidr"] == "192.0.2.10/32");
  CHECK(egress[2]["ports"][0]["port"] == 6443);
  CHECK(egress[3]["to"][0]["ipBlock"]["cidr"] == "203.0.113.0/24");
  CHECK(egress[3]["to"][1]["ipBlock"]["cidr"] == "2001:db8::1/128");
  CHECK(egress[3]["ports"].size() == 2);

  // No metricsFrom: the ops port answers the node only (no rule); allHTTPS: any address, port 443.
  const auto open = with_spec(R"({"networkPolicy": {"enabled": true,
      "apiFrom": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "egressTo": {"allHTTPS": true}}})");
  const auto open_spec = render_network_policy(open, {})->object["spec"];
  CHECK(open_spec["ingress"].size() == 1);
  CHECK(open_spec["egress"].size() == 2);
  CHECK_FALSE(open_spec["egress"][1].contains("to"));
  CHECK(open_spec["egress"][1]["ports"] == json::array({{{"protocol", "TCP"}, {"port", 443}}}));
}

TEST_CASE("a NetworkPolicy that would admit no caller or reach no model is an invalid spec") {
  const auto no_peers = with_spec(R"({"networkPolicy": {"enabled": true, "apiFrom": [],
      "egressTo": {"allHTTPS": true}}})");
  const auto problems = validate_spec(no_peers.spec);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("spec.networkPolicy.apiFrom") != std::string::npos);
  const auto both = with_spec(R"({"networkPolicy": {"enabled": true,
      "apiFrom": [{"podSelector": {}}],
      "egressTo": {"allHTTPS": true, "modelCIDRs": ["10.0.0.0/8"]}}})");
  CHECK(validate_spec(both.spec).at(0).find("spec.networkPolicy.egressTo") != std::string::npos);
  CHECK(validate_spec(with_spec(R"({"networkPolicy": {"enabled": false}})").spec).empty());
}

TEST_CASE(
    "spec.autoscaling renders an HPA on the CodexProxy's scale subresource and turns in flight") {
  CHECK_FALSE(render_autoscaler(with_spec("{}")).has_value());
  const auto proxy = with_spec(R"({"worker": {"maxConcurrency": 16},
      "autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 10,
                      "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})");
  CHECK(validate_spec(proxy.spec).empty());
  const auto hpa = render_autoscaler(proxy);
  REQUIRE(hpa.has_value());
  CHECK(hpa->resource.api_version() == "autoscaling/v2");
  CHECK(hpa->object["metadata"]["ownerReferences"][0]["kind"] == "CodexProxy");
  const auto& spec = hpa->object["spec"];
  CHECK(spec["scaleTargetRef"] ==
        json{{"apiVersion", "codexproxy.io/v1alpha1"}, {"kind", "CodexProxy"}, {"name", "demo"}});
  CHECK(spec["minReplicas"] == 2);
  CHECK(spec["maxReplicas"] == 10);
  const auto& metric = spec["metrics"][0];
  CHECK(metric["type"] == "Pods");
  CHECK(metric["pods"]["metric"]["name"] == "codex_turns_in_flight");
  // No target given: 70 % of the 16 slots.
  CHECK(metric["pods"]["target"] == json{{"type", "AverageValue"}, {"averageValue", "11200m"}});
  CHECK(spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60);

  const auto per_pod = with_spec(
      R"({"autoscaling": {"enabled": true, "maxReplicas": 3, "targetInFlightPerPod": 3}})");
  CHECK(autoscaling_target(per_pod.spec) == "3");
  CHECK_FALSE(render_autoscaler(per_pod)->object["spec"].contains("behavior"));
  CHECK(autoscaling_target(with_spec(R"({"autoscaling": {"targetUtilization": 50}})").spec) ==
        "32");  // 50 % of the default 64 slots
}

TEST_CASE("autoscaling that contradicts itself or spec.replicas is an invalid spec, named") {
  const auto problems_of = [](const std::string& spec) {
    std::string all;
    for (const auto& problem : validate_spec(with_spec(spec).spec)) all += problem + "\n";
    return all;
  };
  CHECK(problems_of(R"({"autoscaling": {"enabled": true}})").find("spec.autoscaling.maxReplicas") !=
        std::string::npos);
  CHECK(problems_of(R"({"autoscaling": {"enabled": true, "minReplicas": 5, "maxReplicas": 2}})")
            .find("minReplicas 5 is greater than maxReplicas 2") != std::string::npos);
  CHECK(problems_of(R"({"autoscaling": {"enabled": true, "maxReplicas": 2,
                       "targetInFlightPerPod": 2, "targetUtilization": 50}})")
            .find("not both") != std::string::npos);
  CHECK(problems_of(R"({"replicas": 0, "autoscaling": {"enabled": true, "maxReplicas": 2}})")
            .find("spec.replicas 0") != std::string::npos);
  CHECK(problems_of(R"({"replicas": 0, "autoscaling": {"enabled": false, "maxReplicas": 2}})")
            .empty());
}

TEST_CASE("engine KEDA renders a ScaledObject with the same bounds and target, and no HPA") {
  const auto proxy = with_spec(R"({"autoscaling": {"enabled": true, "engine": "KEDA",
      "maxReplicas": 6, "minReplicas": 2, "targetUtilization": 70,
      "keda": {"prometheusAddress": "http://prometheus.monitoring.svc:9090"},
      "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})");
  CHECK(validate_spec(proxy.spec).empty());
  CHECK_FALSE(render_autoscaler(proxy).has_value());
  const auto scaled = render_scaled_object(proxy);
  REQUIRE(scaled.has_value());
  CHECK(scaled->resource.api_version() == "keda.sh/v1alpha1");
  const auto& spec = scaled->object["spec"];
  CHECK(spec["scaleTargetRef"]["kind"] == "CodexProxy");
  CHECK(spec["minReplicaCount"] == 2);
  CHECK(spec["maxReplicaCount"] == 6);
  const auto& trigger = spec["triggers"][0];
  CHECK(trigger["type"] == "prometheus");
  CHECK(trigger["metricType"] == "AverageValue");
  CHECK(trigger["metadata"]["serverAddress"] == "http://prometheus.monitoring.svc:9090");
  CHECK(trigger["metadata"]["query"] ==
        R"(sum(codex_turns_in_flight{namespace="ns",codexproxy="demo"}))");
  CHECK(trigger["metadata"]["threshold"] == "44.8");  // 70 % of 64 slots
  CHECK(spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
            ["stabilizationWindowSeconds"] == 60);
  CHECK_FALSE(render_scaled_object(with_spec(R"({"autoscaling": {"enabled": true,
      "maxReplicas": 2}})"))
                  .has_value());  // engine HPA
  CHECK(validate_spec(with_spec(R"({"autoscaling": {"enabled": true, "engine": "KEDA",
      "maxReplicas": 2}})")
                          .spec)
            .at(0)
            .find("spec.autoscaling.keda.prometheusAddress") != std::string::npos);
  CHECK(autoscaling_target_decimal(
            with_spec(R"({"autoscaling": {"targetInFlightPerPod": 3}})").spec) == "3");
}
