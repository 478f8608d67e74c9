#include "common/telemetry/json_log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>

#include "common/config_value.h"
#include "common/utc_time.h"

namespace cxp::telemetry {
namespace {

struct SinkSettings {
  // Guards level, redactor and logger creation; writes themselves are serialised by spdlog's _mt
  // sink.
  std::mutex mutex;
  LogLevel level = LogLevel::kInfo;
  std::shared_ptr<const Redactor> redactor = std::make_shared<Redactor>();
  std::shared_ptr<spdlog::logger> logger;
};

SinkSettings& settings() {
  static SinkSettings instance;
  return instance;
}

std::shared_ptr<spdlog::logger> sink_logger() {
  auto& s = settings();
  std::lock_guard lock(s.mutex);
  if (!s.logger) {
    s.logger =
        std::make_shared<spdlog::logger>("json", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    s.logger->set_pattern("%v");
    s.logger->flush_on(spdlog::level::trace);
  }
  return s.logger;
}

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

LogLevel parse_log_level(std::string_view source, std::string_view text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warn" || text == "warning") return LogLevel::kWarn;
  if (text == "error") return LogLevel::kError;
  throw ConfigError(std::string(source) + ": expected one of debug, info, warn, error, found '" +
                    std::string(text) + "'");
}

void configure_json_log(LogLevel min_level, Redactor redactor) {
  auto& s = settings();
  std::lock_guard lock(s.mutex);
  s.level = min_level;
  s.redactor = std::make_shared<const Redactor>(std::move(redactor));
}

void JsonLog::debug(std::string_view event, nlohmann::json fields) const {
  write(LogLevel::kDebug, event, std::move(fields));
}
void JsonLog::info(std::string_view event, nlohmann::json fields) const {
  write(LogLevel::kInfo, event, std::move(fields));
}
void JsonLog::warn(std::string_view event, nlohmann::json fields) const {
  write(LogLevel::kWarn, event, std::move(fields));
}
void JsonLog::error(std::string_view event, nlohmann::json fields) const {
  write(LogLevel::kError, event, std::move(fields));
}

void JsonLog::write(LogLevel level, std::string_view event, nlohmann::json fields) const {
  std::shared_ptr<const Redactor> redactor;
  {
    auto& s = settings();
    std::lock_guard lock(s.mutex);
    if (level < s.level) return;
    redactor = s.redactor;
  }
  try {
    nlohmann::json line = nlohmann::json::object();
    line["timestamp"] = format_utc(std::chrono::system_clock::now(), UtcFormat::kIso8601);
    line["level"] = level_name(level);
    line["component"] = component_;
    line["event"] = event;
    if (fields.is_object()) {
      redactor->redact_json(fields);
      for (auto& [key, value] : fields.items()) line[key] = std::move(value);
    }
    sink_logger()->info(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (...) {
    // Logging must never take the process down.
  }
}

}  // namespace cxp::telemetry
