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
  std::vector<std::string> env;
  env.reserve(inherited.size() + 1);
  for (const auto& entry : inherited) {
    if (!options.codex_home.empty() && entry.rfind("CODEX_HOME=", 0) == 0) continue;
    env.push_back(entry);
  }
  if (!options.codex_home.empty()) env.push_back("CODEX_HOME=" + options.codex_home);
  return env;
}

}  // namespace cxp::proxy
