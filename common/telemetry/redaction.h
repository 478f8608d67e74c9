#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cxp::telemetry {

// Removes credentials from free text before it reaches a log line or a trace file:
//  - configured secrets (exact strings, at least 4 characters long),
//  - `Bearer <token>` in any letter case,
//  - OpenAI-style keys `sk-…`,
//  - the values of credential-bearing keys and headers (see `is_credential_key`) — whether written
//    `key: value`, `key=value` or `"key": "value"`.
// Each removed value becomes `[REDACTED]`. The function is pure and never throws on any input.
// `redact_json` does the same for structured data: every string under a credential key, at any
// depth, is masked whole; every other string, and every key, passes through `redact`.
class Redactor {
 public:
  static constexpr std::string_view kMask = "[REDACTED]";

  Redactor() = default;
  explicit Redactor(std::vector<std::string> secrets);

  std::string redact(std::string_view text) const;
  void redact_json(nlohmann::json& value) const;

  // A key whose value is a credential, in any letter case with `-` or `_`: Authorization,
  // Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, api_key, apikey, access_token,
  // refresh_token, id_token, token, auth_token, secret, client_secret, password, passwd,
  // private_key, credentials; and any key ending in `_token`, `_secret`, `_password`, `_api_key`
  // or `_apikey` (admin_token, metrics-token, …). Not `tokens` or `max_tokens` (counts).
  static bool is_credential_key(std::string_view key);

 private:
  void redact_json(nlohmann::json& value, bool masked) const;

  std::vector<std::string> secrets_;
};

}  // namespace cxp::telemetry
