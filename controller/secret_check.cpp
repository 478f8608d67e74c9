#include "controller/secret_check.h"

namespace cxp::controller {

using nlohmann::json;

std::string secret_key_problem(const std::string& ns, const SecretUse& use,
                               const std::optional<json>& secret) {
  const std::string which = use.field + ": Secret '" + use.ref.name + "' in namespace '" + ns + "'";
  if (!secret) return which + " does not exist";
  const auto data = secret->find("data");
  const bool has_data = data != secret->end() && data->is_object();
  if (has_data && data->contains(use.ref.key)) return "";
  std::string keys;
  if (has_data) {
    for (auto it = data->begin(); it != data->end(); ++it)
      keys += (keys.empty() ? "" : ", ") + it.key();
  }
  return which + " has no key '" + use.ref.key + "' (it has: " + (keys.empty() ? "none" : keys) +
         ")";
}

SecretKeyCheck::SecretKeyCheck(kube::KubeClient& client) : client_(client) {}

std::vector<std::string> SecretKeyCheck::check(const std::string& ns,
                                               const std::vector<SecretUse>& uses, bool fresh) {
  std::vector<std::string> problems;
  for (const auto& use : uses) {
    const auto cache_key = ns + "/" + use.ref.name;
    std::optional<json> secret;
    bool fetched = false;
    {
      std::lock_guard lock(mutex_);
      const auto found = found_.find(cache_key);
      if (!fresh && found != found_.end() &&
          std::chrono::steady_clock::now() - found->second.first < kTrustFor) {
        secret = json{{"data", found->second.second}};
      }
    }
    if (!secret) {
      fetched = true;
      auto result = client_.get(kube::resources::kSecrets, ns, use.ref.name);
      if (result.error == kube::ErrorKind::kForbidden) {
        log_.warn("secret_unreadable", {{"secret", cache_key}, {"error", result.describe()}});
        continue;
      }
      if (!result.ok() && result.error != kube::ErrorKind::kNotFound) {
        problems.push_back(use.field + ": cannot read Secret '" + use.ref.name +
                           "': " + result.describe());
        continue;
      }
      if (result.ok()) {
        // Keep the key names only; the values are dropped here.
        json keys = json::object();
        const auto data = result.object.find("data");
        if (data != result.object.end() && data->is_object()) {
          for (auto it = data->begin(); it != data->end(); ++it) keys[it.key()] = true;
        }
        secret = json{{"data", keys}};
      }
    }
    const auto problem = secret_key_problem(ns, use, secret);
    std::lock_guard lock(mutex_);
    if (problem.empty()) {
      if (fetched) {
        if (found_.size() >= 10000) found_.clear();  // bounded: a cache, not a record
        found_[cache_key] = {std::chrono::steady_clock::now(), (*secret)["data"]};
      }
    } else {
      found_.erase(cache_key);
      problems.push_back(problem);
    }
  }
  return problems;
}

}  // namespace cxp::controller
