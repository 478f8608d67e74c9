#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cxp::telemetry {

// Removes credentials from free text before it reaches a log line or a trace file:
//  - configured secrets (exact strings, at least 4 characters long),
//  - `Bearer <token>` in any letter case,
//  - OpenAI-style keys `sk-…`,
//  - the values of credential-bearing keys and headers: Authorization, Proxy-Authorization,
//    Cookie, Set-Cookie, X-Api-Key, api_key, apikey, access_token, refresh_token, token, secret,
//    password, client_secret — whether written `key: value`, `key=value` or `"key": "value"`.
// Each removed value becomes `[REDACTED]`. The function is pure and never throws on any input.
class Redactor {
 public:
  static constexpr std::string_view kMask = "[REDACTED]";

  Redactor() = default;
  explicit Redactor(std::vector<std::string> secrets);

  std::string redact(std::string_view text) const;

 private:
  std::vector<std::string> secrets_;
};

}  // namespace cxp::telemetry
