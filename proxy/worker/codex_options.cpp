#include "proxy/worker/codex_options.h"

#include <algorithm>
#include <cstdio>

#include "common/codex_config.h"
#include "common/config_value.h"

namespace cxp::proxy {
namespace {

constexpr std::size_t kMaxOverrides = 64;
constexpr std::size_t kMaxOverrideLength = 4096;

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
    text.remove_suffix(1);
  return text;
}

std::string key_of(std::string_view assignment) {
  return std::string(trim(assignment.substr(0, assignment.find('='))));
}

}  // namespace

const std::vector<std::string>& safe_codex_defaults() {
  static const std::vector<std::string> defaults = {"features.plugins=false",
                                                    "analytics.enabled=false"};
  return defaults;
}

const std::vector<std::string>& faithful_codex_defaults() {
  static const std::vector<std::string> defaults = {
      "include_permissions_instructions=false", "include_environment_context=false",
      "tools.experimental_request_user_input={enabled=false}", "model_reasoning_summary=\"none\""};
  return defaults;
}

const std::vector<std::string>& builtin_tools_off() {
  static const std::vector<std::string> settings = {
      "features.shell_tool=false",     "features.unified_exec=false",
      "web_search=\"disabled\"",       "features.view_image=false",
      "agents.enabled=false",          "features.goals=false",
      "features.shell_snapshot=false", "skills.include_instructions=false",
      "skills.bundled.enabled=false"};
  return settings;
}

const std::vector<std::string>& reserved_tool_names(bool builtin_tools) {
  static const std::vector<std::string> always = {"exec_command", "request_user_input"};
  static const std::vector<std::string> with_tools = {"exec_command",      "request_user_input",
                                                      "write_stdin",       "shell",
                                                      "apply_patch",       "view_image",
                                                      "web_search",        "update_plan",
                                                      "get_goal",          "create_goal",
                                                      "update_goal",       "spawn_agent",
                                                      "send_input",        "wait",
                                                      "close_agent",       "resume_agent",
                                                      "local_shell",       "js_repl",
                                                      "list_mcp_resources"};
  return builtin_tools ? with_tools : always;
}

const std::vector<std::string>& worker_env_allowlist() {
  static const std::vector<std::string> names = {
      "PATH",        "HOME",          "USER",         "LOGNAME",
      "SHELL",       "LANG",          "LANGUAGE",     "TZ",
      "TMPDIR",      "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS",
      "HTTPS_PROXY", "HTTP_PROXY",    "NO_PROXY",     "ALL_PROXY",
      "https_proxy", "http_proxy",    "no_proxy",     "all_proxy"};
  return names;
}

std::vector<std::string> parse_env_passthrough(std::string_view source, std::string_view text) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = std::min(text.find(',', start), text.size());
    const auto name = trim(text.substr(start, comma - start));
    start = comma + 1;
    if (name.empty()) continue;
    if (!is_env_var_name(name)) {
      throw ConfigError(std::string(source) +
                        ": expected variable names ([A-Za-z_][A-Za-z0-9_]*), "
                        "found '" +
                        std::string(name.substr(0, 64)) + "'");
    }
    if (is_reserved_env_var(name)) {
      throw ConfigError(std::string(source) + ": '" + std::string(name) +
                        "' is a variable of codex-proxy itself; the worker never sees those");
    }
    names.emplace_back(name);
    if (names.size() > 64) {
      throw ConfigError(std::string(source) + ": expected at most 64 names");
    }
  }
  return names;
}

std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

std::vector<std::string> parse_config_overrides(std::string_view source, std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  std::size_t line_number = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find('\n', start), text.size());
    const auto line = trim(text.substr(start, end - start));
    ++line_number;
    start = end + 1;
    if (line.empty() || line.front() == '#') continue;
    const std::string where = std::string(source) + " line " + std::to_string(line_number);
    if (line.size() > kMaxOverrideLength) {
      throw ConfigError(where + ": expected at most " + std::to_string(kMaxOverrideLength) +
                        " characters, found " + std::to_string(line.size()));
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      throw ConfigError(where +
                        ": expected key=value (a codex config key, e.g. "
                        "model_reasoning_effort=\"high\"), found '" +
                        std::string(line.substr(0, 80)) + "'");
    }
    const auto key = trim(line.substr(0, eq));
    const auto value = trim(line.substr(eq + 1));
    if (!is_codex_config_key(key)) {
      throw ConfigError(where + ": expected a dotted key of [A-Za-z0-9_-] segments, found '" +
                        std::string(key.substr(0, 80)) + "'");
    }
    if (value.empty())
      throw ConfigError(where + ": the value of '" + std::string(key) + "' is empty");
    if (std::any_of(value.begin(), value.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\t'; })) {
      throw ConfigError(where + ": the value of '" + std::string(key) +
                        "' contains control characters");
    }
    out.push_back(std::string(key) + "=" + std::string(value));
    if (out.size() > kMaxOverrides) {
      throw ConfigError(std::string(source) + ": expected at most " +
                        std::to_string(kMaxOverrides) + " overrides");
    }
  }
  return out;
}

std::vector<std::string> worker_command(const CodexOptions& options) {
  std::vector<std::string> settings = safe_codex_defaults();
  settings.insert(settings.end(), faithful_codex_defaults().begin(),
                  faithful_codex_defaults().end());
  if (!options.builtin_tools) {
    settings.insert(settings.end(), builtin_tools_off().begin(), builtin_tools_off().end());
  } else {
    // Commands the model runs see only the core variables (HOME, PATH, …), never the model key.
    const std::string key =
        options.provider.defined() ? options.provider.env_key : "OPENAI_API_KEY";
    settings.push_back("shell_environment_policy.inherit=\"core\"");
    settings.push_back("shell_environment_policy.exclude=[" + toml_string(key) +
                       ", \"OPENAI_API_KEY\", \"CODEX_API_KEY\"]");
  }
  if (options.provider.defined()) {
    const auto& p = options.provider;
    const std::string prefix = "model_providers." + std::string(ModelProvider::kId) + ".";
    settings.push_back("model_provider=" + toml_string(ModelProvider::kId));
    settings.push_back(prefix + "name=" + toml_string(p.name));
    settings.push_back(prefix + "base_url=" + toml_string(p.base_url));
    settings.push_back(prefix + "wire_api=" + toml_string(p.wire_api));
    settings.push_back(prefix + "env_key=" + toml_string(p.env_key));
  }
  std::vector<std::string> overridden;
  for (const auto& o : options.overrides) overridden.push_back(key_of(o));
  std::vector<std::string> argv = {options.bin, "app-server"};
  for (const auto& setting : settings) {
    if (std::find(overridden.begin(), overridden.end(), key_of(setting)) != overridden.end())
      continue;
    argv.insert(argv.end(), {"-c", setting});
  }
  for (const auto& o : options.overrides) argv.insert(argv.end(), {"-c", o});
  return argv;
}

std::vector<std::string> worker_environment(const CodexOptions& options,
                                            const std::vector<std::string>& inherited) {
  std::vector<std::string> allowed = worker_env_allowlist();
  if (options.provider.defined()) {
    allowed.push_back(options.provider.env_key);
  } else {  // codex's own provider configuration: the variables codex reads for a key
    allowed.insert(allowed.end(), {"OPENAI_API_KEY", "CODEX_API_KEY"});
  }
  allowed.insert(allowed.end(), options.env_passthrough.begin(), options.env_passthrough.end());
  std::vector<std::string> env;
  for (const auto& entry : inherited) {
    const auto name = std::string_view(entry).substr(0, entry.find('='));
    const bool locale = name.rfind("LC_", 0) == 0;
    const bool home = name == "CODEX_HOME";
    if (home ? options.codex_home.empty()
             : locale || std::find(allowed.begin(), allowed.end(), name) != allowed.end()) {
      env.push_back(entry);
    }
  }
  if (!options.codex_home.empty()) env.push_back("CODEX_HOME=" + options.codex_home);
  return env;
}

}  // namespace cxp::proxy
