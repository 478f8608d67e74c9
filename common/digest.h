#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace cxp {

using Sha256 = std::array<unsigned char, 32>;

Sha256 sha256(std::string_view data);
// 64 hex digits (either case) → the digest; nullopt otherwise.
std::optional<Sha256> parse_sha256_hex(std::string_view hex);
std::string to_hex(const Sha256& digest);

}  // namespace cxp
