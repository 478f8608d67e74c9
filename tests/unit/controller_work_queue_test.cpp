#include <doctest/doctest.h>

#include <thread>

#include "common/config_value.h"
#include "controller/controller_options.h"
#include "controller/work_queue.h"

using namespace cxp::controller;
using std::chrono::milliseconds;

TEST_CASE("the per-item backoff doubles and the overall bucket limits bursts") {
  RetryRateLimiter limiter({milliseconds(5), milliseconds(1000), 10, 2});
  const auto now = RetryRateLimiter::Clock::now();
  CHECK(limiter.when("a", now) == milliseconds(5));
  CHECK(limiter.when("a", now) == milliseconds(10));
  CHECK(limiter.when("a", now) == milliseconds(100));  // bucket of 2 empty at 10 qps: 100 ms
  limiter.forget("a");
  CHECK(limiter.when("a", now + std::chrono::seconds(10)) == milliseconds(5));
  for (int i = 0; i < 20; ++i) limiter.when("b", now + std::chrono::seconds(20 + i));
  CHECK(limiter.when("b", now + std::chrono::seconds(60)) == milliseconds(1000));  // capped
}

TEST_CASE("the queue deduplicates and never hands one item to two workers") {
  WorkQueue queue;
  queue.add("ns/a");
  queue.add("ns/a");
  queue.add("ns/b");
  CHECK(queue.depth() == 2);
  auto first = queue.get();
  REQUIRE(first);
  CHECK(*first == "ns/a");
  queue.add("ns/a");  // while processing: queued again only after done()
  CHECK(queue.depth() == 1);
  CHECK(*queue.get() == "ns/b");
  CHECK(queue.depth() == 0);
  queue.done("ns/a");
  CHECK(queue.depth() == 1);
  CHECK(*queue.get() == "ns/a");
  queue.done("ns/a");
  queue.done("ns/b");
  CHECK(queue.adds_total() == 3);  // the duplicate add was not one
}

TEST_CASE("delayed items arrive after their delay and shutdown wakes waiting workers") {
  WorkQueue queue;
  const auto start = std::chrono::steady_clock::now();
  queue.add_after("ns/late", milliseconds(50));
  queue.add_after("ns/late", milliseconds(5000));  // a later wake-up does not replace the earlier
  auto item = queue.get();
  REQUIRE(item);
  CHECK(*item == "ns/late");
  CHECK(std::chrono::steady_clock::now() - start >= milliseconds(50));
  queue.done(*item);
  std::thread waiter([&] { CHECK_FALSE(queue.get().has_value()); });
  queue.shut_down();
  waiter.join();
}

TEST_CASE("controller flags follow controller-runtime and bad ones name the flag") {
  const auto options =
      parse_controller_options({"--leader-elect", "--namespace=team", "--metrics-bind-address",
                                "127.0.0.1:0", "--max-concurrent-reconciles", "4"});
  CHECK(options.leader_elect);
  CHECK(options.namespace_name == "team");
  CHECK(options.max_concurrent_reconciles == 4);
  CHECK(options.health_probe_bind_address == ":8081");
  // Leader election is on by default, at any replica count; =false turns it off.
  CHECK(parse_controller_options({}).leader_elect);
  CHECK_FALSE(parse_controller_options({"--leader-elect=false"}).leader_elect);
  CHECK_THROWS_WITH_AS(parse_controller_options({"--leader-elect=maybe"}),
                       doctest::Contains("--leader-elect"), cxp::ConfigError);
  const auto bind = parse_bind_address("--metrics-bind-address", ":8080");
  CHECK(bind.host == "0.0.0.0");
  CHECK(bind.port == 8080);
  CHECK(parse_bind_address("--metrics-bind-address", "0").disabled);
  CHECK_THROWS_WITH_AS(parse_controller_options({"--metrics-bind-address", "nope"}),
                       doctest::Contains("--metrics-bind-address"), cxp::ConfigError);
  CHECK_THROWS_WITH_AS(parse_controller_options({"--bogus"}), doctest::Contains("--bogus"),
                       cxp::ConfigError);
  CHECK_THROWS_WITH_AS(parse_controller_options({"--max-concurrent-reconciles", "0"}),
                       doctest::Contains("--max-concurrent-reconciles"), cxp::ConfigError);
}
