#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/pod_heartbeat.h"
#include "common/settings_table.h"
#include "common/telemetry/json_log.h"
#include "proxy/worker/codex_options.h"

namespace cxp::proxy {

// Every setting of codex-proxy. Defaults are the documented ones (docs/configuration.md).
struct ProxyConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 11435;      // the OpenAI API (/v1/*)
  std::uint16_t ops_port = 11436;  // probes, /metrics, /internal/*
  std::string api_key;
  CodexOptions codex;  // the worker: executable, CODEX_HOME, model provider, config overrides
  std::string worker_auth_json;  // a ChatGPT login's auth.json, copied into CODEX_HOME at start
  // The model key: the value of the provider's env_key variable at startup. Not a setting: kept
  // only so that it is redacted from every log line, trace file and error message.
  std::string model_credential;
  std::string codex_model = "gpt-5";
  std::vector<std::string> model_aliases;  // other names clients may use for codex_model
  bool maintenance = false;
  bool enable_metrics = true;
  std::string metrics_token;
  std::string admin_token;
  // Credentials from files, re-read while running (mounted Secret keys; proxy/access/).
  std::string api_key_file;
  std::string api_keys_file;
  std::string admin_token_file;
  std::string metrics_token_file;
  std::chrono::milliseconds secret_files_poll{1000};
  std::chrono::seconds token_rotation_grace{300};
  std::chrono::milliseconds sse_keepalive{15000};
  std::uint32_t worker_max_concurrency = settings::kMaxConcurrency.env_default();
  std::chrono::milliseconds worker_request_timeout{settings::kRequestTimeoutSeconds.env_default()};
  std::chrono::milliseconds worker_handshake_timeout{15000};
  std::chrono::milliseconds worker_startup_timeout{10000};
  std::chrono::milliseconds worker_backoff_initial{settings::kBackoffInitialMs.env_default()};
  std::chrono::milliseconds worker_backoff_max{settings::kBackoffMaxMs.env_default()};
  std::chrono::milliseconds worker_shutdown_grace{settings::kDrainSeconds.env_default()};
  std::uint32_t worker_restart_max = 10;
  std::chrono::milliseconds worker_stable_after{30000};
  // A worker's bounded lifetime: recycled (a warm successor takes over) after this many turns or
  // once its process tree uses this much memory. Defaults from measurement (docs/benchmarks.md).
  std::uint32_t worker_max_turns = settings::kMaxTurns.env_default();
  std::uint32_t worker_max_rss_mb = settings::kMaxRssMb.env_default();
  bool trace_buffer = false;
  std::string trace_dir = ".codex-api/trace-buffer";
  std::chrono::seconds trace_ttl{settings::kTraceTtlSeconds.env_default()};
  std::uint32_t trace_max_files = settings::kTraceMaxFiles.env_default();
  std::uint64_t max_body_bytes = 16 * 1024 * 1024;  // room for images (max_image_bytes, base64)
  std::size_t max_images = 16;
  std::size_t max_image_bytes = 8 * 1024 * 1024;
  // The model's instructions when a request has no system or developer message.
  std::string default_instructions;
  std::uint32_t queue_max = 64;
  std::chrono::milliseconds queue_timeout{30000};
  int maintenance_retry_after_s = settings::kRetryAfterSeconds.env_default();
  telemetry::LogLevel log_level = telemetry::LogLevel::kInfo;
  // In Kubernetes: report into the CodexProxy's status and watch its settings (all three set) —
  // the controller's Deployment sets them. Empty kubeconfig: the in-cluster config.
  std::string pod_name;
  std::string pod_namespace;
  std::string codexproxy_name;
  std::string pod_uid;  // owner of the heartbeat Lease (garbage-collected with the pod)
  std::chrono::seconds heartbeat{kDefaultHeartbeat};
  std::string kubeconfig;
  bool reports_to_cluster() const { return !codexproxy_name.empty(); }
  // The model names requests may use: CODEX_MODEL, then its aliases.
  std::vector<std::string> served_models() const;

  // Secrets to redact from every log line and trace file (those known at start; the files' are
  // added as they are read).
  std::vector<std::string> secrets() const;
};

// One setting: its environment variable, its key in the YAML file, and how to apply a value.
struct SettingSpec {
  std::string_view env;
  std::string_view yaml_key;  // dotted path, e.g. "worker.backoff.initialMs"
  std::string_view description;
  std::function<void(ProxyConfig&, std::string_view source, std::string_view text)> apply;
};

// The table of all settings (docs are checked against it by a test).
const std::vector<SettingSpec>& proxy_settings();

// Loads defaults, then the YAML file (if `config_path` is set), then the environment (read through
// `getenv`). Throws cxp::ConfigError naming the variable or key on any bad value.
ProxyConfig load_proxy_config(const std::optional<std::string>& config_path,
                              const std::function<const char*(const char*)>& getenv);
// Checks settings that depend on each other; throws cxp::ConfigError naming them.
void validate_proxy_config(const ProxyConfig& config);

}  // namespace cxp::proxy
