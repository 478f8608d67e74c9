#include "proxy/worker/codex_home.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/config_value.h"
#include "common/private_file.h"

namespace cxp::proxy {
namespace {

namespace fs = std::filesystem;
constexpr std::uintmax_t kMaxAuthJsonBytes = 1024 * 1024;

std::string read_auth_json(const std::string& source) {
  std::error_code ec;
  const auto size = fs::file_size(source, ec);
  if (ec) throw ConfigError("WORKER_AUTH_JSON: cannot read '" + source + "': " + ec.message());
  if (size > kMaxAuthJsonBytes) {
    throw ConfigError("WORKER_AUTH_JSON: '" + source + "' is " + std::to_string(size) +
                      " bytes; expected a codex auth.json of at most 1 MiB");
  }
  std::ifstream in(source, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  if (!in) throw ConfigError("WORKER_AUTH_JSON: cannot read '" + source + "'");
  const auto parsed = nlohmann::json::parse(content.str(), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    throw ConfigError("WORKER_AUTH_JSON: '" + source +
                      "' is not a JSON object (expected the auth.json that `codex login` writes)");
  }
  return content.str();
}

// Written to a temporary name with mode 0600, then renamed: codex never sees half a file.
void install_private_file(const fs::path& target, const std::string& content) {
  const auto temporary = target.parent_path() / (".auth.json.tmp." + std::to_string(::getpid()));
  if (const auto error = write_private_file(target, temporary, content, /*durable=*/true)) {
    throw ConfigError("CODEX_HOME: cannot write " + target.string() + ": " + *error);
  }
}

}  // namespace

void prepare_codex_home(const std::string& codex_home, const std::string& auth_json_source) {
  if (codex_home.empty()) {
    if (!auth_json_source.empty()) {
      throw ConfigError(
          "WORKER_AUTH_JSON: requires CODEX_HOME (the writable directory the "
          "auth.json is copied into)");
    }
    return;
  }
  std::error_code ec;
  if (!fs::exists(codex_home, ec)) {
    fs::create_directories(codex_home, ec);
    if (ec) {
      throw ConfigError("CODEX_HOME: cannot create '" + codex_home + "': " + ec.message() +
                        " (the worker keeps its state there: mount a writable volume)");
    }
    ::chmod(codex_home.c_str(), 0700);
  }
  if (!fs::is_directory(codex_home, ec)) {
    throw ConfigError("CODEX_HOME: '" + codex_home + "' is not a directory");
  }
  if (::access(codex_home.c_str(), W_OK | X_OK) != 0) {
    throw ConfigError("CODEX_HOME: '" + codex_home + "' is not writable: " + std::strerror(errno) +
                      " (the worker keeps its state there: mount a " + "writable volume)");
  }
  if (!auth_json_source.empty()) {
    install_private_file(fs::path(codex_home) / "auth.json", read_auth_json(auth_json_source));
  }
}

}  // namespace cxp::proxy
