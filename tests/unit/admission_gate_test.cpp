#include "proxy/api/admission_gate.h"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <vector>

using namespace cxp::proxy;
using namespace std::chrono_literals;
using Refusal = AdmissionGate::Refusal;

TEST_CASE("at most max_active run, max_queued wait, the rest are refused at once") {
  boost::asio::io_context io;
  auto gate = std::make_shared<AdmissionGate>(io, 2, 1, 10s);
  std::vector<AdmissionGate::TicketPtr> tickets;
  std::vector<Refusal> refusals;
  std::vector<std::chrono::milliseconds> waits;
  auto take = [&](AdmissionGate::TicketPtr t, Refusal r, std::chrono::milliseconds waited) {
    waits.push_back(waited);
    if (t)
      tickets.push_back(std::move(t));
    else
      refusals.push_back(r);
  };
  gate->acquire(take);
  gate->acquire(take);
  CHECK(tickets.size() == 2);
  gate->acquire(take);  // queued
  CHECK(gate->queued() == 1);
  const auto load = gate->load();
  CHECK(load.in_flight == 2);
  CHECK(load.slots == 2);
  CHECK(load.queued == 1);
  CHECK(load.queue_max == 1);
  gate->acquire(take);  // refused
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0] == Refusal::kQueueFull);

  io.run_for(30ms);  // the waiter waits at least this long
  io.restart();
  tickets.erase(tickets.begin());  // a slot frees: the waiter is admitted
  io.run_for(50ms);
  io.restart();
  CHECK(tickets.size() == 2);
  REQUIRE(waits.size() == 4);
  CHECK(waits[0] == 0ms);   // admitted at once
  CHECK(waits[2] == 0ms);   // refused at once (the queue was full)
  CHECK(waits[3] >= 30ms);  // the waiter, admitted when the slot freed
  CHECK(gate->queued() == 0);
  CHECK(gate->active() == 2);
  tickets.clear();
  CHECK(gate->active() == 0);
}

TEST_CASE("a waiter times out, and a cancelled waiter leaves the queue") {
  boost::asio::io_context io;
  auto gate = std::make_shared<AdmissionGate>(io, 1, 5, 30ms);
  AdmissionGate::TicketPtr held;
  gate->acquire(
      [&](AdmissionGate::TicketPtr t, Refusal, std::chrono::milliseconds) { held = std::move(t); });
  std::vector<Refusal> refusals;
  std::chrono::milliseconds timed_out_after{0};
  gate->acquire([&](AdmissionGate::TicketPtr t, Refusal r, std::chrono::milliseconds waited) {
    CHECK_FALSE(t);
    refusals.push_back(r);
    timed_out_after = waited;
  });
  bool cancelled_ran = false;
  auto cancel = gate->acquire(
      [&](AdmissionGate::TicketPtr, Refusal, std::chrono::milliseconds) { cancelled_ran = true; });
  CHECK(gate->queued() == 2);
  cancel();
  CHECK(gate->queued() == 1);
  io.run_for(200ms);
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0] == Refusal::kQueueTimeout);
  CHECK(timed_out_after >= 30ms);
  CHECK_FALSE(cancelled_ran);
  CHECK(gate->queued() == 0);
  cancel();  // cancelling twice is harmless
}
