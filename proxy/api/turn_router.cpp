#include "proxy/api/turn_router.h"

#include <algorithm>
#include <vector>

namespace cxp::proxy {

void TurnRouter::attach(const std::string& thread_id, std::weak_ptr<TurnListener> listener,
                        const JsonRpcChannel* channel) {
  listeners_[thread_id] = {std::move(listener), channel};
}

void TurnRouter::detach(const std::string& thread_id) {
  listeners_.erase(thread_id);
}

std::shared_ptr<TurnListener> TurnRouter::listener_of(const nlohmann::json& params) const {
  if (!params.is_object()) return nullptr;
  const auto thread = params.find("threadId");
  if (thread == params.end() || !thread->is_string()) return nullptr;
  const auto found = listeners_.find(thread->get<std::string>());
  return found == listeners_.end() ? nullptr : found->second.listener.lock();
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

void TurnRouter::worker_lost(const JsonRpcChannel* channel, const std::string& reason) {
  std::vector<std::shared_ptr<TurnListener>> lost;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (it->second.channel != channel) {
      ++it;
      continue;
    }
    if (auto listener = it->second.listener.lock()) lost.push_back(std::move(listener));
    it = listeners_.erase(it);
  }
  for (auto& listener : lost) listener->on_worker_lost(reason);
}

std::size_t TurnRouter::active(const JsonRpcChannel* channel) const {
  return static_cast<std::size_t>(
      std::count_if(listeners_.begin(), listeners_.end(),
                    [&](const auto& entry) { return entry.second.channel == channel; }));
}

}  // namespace cxp::proxy
