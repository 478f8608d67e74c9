#include "proxy/api/reasoning_items.h"

#include <algorithm>

#include "common/json_fields.h"

namespace cxp::proxy {
namespace {

constexpr std::size_t kMaxItems = 64;  // items of a turn, and summary parts of an item
constexpr std::string_view kSummaryDelta = "item/reasoning/summaryTextDelta";

}  // namespace

bool ReasoningItems::concerns(const RpcNotification& note) {
  return note.method == kSummaryDelta ||
         ((note.method == "item/started" || note.method == "item/completed") &&
          string_field(field_of(note.params, "item"), "type") == "reasoning");
}

std::string ReasoningItems::take(const RpcNotification& note, TurnRenderer& renderer,
                                 bool streaming) {
  const auto& p = note.params;
  const auto& item = field_of(p, "item");
  const std::string id =
      note.method == kSummaryDelta ? string_field(p, "itemId") : string_field(item, "id");
  if (id.empty()) return "";
  std::string out;
  auto found =
      std::find_if(items_.begin(), items_.end(), [&](const ReasoningOut& r) { return r.id == id; });
  if (found == items_.end()) {
    if (items_.size() >= kMaxItems) return "";
    items_.push_back({id, {}, false});
    found = std::prev(items_.end());
    if (streaming) out += renderer.reasoning_started(id);
  }
  if (note.method == kSummaryDelta) {
    const auto index =
        static_cast<std::size_t>(std::max<std::int64_t>(0, int_field(p, "summaryIndex", 0)));
    if (index >= kMaxItems) return out;
    if (found->summary.size() <= index) found->summary.resize(index + 1);
    const auto delta = string_field(p, "delta");
    found->summary[index] += delta;
    if (streaming && !delta.empty()) out += renderer.reasoning_delta(id, index, delta);
  } else if (note.method == "item/completed" && !found->done) {
    // The completed item's summary is the whole of it.
    const auto& summary = field_of(item, "summary");
    if (summary.is_array()) {
      found->summary.clear();
      for (const auto& part : summary) {
        if (part.is_string() && found->summary.size() < kMaxItems) {
          found->summary.push_back(part.get<std::string>());
        }
      }
    }
    found->done = true;
    if (streaming) out += renderer.reasoning_done(*found);
  }
  return out;
}

std::string ReasoningItems::replay(TurnRenderer& renderer) const {
  std::string out;
  for (const auto& item : items_) {
    out += renderer.reasoning_started(item.id);
    for (std::size_t i = 0; i < item.summary.size(); ++i) {
      out += renderer.reasoning_delta(item.id, i, item.summary[i]);
    }
    if (item.done) out += renderer.reasoning_done(item);
  }
  return out;
}

}  // namespace cxp::proxy
