#include "common/digest.h"

#include <openssl/evp.h>

#include <cctype>

namespace cxp {

Sha256 sha256(std::string_view data) {
  Sha256 out{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr);
  return out;
}

std::optional<Sha256> parse_sha256_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  Sha256 out{};
  for (std::size_t i = 0; i < 32; ++i) {
    int value = 0;
    for (const char c : hex.substr(2 * i, 2)) {
      const auto lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower >= '0' && lower <= '9') {
        value = value * 16 + (lower - '0');
      } else if (lower >= 'a' && lower <= 'f') {
        value = value * 16 + (lower - 'a' + 10);
      } else {
        return std::nullopt;
      }
    }
    out[i] = static_cast<unsigned char>(value);
  }
  return out;
}

std::string to_hex(const Sha256& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char byte : digest) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xF]);
  }
  return out;
}

}  // namespace cxp
