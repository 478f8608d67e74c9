#include "common/telemetry/redaction.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>

namespace cxp::telemetry {
namespace {

constexpr std::size_t kMinSecretLength = 4;
constexpr std::size_t kMinKeyBodyLength = 8;

// Keys whose values run to the end of the line when unquoted (HTTP header style).
constexpr std::array<std::string_view, 4> kHeaderKeys = {"proxy_authorization", "authorization",
                                                         "set_cookie", "cookie"};
// Keys whose unquoted values end at whitespace or a separator (query string / JSON / env style).
constexpr std::array<std::string_view, 15> kValueKeys = {
    "x_api_key", "api_key",       "apikey",      "access_token", "refresh_token",
    "id_token",  "client_secret", "secret",      "password",     "passwd",
    "token",     "auth_token",    "private_key", "credentials",  "bearer_token"};
constexpr std::array<std::string_view, 5> kCredentialSuffixes = {"_token", "_secret", "_password",
                                                                 "_api_key", "_apikey"};

// Lower case, `-` as `_`.
std::string normalized_key(std::string_view key) {
  std::string out(key);
  for (auto& c : out)
    c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_header_key(std::string_view normalized) {
  return std::find(kHeaderKeys.begin(), kHeaderKeys.end(), normalized) != kHeaderKeys.end();
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.' ||
         c == '~' || c == '+' || c == '/' || c == '=';
}

bool starts_with_nocase(std::string_view text, std::size_t at, std::string_view word) {
  if (text.size() - at < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[at + i])) != word[i]) return false;
  }
  return true;
}

void replace_all(std::string& text, std::string_view needle) {
  if (needle.size() < kMinSecretLength) return;
  std::size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string::npos) {
    text.replace(pos, needle.size(), Redactor::kMask);
    pos += Redactor::kMask.size();
  }
}

// If a credential key (a whole word) starts at `at`, returns its length; otherwise 0.
std::size_t credential_key_at(std::string_view text, std::size_t at, bool& header_style) {
  if (at > 0 && is_word_char(text[at - 1])) return 0;
  std::size_t end = at;
  while (end < text.size() && is_word_char(text[end]) && end - at <= 64) ++end;
  if (end == at || end - at > 64) return 0;
  const auto key = normalized_key(text.substr(at, end - at));
  if (!Redactor::is_credential_key(key)) return 0;
  header_style = is_header_key(key);
  return end - at;
}

// Given the position right after a key, finds the value span that follows `:` or `=`.
// Returns false when the key is not followed by an assignment.
bool value_span(std::string_view text, std::size_t after_key, bool header_style, std::size_t& begin,
                std::size_t& end) {
  std::size_t i = after_key;
  if (i < text.size() && (text[i] == '"' || text[i] == '\'')) ++i;  // closing quote of a JSON key
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  if (i >= text.size() || (text[i] != ':' && text[i] != '=')) return false;
  ++i;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  if (i < text.size() && (text[i] == '"' || text[i] == '\'')) {
    const char quote = text[i];
    begin = ++i;
    while (i < text.size() && text[i] != quote)
      i += (text[i] == '\\' && i + 1 < text.size()) ? 2 : 1;
    end = std::min(i, text.size());
    return end > begin;
  }
  begin = i;
  if (header_style) {
    while (i < text.size() && text[i] != '\n' && text[i] != '\r') ++i;
  } else {
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) &&
           text[i] != '&' && text[i] != ',' && text[i] != ';' && text[i] != '}' && text[i] != ']')
      ++i;
  }
  end = i;
  return end > begin;
}

std::string redact_patterns(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    bool header_style = false;
    if (const std::size_t key_len = credential_key_at(text, i, header_style); key_len > 0) {
      std::size_t begin = 0;
      std::size_t end = 0;
      if (value_span(text, i + key_len, header_style, begin, end)) {
        out.append(text.substr(i, begin - i));
        out.append(Redactor::kMask);
        i = end;
        continue;
      }
    }
    if (starts_with_nocase(text, i, "bearer ") && (i == 0 || !is_word_char(text[i - 1]))) {
      std::size_t j = i + 7;
      while (j < text.size() && text[j] == ' ') ++j;
      std::size_t k = j;
      while (k < text.size() && is_token_char(text[k])) ++k;
      if (k > j) {
        out.append(text.substr(i, j - i));
        out.append(Redactor::kMask);
        i = k;
        continue;
      }
    }
    if (text.compare(i, 3, "sk-") == 0 && (i == 0 || !is_word_char(text[i - 1]))) {
      std::size_t k = i + 3;
      while (k < text.size() && is_word_char(text[k])) ++k;
      if (k - (i + 3) >= kMinKeyBodyLength) {
        out.append("sk-");
        out.append(Redactor::kMask);
        i = k;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

}  // namespace

bool Redactor::is_credential_key(std::string_view key) {
  const auto name = normalized_key(key);
  if (is_header_key(name) ||
      std::find(kValueKeys.begin(), kValueKeys.end(), name) != kValueKeys.end()) {
    return true;
  }
  return std::any_of(kCredentialSuffixes.begin(), kCredentialSuffixes.end(), [&](auto suffix) {
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  });
}

Redactor::Redactor(std::vector<std::string> secrets) {
  for (auto& secret : secrets) {
    if (secret.size() >= kMinSecretLength) secrets_.push_back(std::move(secret));
  }
  // Longest first, so a secret that contains another is removed whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string Redactor::redact(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_) replace_all(out, secret);
  return redact_patterns(out);
}

void Redactor::redact_json(nlohmann::json& value) const {
  redact_json(value, false);
}

// `masked`: under a credential key, where every string is masked whole.
void Redactor::redact_json(nlohmann::json& value, bool masked) const {
  if (value.is_string()) {
    value = masked ? std::string(kMask) : redact(value.get_ref<const std::string&>());
  } else if (value.is_object()) {
    // Keys are foreign text too (a worker frame's, a model's arguments): a key that holds a
    // credential is renamed (its value kept under the redacted name; colliding names merge).
    bool renamed = false;
    for (auto& [key, item] : value.items()) {
      redact_json(item, masked || is_credential_key(key));
      renamed = renamed || redact(key) != key;
    }
    if (renamed) {
      nlohmann::json out = nlohmann::json::object();
      for (auto& [key, item] : value.items()) out[redact(key)] = std::move(item);
      value = std::move(out);
    }
  } else if (value.is_array()) {
    for (auto& item : value) redact_json(item, masked);
  }
}

}  // namespace cxp::telemetry
