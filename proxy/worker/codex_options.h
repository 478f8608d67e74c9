#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cxp::proxy {

// The model provider the worker talks to, when the proxy defines one (a custom codex provider with
// the id `codexproxy`). Without a base URL the proxy passes no provider flags and codex uses its
// own configuration (config.toml in CODEX_HOME, or the built-in OpenAI provider with auth.json).
struct ModelProvider {
  static constexpr std::string_view kId = "codexproxy";
  std::string name = "OpenAI-compatible API";
  std::string base_url;
  std::string wire_api = "responses";
  std::string env_key = "OPENAI_API_KEY";  // the variable holding the key, in the worker's env
  bool defined() const { return !base_url.empty(); }
};

// How the worker is started: its executable, its codex configuration and its environment.
struct CodexOptions {
  std::string bin = "codex";
  std::string codex_home;  // CODEX_HOME; empty: codex's default (~/.codex)
  ModelProvider provider;
  std::vector<std::string> overrides;  // "key=value", each passed as `-c key=value`
};

// Codex settings the proxy always passes unless an override names the same key: a pod calls
// nothing but its model (no plugin sync with github.com/chatgpt.com, no analytics).
const std::vector<std::string>& safe_codex_defaults();

// The worker's argv: `<bin> app-server`, then `-c` flags — the safe defaults, the provider, then
// the overrides (a default or provider key that an override sets again is left out). Pure.
std::vector<std::string> worker_command(const CodexOptions& options);

// The worker's environment: `inherited` ("NAME=value" entries) with CODEX_HOME set when configured.
std::vector<std::string> worker_environment(const CodexOptions& options,
                                            const std::vector<std::string>& inherited);

// Parses WORKER_CONFIG_OVERRIDES: one `key=value` per line; blank lines and `#` comments skipped;
// keys are dotted segments of [A-Za-z0-9_-]; at most 64 entries of at most 4096 characters.
// Throws cxp::ConfigError naming `source`.
std::vector<std::string> parse_config_overrides(std::string_view source, std::string_view text);

// `text` as a TOML basic string ("…" with escapes), as codex's -c values expect.
std::string toml_string(std::string_view text);

}  // namespace cxp::proxy
