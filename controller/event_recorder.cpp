#include "controller/event_recorder.h"

#include <cstdio>

#include "common/utc_time.h"

namespace cxp::controller {

using nlohmann::json;

EventRecorder::EventRecorder(kube::KubeClient& client, std::string component, std::string instance)
    : client_(client), component_(std::move(component)), instance_(std::move(instance)) {}

void EventRecorder::normal(const json& object, const std::string& reason,
                           const std::string& message) {
  record(object, "Normal", reason, message);
}

void EventRecorder::warning(const json& object, const std::string& reason,
                            const std::string& message) {
  record(object, "Warning", reason, message);
}

void EventRecorder::record(const json& object, const char* type, const std::string& reason,
                           const std::string& message) {
  const auto& metadata = object.at("metadata");
  const auto name = metadata.value("name", "");
  const auto ns = metadata.value("namespace", "");
  const auto uid = metadata.value("uid", "");
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    const auto key = uid + "\n" + reason + "\n" + message;
    const auto found = recent_.find(key);
    if (found != recent_.end() && now - found->second < kRepeatWindow) return;
    if (recent_.size() > 10000) {  // bounded: drop what is outside the window
      std::erase_if(recent_,
                    [&](const auto& entry) { return now - entry.second >= kRepeatWindow; });
    }
    recent_[key] = now;
  }
  const auto wall = std::chrono::system_clock::now();
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%llx",
                static_cast<unsigned long long>(wall.time_since_epoch().count()));
  const auto timestamp = format_utc(wall, UtcFormat::kSeconds);
  const json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", name + suffix}, {"namespace", ns}}},
      {"involvedObject",
       {{"apiVersion", object.value("apiVersion", "")},
        {"kind", object.value("kind", "")},
        {"name", name},
        {"namespace", ns},
        {"uid", uid}}},
      {"type", type},
      {"reason", reason},
      {"message", message.substr(0, 1024)},
      {"source", {{"component", component_}}},
      {"reportingComponent", component_},
      {"reportingInstance", instance_},
      {"firstTimestamp", timestamp},
      {"lastTimestamp", timestamp},
      {"count", 1},
  };
  const auto result = client_.create(kube::resources::kEvents, ns, event);
  if (!result.ok()) {
    log_.warn("event_failed",
              {{"reason", reason}, {"object", ns + "/" + name}, {"error", result.describe()}});
  }
}

}  // namespace cxp::controller
