#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cxp::proxy {

// A file that holds a secret (a Secret volume's key), re-read whenever it is polled: the kubelet
// replaces a Secret volume's files atomically by swapping its `..data` symlink, and reading the
// path follows the link, so a poll sees the old content or the new, never half of either.
class SecretFile {
 public:
  static constexpr std::size_t kMaxBytes = 4 * 1024 * 1024;

  // `setting`: the variable that named the file (for messages and metric labels).
  SecretFile(std::string setting, std::string path);

  // The file's content when it differs from the last content returned (the first call always
  // returns it); nullopt when unchanged. Throws cxp::ConfigError naming the setting and the path
  // when the file cannot be read or is larger than kMaxBytes.
  std::optional<std::string> changed();

  const std::string& setting() const { return setting_; }
  const std::string& path() const { return path_; }

 private:
  std::string setting_;
  std::string path_;
  std::optional<std::string> last_digest_;
};

// A token file's token: its content without surrounding whitespace (an editor's or `echo`'s
// newline). Throws cxp::ConfigError naming `where` when it is empty.
std::string token_of(const std::string& content, const std::string& where);

}  // namespace cxp::proxy
