#include "proxy/api/admission_gate.h"

#include <boost/asio/post.hpp>

namespace cxp::proxy {

namespace {

std::chrono::milliseconds waited_since(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               since);
}

}  // namespace

AdmissionGate::Ticket::~Ticket() {
  if (auto gate = gate_.lock()) gate->release();
}

AdmissionGate::AdmissionGate(boost::asio::io_context& io, std::uint32_t max_active,
                             std::uint32_t max_queued, std::chrono::milliseconds queue_timeout)
    : io_(io), max_active_(max_active), max_queued_(max_queued), queue_timeout_(queue_timeout) {}

AdmissionGate::CancelWait AdmissionGate::acquire(Callback done) {
  if (active_ < max_active_ && waiters_.empty()) {
    ++active_;
    done(std::make_unique<Ticket>(weak_from_this()), Refusal::kNone, std::chrono::milliseconds{0});
    return [] {};
  }
  if (waiters_.size() >= max_queued_) {
    done(nullptr, Refusal::kQueueFull, std::chrono::milliseconds{0});
    return [] {};
  }
  auto alive = std::make_shared<bool>(true);
  waiters_.push_back({std::move(done),
                      std::make_unique<boost::asio::steady_timer>(io_, queue_timeout_), alive,
                      std::chrono::steady_clock::now()});
  auto position = std::prev(waiters_.end());
  auto* timer = position->timer.get();
  timer->async_wait([weak = weak_from_this(), position, alive](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !*alive) return;
    *alive = false;
    auto done = std::move(position->done);
    const auto waited = waited_since(position->since);
    self->waiters_.erase(position);
    done(nullptr, Refusal::kQueueTimeout, waited);
  });
  return [weak = weak_from_this(), position, alive] {
    auto self = weak.lock();
    if (!self || !*alive) return;
    *alive = false;
    position->timer->cancel();
    self->waiters_.erase(position);
  };
}

void AdmissionGate::release() {
  if (active_ > 0) --active_;
  if (waiters_.empty() || active_ >= max_active_) return;
  ++active_;
  auto waiter = std::move(waiters_.front());
  waiters_.pop_front();
  *waiter.queued = false;
  waiter.timer->cancel();
  // Admit on a fresh stack: release() runs inside a finishing request's cleanup.
  boost::asio::post(
      io_,
      [done = std::move(waiter.done), waited = waited_since(waiter.since),
       ticket = std::make_shared<TicketPtr>(std::make_unique<Ticket>(weak_from_this()))]() mutable {
        done(std::move(*ticket), Refusal::kNone, waited);
      });
}

}  // namespace cxp::proxy
