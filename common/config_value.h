#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cxp {

// A configuration value that cannot be used. The message names the setting (the environment
// variable or the config-file key), the value found, and what was expected.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parsers for one setting's text. `source` names where the text came from ("WORKER_BACKOFF_MAX_MS",
// "config.yaml: worker.backoff.maxMs") and appears in every error.
std::int64_t parse_integer(std::string_view source, std::string_view text, std::int64_t min,
                           std::int64_t max);
bool parse_boolean(std::string_view source, std::string_view text);

}  // namespace cxp
