#include "proxy/api/turn_router.h"

namespace cxp::proxy {

void TurnRouter::attach(const std::string& thread_id, std::weak_ptr<TurnListener> listener) {
  listeners_[thread_id] = std::move(listener);
}

void TurnRouter::detach(const std::string& thread_id) {
  listeners_.erase(thread_id);
}

void TurnRouter::route(const RpcNotification& notification) const {
  if (!notification.params.is_object()) return;
  const auto thread = notification.params.find("threadId");
  if (thread == notification.params.end() || !thread->is_string()) return;
  const auto found = listeners_.find(thread->get<std::string>());
  if (found == listeners_.end()) return;
  if (auto listener = found->second.lock()) listener->on_worker_notification(notification);
}

void TurnRouter::worker_lost(const std::string& reason) {
  auto listeners = std::move(listeners_);
  listeners_.clear();
  for (auto& [thread, weak] : listeners) {
    if (auto listener = weak.lock()) listener->on_worker_lost(reason);
  }
}

}  // namespace cxp::proxy
