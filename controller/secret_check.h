#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"
#include "controller/codexproxy_spec.h"

namespace cxp::controller {

// What one Secret says about a key the pods need from it: the problem, or "" when the key is
// there. `secret` is the Secret object (nullopt: it does not exist). Only key names are read,
// never values. Pure.
std::string secret_key_problem(const std::string& ns, const SecretUse& use,
                               const std::optional<nlohmann::json>& secret);

// Checks, before the pods are rolled onto them, that the Secrets a CodexProxy references exist and
// hold their keys — a pod whose Secret is missing never starts (CreateContainerConfigError). Reads
// each Secret with a GET. For the status alone, a Secret found complete is trusted for kTrustFor
// (bounded API calls when many pods report); before a rollout (`fresh`) and for a Secret found
// missing, it is read again. A Secret the controller may not read (403) is not judged: the kubelet
// will say.
class SecretKeyCheck {
 public:
  static constexpr std::chrono::seconds kTrustFor{30};

  explicit SecretKeyCheck(kube::KubeClient& client);

  // The problems, each naming the spec field, the Secret and the key; empty when all are there.
  std::vector<std::string> check(const std::string& ns, const std::vector<SecretUse>& uses,
                                 bool fresh);

 private:
  kube::KubeClient& client_;
  telemetry::JsonLog log_{"secret_check"};
  std::mutex mutex_;  // guards found_
  // "ns/name" → when it was found and its key names
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, nlohmann::json>> found_;
};

}  // namespace cxp::controller
