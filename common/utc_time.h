#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace cxp {

enum class UtcFormat {
  kIso8601,  // 2026-11-22T21:00:00.123Z (log timestamps)
  kCompact,  // 20261122T210000.123Z (file names: sortable, no ':')
  kSeconds,  // 2026-11-22T21:00:00Z (Kubernetes metav1.Time)
  kMicros,   // 2026-11-22T21:00:00.123456Z (Kubernetes metav1.MicroTime)
};

std::string format_utc(std::chrono::system_clock::time_point when, UtcFormat format);

// Parses RFC 3339 UTC ("…Z", optional fraction), as the formats above and Kubernetes write it.
std::optional<std::chrono::system_clock::time_point> parse_utc(const std::string& text);

}  // namespace cxp
