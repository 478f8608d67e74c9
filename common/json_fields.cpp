#include "common/json_fields.h"

namespace cxp {

const nlohmann::json& field_of(const nlohmann::json& object, std::string_view key) {
  static const nlohmann::json kNull;
  if (!object.is_object()) return kNull;
  const auto found = object.find(key);
  return found == object.end() ? kNull : *found;
}

std::string string_field(const nlohmann::json& object, std::string_view key, std::string fallback) {
  const auto& value = field_of(object, key);
  return value.is_string() ? value.get<std::string>() : fallback;
}

bool bool_field(const nlohmann::json& object, std::string_view key, bool fallback) {
  const auto& value = field_of(object, key);
  return value.is_boolean() ? value.get<bool>() : fallback;
}

std::int64_t int_field(const nlohmann::json& object, std::string_view key, std::int64_t fallback) {
  const auto& value = field_of(object, key);
  return value.is_number_integer() ? value.get<std::int64_t>() : fallback;
}

}  // namespace cxp
