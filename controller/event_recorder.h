#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"

namespace cxp::controller {

// Writes core/v1 Events about an object (kubectl describe shows them). The same reason and
// message about the same object is recorded at most once per kRepeatWindow, so a retry loop
// cannot flood the namespace. Failures to record are logged, never fatal.
class EventRecorder {
 public:
  static constexpr std::chrono::minutes kRepeatWindow{10};
  EventRecorder(kube::KubeClient& client, std::string component, std::string instance);

  void normal(const nlohmann::json& object, const std::string& reason, const std::string& message);
  void warning(const nlohmann::json& object, const std::string& reason, const std::string& message);

 private:
  void record(const nlohmann::json& object, const char* type, const std::string& reason,
              const std::string& message);

  kube::KubeClient& client_;
  std::string component_;
  std::string instance_;
  telemetry::JsonLog log_{"events"};
  std::mutex mutex_;  // guards recent_
  std::map<std::string, std::chrono::steady_clock::time_point> recent_;
};

}  // namespace cxp::controller
