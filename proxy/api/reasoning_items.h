#pragma once

#include <string>
#include <vector>

#include "proxy/api/turn_renderer.h"
#include "proxy/rpc/json_rpc_message.h"

namespace cxp::proxy {

// The model's reasoning items of one turn, from the worker's notifications (item/started and
// item/completed of a reasoning item, item/reasoning/summaryTextDelta), at most 64 items of at
// most 64 summary parts. Each notification gives the bytes the endpoint's renderer shows of it.
class ReasoningItems {
 public:
  // Takes a notification (one of the three above); returns what `renderer` streams of it ("" when
  // `streaming` is false: the answer is not streamed yet, or at all).
  std::string take(const RpcNotification& note, TurnRenderer& renderer, bool streaming);
  // Everything so far, as a stream that starts late shows it.
  std::string replay(TurnRenderer& renderer) const;
  const std::vector<ReasoningOut>& items() const { return items_; }

  static bool concerns(const RpcNotification& note);

 private:
  std::vector<ReasoningOut> items_;
};

}  // namespace cxp::proxy
