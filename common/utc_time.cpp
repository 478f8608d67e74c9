#include "common/utc_time.h"

#include <cstdio>
#include <ctime>

namespace cxp {

std::string format_utc(std::chrono::system_clock::time_point when, UtcFormat format) {
  const auto seconds = std::chrono::system_clock::to_time_t(when);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count() %
      1000000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  const auto length =
      std::strftime(buffer, sizeof buffer,
                    format == UtcFormat::kCompact ? "%Y%m%dT%H%M%S" : "%Y-%m-%dT%H:%M:%S", &utc);
  char out[48];
  switch (format) {
    case UtcFormat::kSeconds:
      std::snprintf(out, sizeof out, "%.*sZ", static_cast<int>(length), buffer);
      break;
    case UtcFormat::kMicros:
      std::snprintf(out, sizeof out, "%.*s.%06dZ", static_cast<int>(length), buffer,
                    static_cast<int>(micros));
      break;
    default:
      std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(length), buffer,
                    static_cast<int>(micros / 1000));
  }
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_utc(const std::string& text) {
  std::tm utc{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &utc.tm_year, &utc.tm_mon,
                  &utc.tm_mday, &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  auto time = std::chrono::system_clock::from_time_t(timegm(&utc));
  if (static_cast<std::size_t>(consumed) < text.size() && text[consumed] == '.') {
    double fraction = 0;
    if (std::sscanf(text.c_str() + consumed, "%lf", &fraction) == 1) {
      time += std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(fraction));
    }
  }
  return time;
}

}  // namespace cxp
