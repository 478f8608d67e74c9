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
  // Codex's own tools (shell, web search, image viewing, sub-agents, goals). Off: the model is
  // offered only the caller's functions.
  bool builtin_tools = false;
  std::vector<std::string> env_passthrough;  // more variable names the worker may see
};

// Codex settings the proxy always passes unless an override names the same key: a pod calls
// nothing but its model (no plugin sync with github.com/chatgpt.com, no analytics).
const std::vector<std::string>& safe_codex_defaults();

// Codex settings that keep codex's own text away from the model, passed unless an override names
// the same key: no permissions message (sandbox, approval policy), no environment context (the
// pod's cwd, shell, date, time zone), no request_user_input tool (nobody could answer it), and no
// reasoning summary unless the caller asks for one. Measured with codex 0.169.0
// (docs/api.md, "What the model receives").
const std::vector<std::string>& faithful_codex_defaults();

// The settings that take codex's built-in tools away from the model (passed while
// `builtin_tools` is off): no shell or exec, no web search, no image viewing, no sub-agents, no
// goals, no skills catalogue, and no login shell per thread (the shell snapshot).
const std::vector<std::string>& builtin_tools_off();

// Tool names codex keeps for itself: a caller's function of such a name never reaches the caller
// (codex answers the model "unsupported call"), so it is offered to the model under another name.
// Measured with codex 0.169.0; more names are taken while the built-in tools are on.
const std::vector<std::string>& reserved_tool_names(bool builtin_tools);

// Variables the worker inherits besides the model key and WORKER_ENV_PASSTHROUGH: what a process
// needs to run and reach its model (PATH, HOME, locale, time zone, temp dir, TLS trust, an egress
// proxy). Never the proxy's secrets, never anything of Kubernetes.
const std::vector<std::string>& worker_env_allowlist();

// The worker's argv: `<bin> app-server`, then `-c` flags — the safe defaults, the provider, then
// the overrides (a default or provider key that an override sets again is left out). Pure.
std::vector<std::string> worker_command(const CodexOptions& options);

// The worker's environment, an allow-list: of `inherited` ("NAME=value" entries) only the
// variables of worker_env_allowlist(), LC_*, the model key (the provider's env_key, or
// OPENAI_API_KEY and CODEX_API_KEY without a provider) and `env_passthrough`; CODEX_HOME set when
// configured. Pure.
std::vector<std::string> worker_environment(const CodexOptions& options,
                                            const std::vector<std::string>& inherited);

// Parses WORKER_ENV_PASSTHROUGH: comma-separated variable names, none of codex-proxy's own
// (PROXY_*, WORKER_*, POD_*, KUBERNETES_*, …). Throws cxp::ConfigError naming `source`.
std::vector<std::string> parse_env_passthrough(std::string_view source, std::string_view text);

// Parses WORKER_CONFIG_OVERRIDES: one `key=value` per line; blank lines and `#` comments skipped;
// keys are dotted segments of [A-Za-z0-9_-]; at most 64 entries of at most 4096 characters.
// Throws cxp::ConfigError naming `source`.
std::vector<std::string> parse_config_overrides(std::string_view source, std::string_view text);

// `text` as a TOML basic string ("…" with escapes), as codex's -c values expect.
std::string toml_string(std::string_view text);

}  // namespace cxp::proxy
