#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/telemetry/redaction.h"

namespace cxp::telemetry {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Parses "debug|info|warn|error"; throws cxp::ConfigError naming `source` otherwise.
LogLevel parse_log_level(std::string_view source, std::string_view text);

// Process-wide settings of the JSON log sink. Call once at startup; before that, lines go to stdout
// at level info with pattern redaction only.
void configure_json_log(LogLevel min_level, Redactor redactor);

// Writes one JSON object per line to stdout:
//   {"timestamp":"2026-11-22T21:00:00.123Z","level":"info","component":"supervisor",
//    "event":"worker_started", ...fields}
// `fields` pass through the configured Redactor first (Redactor::redact_json: every value under a
// credential key such as "token" is masked at any depth, every other string redacted as text).
// Never throws.
class JsonLog {
 public:
  explicit JsonLog(std::string component) : component_(std::move(component)) {}

  void debug(std::string_view event, nlohmann::json fields = nlohmann::json::object()) const;
  void info(std::string_view event, nlohmann::json fields = nlohmann::json::object()) const;
  void warn(std::string_view event, nlohmann::json fields = nlohmann::json::object()) const;
  void error(std::string_view event, nlohmann::json fields = nlohmann::json::object()) const;
  void write(LogLevel level, std::string_view event, nlohmann::json fields) const;

 private:
  std::string component_;
};

}  // namespace cxp::telemetry
