#pragma once

#include <string_view>

namespace cxp {

// Compares two secrets in time that depends only on their lengths, never on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

// True when `authorization` is "Bearer <token>" with exactly `token` (compared in constant time).
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace cxp
