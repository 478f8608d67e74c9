#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace cxp {

// Lenient reads of JSON that comes from elsewhere (a worker's frames, API objects): a field of
// the wrong type reads as absent, and nothing throws, whatever the shape — unlike
// nlohmann::json::value(), which throws on a type mismatch.
// The value under `key`, or null when `object` is not an object or has no such key.
const nlohmann::json& field_of(const nlohmann::json& object, std::string_view key);
// The string under `key`, or `fallback` when absent or not a string.
std::string string_field(const nlohmann::json& object, std::string_view key,
                         std::string fallback = {});
// The boolean under `key`, or `fallback` when absent or not a boolean.
bool bool_field(const nlohmann::json& object, std::string_view key, bool fallback);
// The integer under `key`, or `fallback` when absent or not an integer.
std::int64_t int_field(const nlohmann::json& object, std::string_view key, std::int64_t fallback);

}  // namespace cxp
