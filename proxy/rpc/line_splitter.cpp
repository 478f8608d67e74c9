#include "proxy/rpc/line_splitter.h"

namespace cxp::proxy {

std::vector<std::string> LineSplitter::feed(std::string_view bytes) {
  std::vector<std::string> lines;
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const auto chunk = bytes.substr(0, newline);
    if (!discarding_) {
      if (partial_.size() + chunk.size() > max_) {
        discarding_ = true;
        ++oversized_;
        partial_.clear();
        partial_.shrink_to_fit();
      } else {
        partial_.append(chunk);
      }
    }
    if (newline == std::string_view::npos) break;
    if (!discarding_) {
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      lines.push_back(std::move(partial_));
    }
    partial_.clear();
    discarding_ = false;
    bytes.remove_prefix(newline + 1);
  }
  return lines;
}

std::string LineSplitter::take_partial() {
  std::string tail = discarding_ ? std::string() : std::move(partial_);
  partial_.clear();
  discarding_ = false;
  return tail;
}

}  // namespace cxp::proxy
