#include "proxy/api/stop_sequences.h"

#include <algorithm>
#include <utility>

namespace cxp::proxy {

StopSequences::StopSequences(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string StopSequences::feed(std::string_view delta) {
  if (stopped_) return "";
  if (stops_.empty()) return std::string(delta);
  held_.append(delta);
  std::size_t first = std::string::npos;
  for (const auto& stop : stops_) first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold back the longest tail that is the beginning of a stop sequence.
  std::size_t keep = 0;
  for (const auto& stop : stops_) {
    for (std::size_t n = std::min(stop.size() - 1, held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, stop, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  std::size_t cut = held_.size() - keep;
  // Never split a UTF-8 character: continuation bytes stay with their lead byte.
  while (cut > 0 && cut < held_.size() && (static_cast<unsigned char>(held_[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  std::string out = held_.substr(0, cut);
  held_.erase(0, cut);
  return out;
}

std::string StopSequences::finish() {
  if (stopped_) return "";
  return std::exchange(held_, std::string());
}

}  // namespace cxp::proxy
