#include "common/utc_time.h"

#include <cstdio>
#include <ctime>

namespace cxp {

std::string format_utc(std::chrono::system_clock::time_point when, UtcFormat format) {
  const auto seconds = std::chrono::system_clock::to_time_t(when);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  const auto length =
      std::strftime(buffer, sizeof buffer,
                    format == UtcFormat::kIso8601 ? "%Y-%m-%dT%H:%M:%S" : "%Y%m%dT%H%M%S", &utc);
  char out[48];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(length), buffer,
                static_cast<int>(millis));
  return out;
}

}  // namespace cxp
