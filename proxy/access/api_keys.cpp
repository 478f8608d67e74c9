#include "proxy/access/api_keys.h"

#include <openssl/crypto.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "common/config_value.h"

namespace cxp::proxy {
namespace {

constexpr std::uint64_t kMaxLimit = 1000000000;

std::string where_of(const std::string& source, const YAML::Node& node) {
  const auto mark = node.Mark();
  return mark.line >= 0 ? source + " line " + std::to_string(mark.line + 1) : source;
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(),
                     [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' ||
                              c == '_' || c == '-';
                     }) &&
         name != kAnonymousCaller && name != kInvalidCaller;
}

void check_key_text(std::string_view key, const std::string& where) {
  if (key.size() < 8 || key.size() > 1024 || std::any_of(key.begin(), key.end(), [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) != 0;
      })) {
    throw ConfigError(where + ": a key is 8-1024 bytes without whitespace");
  }
}

std::uint64_t read_limit(const YAML::Node& limits, const char* field, const std::string& source) {
  const auto node = limits[field];
  if (!node.IsDefined() || node.IsNull()) return 0;
  if (!node.IsScalar())
    throw ConfigError(where_of(source, node) + ": " + field + ": expected a number");
  return static_cast<std::uint64_t>(
      parse_integer(where_of(source, node) + ": " + field, node.Scalar(), 0, kMaxLimit));
}

ApiKey read_entry(const YAML::Node& entry, const std::string& source,
                  const std::vector<std::string>& served) {
  const auto where = where_of(source, entry);
  if (!entry.IsMap()) throw ConfigError(where + ": expected {name, key | sha256, limits, models}");
  for (const auto& field : entry) {
    const auto name = field.first.as<std::string>();
    if (name != "name" && name != "key" && name != "sha256" && name != "limits" &&
        name != "models") {
      throw ConfigError(where_of(source, field.first) + ": unknown field '" + name.substr(0, 64) +
                        "' (name, key, sha256, limits, models)");
    }
  }
  ApiKey key;
  const auto name = entry["name"];
  if (!name.IsScalar() || !valid_name(name.Scalar()) || name.Scalar() == kDefaultKeyName) {
    throw ConfigError(where +
                      ": name: expected 1-64 of [A-Za-z0-9._-], not anonymous, invalid or "
                      "default");
  }
  key.name = name.Scalar();
  const auto plain = entry["key"];
  const auto hashed = entry["sha256"];
  if (plain.IsDefined() == hashed.IsDefined()) {
    throw ConfigError(where + ": key '" + key.name + "': give either key or sha256");
  }
  if (plain.IsDefined()) {
    if (!plain.IsScalar()) throw ConfigError(where_of(source, plain) + ": key: expected a string");
    check_key_text(plain.Scalar(), where_of(source, plain));
    key.plaintext = plain.Scalar();
    key.digest = sha256(key.plaintext);
  } else {
    const auto digest = hashed.IsScalar() ? parse_sha256_hex(hashed.Scalar()) : std::nullopt;
    if (!digest) {
      throw ConfigError(where_of(source, hashed) + ": sha256: expected 64 hex digits (sha256sum)");
    }
    key.digest = *digest;
  }
  if (const auto limits = entry["limits"]; limits.IsDefined() && !limits.IsNull()) {
    if (!limits.IsMap()) {
      throw ConfigError(where_of(source, limits) +
                        ": limits: expected {requestsPerMinute, tokensPerMinute, concurrentTurns}");
    }
    for (const auto& field : limits) {
      const auto name = field.first.as<std::string>();
      if (name != "requestsPerMinute" && name != "tokensPerMinute" && name != "concurrentTurns") {
        throw ConfigError(where_of(source, field.first) + ": unknown limit '" + name.substr(0, 64) +
                          "' (requestsPerMinute, tokensPerMinute, concurrentTurns)");
      }
    }
    key.limits.requests_per_minute = read_limit(limits, "requestsPerMinute", source);
    key.limits.tokens_per_minute = read_limit(limits, "tokensPerMinute", source);
    key.limits.concurrent_turns = read_limit(limits, "concurrentTurns", source);
  }
  if (const auto models = entry["models"]; models.IsDefined() && !models.IsNull()) {
    if (!models.IsSequence())
      throw ConfigError(where_of(source, models) + ": models: expected a list");
    for (const auto& model : models) {
      if (!model.IsScalar() ||
          std::find(served.begin(), served.end(), model.Scalar()) == served.end()) {
        std::string list;
        for (const auto& s : served) list += (list.empty() ? "" : ", ") + s;
        throw ConfigError(where_of(source, model) + ": models: '" +
                          (model.IsScalar() ? model.Scalar().substr(0, 128) : "?") +
                          "' is not served (" + list + ")");
      }
      key.models.push_back(model.Scalar());
    }
  }
  return key;
}

}  // namespace

bool ApiKey::may_use(const std::string& model) const {
  return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

KeySet KeySet::parse(std::string_view text, const std::string& source,
                     const std::vector<std::string>& served_models) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + " line " + std::to_string(e.mark.line + 1) +
                      ": not YAML or JSON: " + e.msg);
  }
  const auto list = root.IsMap() ? root["keys"] : root;
  if (!list.IsSequence()) {
    throw ConfigError(source + ": expected a list of keys, or {keys: [...]}");
  }
  if (list.size() > kMaxKeys) {
    throw ConfigError(source + ": more than " + std::to_string(kMaxKeys) + " keys");
  }
  KeySet set;
  try {
    for (const auto& entry : list) {
      set.insert(read_entry(entry, source, served_models), where_of(source, entry));
    }
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + " line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return set;
}

void KeySet::add(std::string name, std::string_view key, const std::string& source) {
  check_key_text(key, source);
  ApiKey entry;
  entry.name = std::move(name);
  entry.plaintext = std::string(key);
  entry.digest = sha256(key);
  insert(std::move(entry), source);
}

void KeySet::insert(ApiKey key, const std::string& where) {
  if (std::any_of(keys_.begin(), keys_.end(),
                  [&](const ApiKey& k) { return k.name == key.name; })) {
    throw ConfigError(where + ": a second key named '" + key.name + "'");
  }
  std::string digest(key.digest.begin(), key.digest.end());
  if (by_digest_.count(digest)) {
    throw ConfigError(where + ": key '" + key.name + "' is the same key as '" +
                      keys_[by_digest_.at(digest)].name + "'");
  }
  by_digest_.emplace(std::move(digest), keys_.size());
  keys_.push_back(std::move(key));
}

const ApiKey* KeySet::find(std::string_view token) const {
  const auto digest = sha256(token);
  const auto found = by_digest_.find(std::string(digest.begin(), digest.end()));
  if (found == by_digest_.end()) return nullptr;
  const auto& key = keys_[found->second];
  // The map compared digests; compare once more in constant time before trusting it.
  return CRYPTO_memcmp(key.digest.data(), digest.data(), digest.size()) == 0 ? &key : nullptr;
}

}  // namespace cxp::proxy
