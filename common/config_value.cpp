#include "common/config_value.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/utf8.h"

namespace cxp {

// A bad value is quoted in its error, but only so much of it (a ConfigMap value may be 1 MiB).
constexpr std::size_t kQuotedValueBytes = 64;
namespace {

std::string trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return std::string(text);
}

}  // namespace

std::int64_t parse_integer(std::string_view source, std::string_view text, std::int64_t min,
                           std::int64_t max) {
  const std::string value = trimmed(text);
  std::int64_t parsed = 0;
  const auto* first = value.data();
  const auto* last = value.data() + value.size();
  const auto [end, ec] = std::from_chars(first, last, parsed);
  if (value.empty() || ec != std::errc{} || end != last) {
    throw ConfigError(std::string(source) + ": expected an integer, found '" +
                      utf8_prefix(text, kQuotedValueBytes) + "'");
  }
  if (parsed < min || parsed > max) {
    throw ConfigError(std::string(source) + ": expected a value between " + std::to_string(min) +
                      " and " + std::to_string(max) + ", found " + std::to_string(parsed));
  }
  return parsed;
}

bool parse_boolean(std::string_view source, std::string_view text) {
  std::string value = trimmed(text);
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  throw ConfigError(std::string(source) + ": expected true or false, found '" +
                    utf8_prefix(text, kQuotedValueBytes) + "'");
}

}  // namespace cxp
