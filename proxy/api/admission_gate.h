#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>

namespace cxp::proxy {

// How full the gate is now: what /readyz, the pod's report and the capacity metrics show.
struct AdmissionLoad {
  std::uint32_t in_flight = 0;  // turns holding a slot
  std::uint32_t slots = 0;      // WORKER_MAX_CONCURRENCY
  std::size_t queued = 0;       // requests waiting for a slot
  std::size_t queue_max = 0;    // PROXY_QUEUE_MAX
};

// Bounds the turns in flight on the worker: at most `max_active` run at once, at most `max_queued`
// wait (each for at most `queue_timeout`); beyond that a request is refused at once (429).
class AdmissionGate : public std::enable_shared_from_this<AdmissionGate> {
 public:
  // Holding a ticket holds a slot; destroying it frees the slot and admits the next waiter.
  class Ticket {
   public:
    explicit Ticket(std::weak_ptr<AdmissionGate> gate) : gate_(std::move(gate)) {}
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    std::weak_ptr<AdmissionGate> gate_;
  };
  using TicketPtr = std::unique_ptr<Ticket>;
  enum class Refusal { kNone, kQueueFull, kQueueTimeout };
  // Called once: with a ticket when admitted, or with a refusal reason; `waited` is how long the
  // request queued (zero when admitted or refused at once).
  using Callback = std::function<void(TicketPtr, Refusal, std::chrono::milliseconds waited)>;
  // Cancels a queued wait (e.g. the client went away); no-op once admitted or refused.
  using CancelWait = std::function<void()>;

  AdmissionGate(boost::asio::io_context& io, std::uint32_t max_active, std::uint32_t max_queued,
                std::chrono::milliseconds queue_timeout);

  CancelWait acquire(Callback done);

  std::uint32_t active() const { return active_; }
  std::size_t queued() const { return waiters_.size(); }
  AdmissionLoad load() const { return {active_, max_active_, waiters_.size(), max_queued_}; }

 private:
  struct Waiter {
    Callback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
    std::shared_ptr<bool> queued;  // shared with its timeout and cancel handles
    std::chrono::steady_clock::time_point since;
  };

  void release();

  boost::asio::io_context& io_;
  std::uint32_t max_active_;
  std::uint32_t max_queued_;
  std::chrono::milliseconds queue_timeout_;
  std::uint32_t active_ = 0;
  std::list<Waiter> waiters_;
};

}  // namespace cxp::proxy
