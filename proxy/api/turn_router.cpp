#include "proxy/api/turn_router.h"

namespace cxp::proxy {

void TurnRouter::attach(const std::string& thread_id, std::weak_ptr<TurnListener> listener) {
  listeners_[thread_id] = std::move(listener);
}

void TurnRouter::detach(const std::string& thread_id) {
  listeners_.erase(thread_id);
}

std::shared_ptr<TurnListener> TurnRouter::listener_of(const nlohmann::json& params) const {
  if (!params.is_object()) return nullptr;
  const auto thread = params.find("threadId");
  if (thread == params.end() || !thread->is_string()) return nullptr;
  const auto found = listeners_.find(thread->get<std::string>());
  return found == listeners_.end() ? nullptr : found->second.lock();
}

void TurnRouter::route(const RpcNotification& notification) const {
  if (auto listener = listener_of(notification.params)) {
    listener->on_worker_notification(notification);
  }
}

void TurnRouter::route_request(const RpcServerRequest& request, JsonRpcChannel& channel) const {
  if (auto listener = listener_of(request.params)) {
    return listener->on_worker_request(request, channel);
  }
  channel.respond_error(request.id, -32601,
                        "codex-proxy does not handle " + request.method + " outside a turn");
}

void TurnRouter::worker_lost(const std::string& reason) {
  auto listeners = std::move(listeners_);
  listeners_.clear();
  for (auto& [thread, weak] : listeners) {
    if (auto listener = weak.lock()) listener->on_worker_lost(reason);
  }
}

}  // namespace cxp::proxy
