#pragma once

#include <chrono>
#include <string>

namespace cxp {

enum class UtcFormat {
  kIso8601,  // 2026-11-22T21:00:00.123Z (log timestamps)
  kCompact,  // 20261122T210000.123Z (file names: sortable, no ':')
};

// UTC time with milliseconds.
std::string format_utc(std::chrono::system_clock::time_point when, UtcFormat format);

}  // namespace cxp
