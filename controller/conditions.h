#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace cxp::controller {

// The one way conditions are set: metav1.Condition entries in `conditions` (a JSON array), keyed
// by type. lastTransitionTime changes only when the status changes.
void set_condition(nlohmann::json& conditions, std::string_view type, bool status,
                   std::string_view reason, std::string_view message, std::int64_t generation,
                   const std::string& now);

// The condition of `type`, or null.
const nlohmann::json* find_condition(const nlohmann::json& conditions, std::string_view type);
bool condition_is_true(const nlohmann::json& conditions, std::string_view type);

}  // namespace cxp::controller
