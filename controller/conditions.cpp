#include "controller/conditions.h"

namespace cxp::controller {

using nlohmann::json;

const json* find_condition(const json& conditions, std::string_view type) {
  if (!conditions.is_array()) return nullptr;
  for (const auto& condition : conditions) {
    if (condition.is_object() && condition.value("type", "") == type) return &condition;
  }
  return nullptr;
}

bool condition_is_true(const json& conditions, std::string_view type) {
  const auto* condition = find_condition(conditions, type);
  return condition != nullptr && condition->value("status", "") == "True";
}

void set_condition(json& conditions, std::string_view type, bool status, std::string_view reason,
                   std::string_view message, std::int64_t generation, const std::string& now) {
  if (!conditions.is_array()) conditions = json::array();
  const std::string status_text = status ? "True" : "False";
  // metav1.Condition allows 32 KiB of message; keep ours well below.
  const std::string bounded_message(message.substr(0, 4096));
  for (auto& condition : conditions) {
    if (condition.value("type", "") != type) continue;
    if (condition.value("status", "") != status_text) condition["lastTransitionTime"] = now;
    condition["status"] = status_text;
    condition["reason"] = reason;
    condition["message"] = bounded_message;
    condition["observedGeneration"] = generation;
    return;
  }
  conditions.push_back({{"type", type},
                        {"status", status_text},
                        {"reason", reason},
                        {"message", bounded_message},
                        {"observedGeneration", generation},
                        {"lastTransitionTime", now}});
}

}  // namespace cxp::controller
