#include "proxy/access/secret_file.h"

#include <cctype>
#include <fstream>
#include <iterator>

#include "common/config_value.h"
#include "common/digest.h"

namespace cxp::proxy {

SecretFile::SecretFile(std::string setting, std::string path)
    : setting_(std::move(setting)), path_(std::move(path)) {}

std::optional<std::string> SecretFile::changed() {
  std::ifstream file(path_, std::ios::binary);
  if (!file) throw ConfigError(setting_ + "=" + path_ + ": cannot be read");
  std::string content;
  content.resize(kMaxBytes + 1);
  file.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (file.bad()) throw ConfigError(setting_ + "=" + path_ + ": cannot be read");
  content.resize(static_cast<std::size_t>(file.gcount()));
  if (content.size() > kMaxBytes) {
    throw ConfigError(setting_ + "=" + path_ + ": larger than " + std::to_string(kMaxBytes) +
                      " bytes");
  }
  const auto digest = to_hex(sha256(content));
  if (last_digest_ == digest) return std::nullopt;
  last_digest_ = digest;
  return content;
}

std::string token_of(const std::string& content, const std::string& where) {
  std::size_t begin = 0;
  std::size_t end = content.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(content[begin])) != 0) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(content[end - 1])) != 0) --end;
  if (begin == end) throw ConfigError(where + ": the file is empty");
  return content.substr(begin, end - begin);
}

}  // namespace cxp::proxy
