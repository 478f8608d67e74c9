#pragma once

#include <map>
#include <memory>
#include <string>

#include "proxy/rpc/json_rpc_message.h"

namespace cxp::proxy {

// Something waiting for a worker thread's notifications (one chat completion).
class TurnListener {
 public:
  virtual ~TurnListener() = default;
  virtual void on_worker_notification(const RpcNotification& notification) = 0;
  virtual void on_worker_lost(const std::string& reason) = 0;
};

// Routes worker notifications to the listener of their `params.threadId`. Notifications for
// unknown threads (or without one) are dropped: parsing stays lenient.
class TurnRouter {
 public:
  void attach(const std::string& thread_id, std::weak_ptr<TurnListener> listener);
  void detach(const std::string& thread_id);
  void route(const RpcNotification& notification) const;
  // The worker died: every attached listener hears it once, and the table empties.
  void worker_lost(const std::string& reason);

 private:
  std::map<std::string, std::weak_ptr<TurnListener>> listeners_;
};

}  // namespace cxp::proxy
