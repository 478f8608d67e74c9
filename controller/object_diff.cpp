#include "controller/object_diff.h"

namespace cxp::controller {

bool contains_subset(const nlohmann::json& existing, const nlohmann::json& desired) {
  if (desired.is_object()) {
    if (!existing.is_object()) return false;
    for (const auto& [key, value] : desired.items()) {
      const auto found = existing.find(key);
      if (found == existing.end()) {
        if (value.is_object() && value.empty()) continue;  // {} and absent are the same to us
        return false;
      }
      if (!contains_subset(*found, value)) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!existing.is_array() || existing.size() != desired.size()) return false;
    for (std::size_t i = 0; i < desired.size(); ++i) {
      if (!contains_subset(existing[i], desired[i])) return false;
    }
    return true;
  }
  if (desired.is_number() && existing.is_number()) {
    return desired.is_number_float() || existing.is_number_float()
               ? desired.get<double>() == existing.get<double>()
               : desired.get<std::int64_t>() == existing.get<std::int64_t>();
  }
  return existing == desired;
}

}  // namespace cxp::controller
