#include "common/codex_config.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace cxp {
namespace {

bool is_word(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

}  // namespace

bool is_http_url(std::string_view url) {
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return false;
  }
  const auto host_end = std::min(rest.find('/'), rest.size());
  if (host_end == 0 || rest.substr(0, host_end).find_first_of("?#@") != std::string_view::npos)
    return false;
  return url.size() <= 2048 && std::none_of(url.begin(), url.end(), [](char c) {
           return static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == '\\' || c == 0x7f;
         });
}

bool is_codex_config_key(std::string_view key) {
  if (key.empty() || key.size() > 256 || key.front() == '.' || key.back() == '.') return false;
  char previous = '.';
  for (const char c : key) {
    if (!is_word(c) && !(c == '.' && previous != '.')) return false;
    previous = c;
  }
  return true;
}

bool is_env_var_name(std::string_view name) {
  return !name.empty() && name.size() <= 128 &&
         (std::isalpha(static_cast<unsigned char>(name.front())) != 0 || name.front() == '_') &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
         });
}

bool is_reserved_env_var(std::string_view name) {
  static constexpr std::array<std::string_view, 5> kPrefixes = {"PROXY_", "WORKER_", "CODEX_",
                                                                "POD_", "KUBERNETES_"};
  return name == "PORT" || name == "CODEXPROXY_NAME" ||
         std::any_of(kPrefixes.begin(), kPrefixes.end(),
                     [&](std::string_view prefix) { return name.rfind(prefix, 0) == 0; });
}

}  // namespace cxp
