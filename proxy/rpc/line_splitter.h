#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cxp::proxy {

// Splits a byte stream into newline-terminated lines, bounding memory: a line longer than
// `max_line_bytes` is dropped whole (counted in `oversized()`), never buffered past the limit.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes) : max_(max_line_bytes) {}

  // Appends `bytes` and returns the complete lines they finished (without "\n" or "\r\n").
  std::vector<std::string> feed(std::string_view bytes);
  // The unterminated tail, e.g. at EOF.
  std::string take_partial();
  std::uint64_t oversized() const { return oversized_; }

 private:
  std::size_t max_;
  std::string partial_;
  bool discarding_ = false;
  std::uint64_t oversized_ = 0;
};

}  // namespace cxp::proxy
