#include "proxy/proxy_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <limits>

#include "common/codex_config.h"
#include "common/config_value.h"

namespace cxp::proxy {
namespace {

using std::chrono::milliseconds;
constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

template <typename Member>
SettingSpec ms_setting(std::string_view env, std::string_view key, std::string_view description,
                       Member member, std::int64_t min, std::int64_t max) {
  return {env, key, description,
          [member, min, max](ProxyConfig& c, std::string_view source, std::string_view text) {
            c.*member = milliseconds{parse_integer(source, text, min, max)};
          }};
}

template <typename Member>
SettingSpec seconds_setting(std::string_view env, std::string_view key,
                            std::string_view description, Member member, std::int64_t min,
                            std::int64_t max) {
  return {env, key, description,
          [member, min, max](ProxyConfig& c, std::string_view source, std::string_view text) {
            c.*member = std::chrono::seconds{parse_integer(source, text, min, max)};
          }};
}

template <typename Member>
SettingSpec uint_setting(std::string_view env, std::string_view key, std::string_view description,
                         Member member, std::int64_t min, std::int64_t max) {
  return {env, key, description,
          [member, min, max](ProxyConfig& c, std::string_view source, std::string_view text) {
            using T = std::remove_reference_t<decltype(c.*member)>;
            c.*member = static_cast<T>(parse_integer(source, text, min, max));
          }};
}

SettingSpec bool_setting(std::string_view env, std::string_view key, std::string_view description,
                         bool ProxyConfig::*member) {
  return {env, key, description,
          [member](ProxyConfig& c, std::string_view source, std::string_view text) {
            c.*member = parse_boolean(source, text);
          }};
}

SettingSpec string_setting(std::string_view env, std::string_view key, std::string_view description,
                           std::string ProxyConfig::*member, bool allow_empty) {
  return {env, key, description,
          [member, allow_empty](ProxyConfig& c, std::string_view source, std::string_view text) {
            if (!allow_empty && text.empty()) {
              throw ConfigError(std::string(source) + ": expected a non-empty value");
            }
            c.*member = std::string(text);
          }};
}

// A text setting stored where `field` points.
SettingSpec text_setting(std::string_view env, std::string_view key, std::string_view description,
                         std::string& (*field)(ProxyConfig&), bool allow_empty) {
  return {env, key, description,
          [field, allow_empty](ProxyConfig& c, std::string_view source, std::string_view text) {
            if (!allow_empty && text.empty()) {
              throw ConfigError(std::string(source) + ": expected a non-empty value");
            }
            field(c) = std::string(text);
          }};
}

// A model key must live in a variable of its own: never one the proxy reads or keeps a secret in.
std::string parse_env_key(std::string_view source, std::string_view text) {
  if (!is_env_var_name(text)) {
    throw ConfigError(std::string(source) +
                      ": expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), found '" +
                      std::string(text.substr(0, 64)) + "'");
  }
  if (is_reserved_env_var(text)) {
    throw ConfigError(std::string(source) + ": '" + std::string(text) +
                      "' is a variable of codex-proxy itself (PROXY_*, WORKER_*, CODEX_*, POD_*, "
                      "PORT); name the variable of the model key");
  }
  return std::string(text);
}

std::vector<SettingSpec> build_settings() {
  std::vector<SettingSpec> s;
  s.push_back(uint_setting("PORT", "port", "TCP port of the OpenAI API, /v1/* (0 = any free port)",
                           &ProxyConfig::port, 0, 65535));
  s.push_back(uint_setting("PROXY_OPS_PORT", "opsPort",
                           "TCP port of the probes, /metrics and /internal/* (0 = any free port); "
                           "never the API's port",
                           &ProxyConfig::ops_port, 0, 65535));
  s.push_back(string_setting("PROXY_HOST", "host", "address the HTTP server binds",
                             &ProxyConfig::host, false));
  s.push_back(string_setting("PROXY_API_KEY", "apiKey", "bearer token required on /v1/*",
                             &ProxyConfig::api_key, true));
  s.push_back(text_setting(
      "CODEX_BIN", "worker.bin", "worker executable; the proxy runs `$CODEX_BIN app-server`",
      [](ProxyConfig& c) -> std::string& { return c.codex.bin; }, false));
  s.push_back(text_setting(
      "CODEX_HOME", "worker.codexHome",
      "the worker's writable state directory (created if missing; its config.toml is honoured)",
      [](ProxyConfig& c) -> std::string& { return c.codex.codex_home; }, true));
  s.push_back({"WORKER_CONFIG_OVERRIDES", "worker.configOverrides",
               "codex config overrides, one `key=value` per line, passed as `-c key=value`",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 c.codex.overrides = parse_config_overrides(source, text);
               }});
  s.push_back(text_setting(
      "WORKER_PROVIDER_NAME", "worker.provider.name", "display name of the model provider",
      [](ProxyConfig& c) -> std::string& { return c.codex.provider.name; }, false));
  s.push_back({"WORKER_PROVIDER_BASE_URL", "worker.provider.baseURL",
               "base URL of the model provider's Responses API; set: the worker uses this "
               "provider, empty: codex's own configuration",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 if (!text.empty() && !is_http_url(text)) {
                   throw ConfigError(std::string(source) +
                                     ": expected an http:// or https:// URL with a host, found '" +
                                     std::string(text.substr(0, 200)) + "'");
                 }
                 c.codex.provider.base_url = std::string(text);
               }});
  s.push_back({"WORKER_PROVIDER_WIRE_API", "worker.provider.wireAPI",
               "wire API of the model provider (codex supports `responses` only)",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 if (text != "responses") {
                   throw ConfigError(std::string(source) +
                                     ": expected 'responses' (the only wire "
                                     "API codex supports), found '" +
                                     std::string(text.substr(0, 64)) + "'");
                 }
                 c.codex.provider.wire_api = std::string(text);
               }});
  s.push_back({"WORKER_PROVIDER_ENV_KEY", "worker.provider.envKey",
               "environment variable holding the model provider's API key",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 c.codex.provider.env_key = parse_env_key(source, text);
               }});
  s.push_back({"WORKER_BUILTIN_TOOLS", "worker.builtinTools",
               "offer the model codex's own tools (shell, web search, …); off: only the caller's "
               "functions",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 c.codex.builtin_tools = parse_boolean(source, text);
               }});
  s.push_back({"WORKER_ENV_PASSTHROUGH", "worker.envPassthrough",
               "comma-separated variables the worker may see besides its allow-list",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 c.codex.env_passthrough = parse_env_passthrough(source, text);
               }});
  s.push_back(text_setting(
      "WORKER_AUTH_JSON", "worker.authJson",
      "a ChatGPT login's auth.json, copied into CODEX_HOME at start",
      [](ProxyConfig& c) -> std::string& { return c.worker_auth_json; }, true));
  s.push_back(string_setting("CODEX_MODEL", "worker.model", "model the worker uses",
                             &ProxyConfig::codex_model, false));
  s.push_back({"PROXY_MODEL_ALIASES", "worker.modelAliases",
               "comma-separated names also accepted for CODEX_MODEL and listed in /v1/models",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 c.model_aliases.clear();
                 std::size_t start = 0;
                 while (start <= text.size()) {
                   const auto comma = std::min(text.find(',', start), text.size());
                   auto name = text.substr(start, comma - start);
                   while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
                   while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
                   if (name.size() > 128) {
                     throw ConfigError(std::string(source) +
                                       ": model names are at most 128 characters");
                   }
                   if (!name.empty()) c.model_aliases.emplace_back(name);
                   start = comma + 1;
                 }
                 if (c.model_aliases.size() > 64) {
                   throw ConfigError(std::string(source) + ": at most 64 aliases, found " +
                                     std::to_string(c.model_aliases.size()));
                 }
               }});
  s.push_back(bool_setting("PROXY_MAINTENANCE_MODE", "maintenance.enabled",
                           "start in maintenance mode", &ProxyConfig::maintenance));
  s.push_back(bool_setting("PROXY_ENABLE_METRICS", "metrics.enabled", "serve /metrics",
                           &ProxyConfig::enable_metrics));
  s.push_back(string_setting("PROXY_METRICS_TOKEN", "metrics.token",
                             "bearer token required on /metrics", &ProxyConfig::metrics_token,
                             true));
  s.push_back(string_setting("PROXY_ADMIN_TOKEN", "adminToken",
                             "bearer token for /internal/maintenance", &ProxyConfig::admin_token,
                             true));
  s.push_back(string_setting("PROXY_API_KEY_FILE", "apiKeyFile",
                             "a file holding the key named `default` (instead of PROXY_API_KEY), "
                             "re-read when it changes",
                             &ProxyConfig::api_key_file, true));
  s.push_back(string_setting("PROXY_API_KEYS_FILE", "apiKeysFile",
                             "a YAML or JSON file of named API keys with limits and models, "
                             "re-read when it changes",
                             &ProxyConfig::api_keys_file, true));
  s.push_back(string_setting("PROXY_ADMIN_TOKEN_FILE", "adminTokenFile",
                             "a file holding the admin token (instead of PROXY_ADMIN_TOKEN), "
                             "re-read when it changes",
                             &ProxyConfig::admin_token_file, true));
  s.push_back(string_setting("PROXY_METRICS_TOKEN_FILE", "metrics.tokenFile",
                             "a file holding the metrics token (instead of PROXY_METRICS_TOKEN), "
                             "re-read when it changes",
                             &ProxyConfig::metrics_token_file, true));
  s.push_back(seconds_setting("PROXY_TOKEN_ROTATION_GRACE_S", "secretFiles.tokenGraceSeconds",
                              "after the admin or metrics token file changes, its previous token "
                              "is still accepted this long",
                              &ProxyConfig::token_rotation_grace, 0, 86400));
  s.push_back(ms_setting("PROXY_SECRET_FILES_POLL_MS", "secretFiles.pollMs",
                         "how often the credential files are checked for a new content",
                         &ProxyConfig::secret_files_poll, 100, 600000));
  s.push_back(ms_setting("PROXY_SSE_KEEPALIVE_MS", "sse.keepaliveMs",
                         "interval of `: keepalive` comments on silent streams",
                         &ProxyConfig::sse_keepalive, 100, kDayMs));
  s.push_back(uint_setting("WORKER_MAX_CONCURRENCY", "worker.maxConcurrency",
                           "turns in flight on the worker at once",
                           &ProxyConfig::worker_max_concurrency, 1, 1024));
  s.push_back(ms_setting("WORKER_REQUEST_TIMEOUT_MS", "worker.requestTimeoutMs",
                         "a request's time limit on the worker (504 after it)",
                         &ProxyConfig::worker_request_timeout, 1, kDayMs));
  s.push_back(ms_setting("WORKER_HANDSHAKE_TIMEOUT_MS", "worker.handshakeTimeoutMs",
                         "`initialize` must answer within this, or the worker is restarted",
                         &ProxyConfig::worker_handshake_timeout, 1, kDayMs));
  s.push_back(ms_setting("WORKER_STARTUP_TIMEOUT_MS", "worker.startupTimeoutMs",
                         "spawn → exec confirmed must finish within this",
                         &ProxyConfig::worker_startup_timeout, 1, kDayMs));
  s.push_back(ms_setting("WORKER_BACKOFF_INITIAL_MS", "worker.backoff.initialMs",
                         "first restart delay", &ProxyConfig::worker_backoff_initial, 1, kDayMs));
  s.push_back(ms_setting("WORKER_BACKOFF_MAX_MS", "worker.backoff.maxMs", "restart delay cap",
                         &ProxyConfig::worker_backoff_max, 1, kDayMs));
  s.push_back(ms_setting("WORKER_SHUTDOWN_GRACE_MS", "worker.shutdownGraceMs",
                         "on SIGTERM, how long in-flight work may finish",
                         &ProxyConfig::worker_shutdown_grace, 0, kDayMs));
  s.push_back(uint_setting("WORKER_RESTART_MAX", "worker.restartMax",
                           "consecutive failures before giving up (0 = never)",
                           &ProxyConfig::worker_restart_max, 0, 1000000));
  s.push_back(uint_setting("WORKER_MAX_TURNS", "worker.maxTurns",
                           "turns after which the worker is recycled (a warm successor takes over)",
                           &ProxyConfig::worker_max_turns, 1, 1000000));
  s.push_back(uint_setting("WORKER_MAX_RSS_MB", "worker.maxRssMB",
                           "memory (MiB, the worker's process tree) at which it is recycled",
                           &ProxyConfig::worker_max_rss_mb, 64, 1024 * 1024));
  s.push_back(ms_setting("WORKER_STABLE_MS", "worker.stableMs",
                         "ready this long → the restart streak and backoff reset",
                         &ProxyConfig::worker_stable_after, 1, kDayMs));
  s.push_back(bool_setting("PROXY_TRACE_BUFFER", "traceBuffer.enabled",
                           "write one redacted trace file per request",
                           &ProxyConfig::trace_buffer));
  s.push_back(string_setting("PROXY_TRACE_DIR", "traceBuffer.dir", "directory of trace files",
                             &ProxyConfig::trace_dir, false));
  s.push_back(seconds_setting("PROXY_TRACE_TTL_S", "traceBuffer.ttlSeconds",
                              "trace files older than this are pruned", &ProxyConfig::trace_ttl, 1,
                              365LL * 86400));
  s.push_back(uint_setting("PROXY_TRACE_MAX_FILES", "traceBuffer.maxFiles",
                           "trace files kept at most", &ProxyConfig::trace_max_files, 1, 1000000));
  s.push_back(uint_setting("PROXY_MAX_BODY_BYTES", "maxBodyBytes", "largest request body accepted",
                           &ProxyConfig::max_body_bytes, 1024, 64LL * 1024 * 1024));
  s.push_back(uint_setting("PROXY_MAX_IMAGES", "images.maxPerRequest",
                           "images one request may carry (0: images refused)",
                           &ProxyConfig::max_images, 0, 1000));
  s.push_back(uint_setting("PROXY_MAX_IMAGE_BYTES", "images.maxBytes",
                           "decoded bytes of all images of one request",
                           &ProxyConfig::max_image_bytes, 0, 64LL * 1024 * 1024));
  s.push_back(string_setting("WORKER_DEFAULT_INSTRUCTIONS", "worker.defaultInstructions",
                             "the model's instructions when a request has no system or developer "
                             "message (empty: none; never codex's own prompt)",
                             &ProxyConfig::default_instructions, true));
  s.push_back(uint_setting("PROXY_QUEUE_MAX", "queue.max",
                           "requests waiting for a worker slot at most (beyond: 429)",
                           &ProxyConfig::queue_max, 0, 100000));
  s.push_back(ms_setting("PROXY_QUEUE_TIMEOUT_MS", "queue.timeoutMs",
                         "longest wait for a worker slot (then 429)", &ProxyConfig::queue_timeout,
                         1, kDayMs));
  s.push_back(uint_setting("PROXY_MAINTENANCE_RETRY_AFTER_S", "maintenance.retryAfterSeconds",
                           "Retry-After of the 503 answers during maintenance",
                           &ProxyConfig::maintenance_retry_after_s, 0, 86400));
  s.push_back(
      string_setting("POD_NAME", "kubernetes.podName",
                     "this pod's name (downward API); with POD_NAMESPACE and CODEXPROXY_NAME "
                     "the proxy reports into the CodexProxy's status and applies its live "
                     "settings",
                     &ProxyConfig::pod_name, true));
  s.push_back(string_setting("POD_NAMESPACE", "kubernetes.podNamespace",
                             "this pod's namespace (downward API)", &ProxyConfig::pod_namespace,
                             true));
  s.push_back(string_setting("CODEXPROXY_NAME", "kubernetes.codexProxyName",
                             "the CodexProxy this pod belongs to (its ConfigMap is "
                             "`<name>-settings`)",
                             &ProxyConfig::codexproxy_name, true));
  s.push_back(string_setting("POD_UID", "kubernetes.podUid",
                             "this pod's UID (downward API): the owner of its heartbeat Lease, "
                             "which is then deleted with the pod",
                             &ProxyConfig::pod_uid, true));
  s.push_back(seconds_setting("PROXY_HEARTBEAT_S", "kubernetes.heartbeatSeconds",
                              "how often the pod renews its heartbeat Lease; the controller counts "
                              "its report stale after three missed heartbeats",
                              &ProxyConfig::heartbeat, 1, 3600));
  s.push_back(string_setting("PROXY_KUBECONFIG", "kubernetes.kubeconfig",
                             "kubeconfig for the heartbeat Lease and settings watch; empty: the "
                             "in-cluster ServiceAccount",
                             &ProxyConfig::kubeconfig, true));
  s.push_back({"PROXY_LOG_LEVEL", "log.level", "debug, info, warn or error",
               [](ProxyConfig& c, std::string_view source, std::string_view text) {
                 c.log_level = telemetry::parse_log_level(source, text);
               }});
  return s;
}

YAML::Node lookup(const YAML::Node& root, std::string_view dotted) {
  YAML::Node node = YAML::Clone(root);
  std::size_t start = 0;
  while (start <= dotted.size()) {
    const auto end = dotted.find('.', start);
    const std::string part(
        dotted.substr(start, end == std::string_view::npos ? dotted.npos : end - start));
    if (!node.IsMap() || !node[part]) return YAML::Node(YAML::NodeType::Undefined);
    node = node[part];
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return node;
}

void apply_yaml(ProxyConfig& config, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--config " + path + ": cannot read YAML: " + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap())
    throw ConfigError("--config " + path + ": expected a mapping at the top level");
  for (const auto& spec : proxy_settings()) {
    const YAML::Node node = lookup(root, spec.yaml_key);
    if (!node.IsDefined() || node.IsNull()) continue;
    const std::string source = path + ": " + std::string(spec.yaml_key);
    if (!node.IsScalar()) throw ConfigError(source + ": expected a scalar value");
    spec.apply(config, source, node.Scalar());
  }
}

}  // namespace

void validate_proxy_config(const ProxyConfig& c) {
  const bool any = !c.pod_name.empty() || !c.pod_namespace.empty() || !c.codexproxy_name.empty();
  if (any && (c.pod_name.empty() || c.pod_namespace.empty() || c.codexproxy_name.empty())) {
    throw ConfigError(
        "POD_NAME, POD_NAMESPACE and CODEXPROXY_NAME: expected all three or none, found "
        "POD_NAME='" +
        c.pod_name + "' POD_NAMESPACE='" + c.pod_namespace + "' CODEXPROXY_NAME='" +
        c.codexproxy_name + "'");
  }
  if (!c.worker_auth_json.empty() && c.codex.codex_home.empty()) {
    throw ConfigError(
        "WORKER_AUTH_JSON: requires CODEX_HOME (the writable directory the auth.json "
        "is copied into)");
  }
  if (c.ops_port != 0 && c.ops_port == c.port) {
    throw ConfigError("PROXY_OPS_PORT: expected a port other than PORT (" + std::to_string(c.port) +
                      "): the probes, /metrics and /internal/* are served apart from the API");
  }
  if (c.worker_backoff_max < c.worker_backoff_initial) {
    throw ConfigError("WORKER_BACKOFF_MAX_MS: expected a value >= WORKER_BACKOFF_INITIAL_MS (" +
                      std::to_string(c.worker_backoff_initial.count()) + "), found " +
                      std::to_string(c.worker_backoff_max.count()));
  }
}

std::vector<std::string> ProxyConfig::served_models() const {
  std::vector<std::string> models{codex_model};
  for (const auto& alias : model_aliases) {
    if (std::find(models.begin(), models.end(), alias) == models.end()) models.push_back(alias);
  }
  return models;
}

std::vector<std::string> ProxyConfig::secrets() const {
  std::vector<std::string> out;
  for (const auto* secret : {&api_key, &metrics_token, &admin_token, &model_credential}) {
    if (!secret->empty()) out.push_back(*secret);
  }
  return out;
}

const std::vector<SettingSpec>& proxy_settings() {
  static const std::vector<SettingSpec> settings = build_settings();
  return settings;
}

ProxyConfig load_proxy_config(const std::optional<std::string>& config_path,
                              const std::function<const char*(const char*)>& getenv) {
  ProxyConfig config;
  if (config_path) apply_yaml(config, *config_path);
  for (const auto& spec : proxy_settings()) {
    const std::string name(spec.env);
    if (const char* value = getenv(name.c_str()); value != nullptr) {
      spec.apply(config, name, value);
    }
  }
  if (const char* key = getenv(config.codex.provider.env_key.c_str()); key != nullptr) {
    config.model_credential = key;
  }
  validate_proxy_config(config);
  return config;
}

}  // namespace cxp::proxy
