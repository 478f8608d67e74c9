#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/digest.h"

namespace cxp::proxy {

// A key's limits, for the whole CodexProxy (each pod enforces its share); 0: unlimited.
struct KeyLimits {
  std::uint64_t requests_per_minute = 0;
  std::uint64_t tokens_per_minute = 0;
  std::uint64_t concurrent_turns = 0;
  bool operator==(const KeyLimits&) const = default;
};

// One caller of the API: a name (logs, metrics, headers — never the key), the SHA-256 of its key,
// its limits and the models it may use (empty: every served model).
struct ApiKey {
  std::string name;
  Sha256 digest{};
  KeyLimits limits;
  std::vector<std::string> models;
  std::string plaintext;  // when the file gave the key itself: redacted from every log line

  bool may_use(const std::string& model) const;
};

// Names a key may not take: the request metrics' values for requests without a (valid) key.
inline constexpr std::string_view kAnonymousCaller = "anonymous";
inline constexpr std::string_view kInvalidCaller = "invalid";
// The name of PROXY_API_KEY / PROXY_API_KEY_FILE's single key.
inline constexpr std::string_view kDefaultKeyName = "default";
inline constexpr std::size_t kMaxKeys = 10000;

// The API keys in force: looked up by the SHA-256 of the presented key, so neither the key nor its
// length leaks through timing (the digest found is compared in constant time).
class KeySet {
 public:
  // Reads a keys file (YAML or JSON): a list, or {keys: [...]}, of
  //   {name, key | sha256, limits: {requestsPerMinute, tokensPerMinute, concurrentTurns},
  //    models: [...]}.
  // Names are 1-64 of [A-Za-z0-9._-], not anonymous/invalid/default; keys 8-1024 bytes without
  // whitespace, or sha256 as 64 hex digits; models must be served. Throws cxp::ConfigError
  // "<source> line N: …" naming the first problem (duplicate names and keys included).
  static KeySet parse(std::string_view text, const std::string& source,
                      const std::vector<std::string>& served_models);
  // Adds one key (PROXY_API_KEY, PROXY_API_KEY_FILE) named `name`; throws cxp::ConfigError
  // naming `source` when the name or the key is taken.
  void add(std::string name, std::string_view key, const std::string& source);

  // The key a bearer token is, or nullptr.
  const ApiKey* find(std::string_view token) const;
  const std::vector<ApiKey>& keys() const { return keys_; }
  bool empty() const { return keys_.empty(); }

 private:
  void insert(ApiKey key, const std::string& where);

  std::vector<ApiKey> keys_;
  std::unordered_map<std::string, std::size_t> by_digest_;  // digest bytes → index
};

using KeySetPtr = std::shared_ptr<const KeySet>;

}  // namespace cxp::proxy
