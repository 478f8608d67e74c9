#pragma once

#include <map>
#include <memory>
#include <string>

#include "proxy/rpc/json_rpc_channel.h"
#include "proxy/rpc/json_rpc_message.h"

namespace cxp::proxy {

// Something waiting for a worker thread's notifications and requests (one API turn).
class TurnListener {
 public:
  virtual ~TurnListener() = default;
  virtual void on_worker_notification(const RpcNotification& notification) = 0;
  // A request of the worker about this thread; the listener answers it through `channel`.
  virtual void on_worker_request(const RpcServerRequest& request, JsonRpcChannel& channel) = 0;
  virtual void on_worker_lost(const std::string& reason) = 0;
};

// Routes worker notifications and requests to the listener of their `params.threadId`.
// Notifications for unknown threads (or without one) are dropped: parsing stays lenient. A request
// nobody listens for is refused at once, so the worker never waits on us.
class TurnRouter {
 public:
  // `channel`: the worker the thread lives on (a worker that ends fails only its own turns).
  void attach(const std::string& thread_id, std::weak_ptr<TurnListener> listener,
              const JsonRpcChannel* channel);
  void detach(const std::string& thread_id);
  void route(const RpcNotification& notification) const;
  void route_request(const RpcServerRequest& request, JsonRpcChannel& channel) const;
  // A worker died: every listener attached on its channel hears it once, and is forgotten.
  void worker_lost(const JsonRpcChannel* channel, const std::string& reason);
  // Turns attached on a worker's channel.
  std::size_t active(const JsonRpcChannel* channel) const;

 private:
  struct Entry {
    std::weak_ptr<TurnListener> listener;
    const JsonRpcChannel* channel = nullptr;
  };
  std::shared_ptr<TurnListener> listener_of(const nlohmann::json& params) const;

  std::map<std::string, Entry> listeners_;
};

}  // namespace cxp::proxy
