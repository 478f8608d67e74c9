#pragma once

#include <nlohmann/json.hpp>

namespace cxp::controller {

// True when every field of `desired` is present in `existing` with an equal value: objects are
// compared key by key (extra keys in `existing`, e.g. defaults the API server added, are fine),
// arrays element by element (same length), everything else by value. This is how the controller
// decides that an object needs no write.
bool contains_subset(const nlohmann::json& existing, const nlohmann::json& desired);

}  // namespace cxp::controller
