#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cxp {

// At most `max_bytes` of `text` without cutting a UTF-8 sequence in two, followed by "…" when
// something was cut: for quoting foreign text (values, names, messages) in errors and logs.
std::string utf8_prefix(std::string_view text, std::size_t max_bytes);

}  // namespace cxp
