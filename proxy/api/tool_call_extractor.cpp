#include "proxy/api/tool_call_extractor.h"

#include <nlohmann/json.hpp>

namespace cxp::proxy {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
std::size_t partial_tag_suffix(std::string_view text, std::string_view tag) {
  const std::size_t longest = std::min(text.size(), tag.size() - 1);
  for (std::size_t n = longest; n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

bool parse_call(std::string_view body, ExtractedToolCall& call) {
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object()) return false;
  const auto name = json.find("name");
  if (name == json.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    return false;
  call.name = name->get<std::string>();
  const auto arguments = json.find("arguments");
  if (arguments == json.end() || arguments->is_null()) {
    call.arguments = "{}";
  } else if (arguments->is_string()) {
    call.arguments = arguments->get<std::string>();
  } else if (arguments->is_object()) {
    call.arguments = arguments->dump();
  } else {
    return false;
  }
  return true;
}

}  // namespace

void ToolCallExtractor::give_back_call(ExtractedOutput& out) {
  ++counters_.aborted;
  out.text += kOpen;
  out.text += pending_;
  pending_.clear();
  inside_ = false;
}

ExtractedOutput ToolCallExtractor::feed(std::string_view delta) {
  ExtractedOutput out;
  pending_.append(delta);
  while (true) {
    if (!inside_) {
      const auto open = pending_.find(kOpen);
      if (open == std::string::npos) {
        const auto hold = partial_tag_suffix(pending_, kOpen);
        out.text.append(pending_, 0, pending_.size() - hold);
        pending_.erase(0, pending_.size() - hold);
        return out;
      }
      out.text.append(pending_, 0, open);
      pending_.erase(0, open + kOpen.size());
      inside_ = true;
      ++counters_.started;
      continue;
    }
    const auto close = pending_.find(kClose);
    if (close == std::string::npos) {
      if (pending_.size() > kMaxCallBytes) give_back_call(out);
      return out;
    }
    ExtractedToolCall call;
    if (parse_call(std::string_view(pending_).substr(0, close), call)) {
      ++counters_.flushed;
      out.calls.push_back(std::move(call));
      pending_.erase(0, close + kClose.size());
      inside_ = false;
    } else {
      // Malformed: hand the whole block back as text.
      std::string rest = pending_.substr(close + kClose.size());
      pending_.resize(close + kClose.size());
      give_back_call(out);
      pending_ = std::move(rest);
    }
  }
}

ExtractedOutput ToolCallExtractor::finish() {
  ExtractedOutput out;
  if (inside_) {
    give_back_call(out);
  } else {
    out.text = std::move(pending_);
    pending_.clear();
  }
  return out;
}

}  // namespace cxp::proxy
