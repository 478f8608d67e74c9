#include "controller/codexproxy_spec.h"

#include <regex>

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
  try {
    out = found->get<T>();
  } catch (const json::exception&) {
    problems.push_back(path + "." + key + ": expected " +
                       (std::is_same_v<T, bool>          ? "a boolean"
                        : std::is_same_v<T, std::string> ? "a string"
                                                         : "an integer") +
                       ", found " + found->dump());
  }
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

}  // namespace

CodexProxy parse_codexproxy(const json& object, std::vector<std::string>& problems) {
  CodexProxy proxy;
  const auto& metadata = child(object, "metadata");
  proxy.name = metadata.value("name", "");
  proxy.namespace_name = metadata.value("namespace", "");
  proxy.uid = metadata.value("uid", "");
  proxy.generation = metadata.value("generation", std::int64_t{0});
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
  read(child(spec, "metrics"), "enabled", out.metrics_enabled, "spec.metrics", problems);
  read(child(spec, "apiKeySecret"), "name", out.api_key_secret.name, "spec.apiKeySecret", problems);
  read(child(spec, "apiKeySecret"), "key", out.api_key_secret.key, "spec.apiKeySecret", problems);
  read(child(spec, "adminTokenSecret"), "name", out.admin_token_secret.name,
       "spec.adminTokenSecret", problems);
  read(child(spec, "adminTokenSecret"), "key", out.admin_token_secret.key, "spec.adminTokenSecret",
       problems);
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
  if (spec.backoff_initial_ms > spec.backoff_max_ms) {
    problems.push_back("spec.worker.backoff: initialMs " + std::to_string(spec.backoff_initial_ms) +
                       " is greater than maxMs " + std::to_string(spec.backoff_max_ms));
  }
  return problems;
}

}  // namespace cxp::controller
