// What authentication and per-key limits add to a request (not a test): bench/run.sh access.
// For 10 and 1,000 keys (each with requests, tokens and concurrency limits), the time of what
// codex-proxy does per /v1 request before the worker — authenticate the bearer key (SHA-256 and
// lookup), admit it (model list, buckets, concurrency slot), render the x-ratelimit-* headers,
// charge the turn's tokens and release the slot — as p50/p99/max over 200,000 requests, and the
// memory each key costs (the process's resident size before and after the key set is loaded,
// over the number of keys, with every key's limit state in use).
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "proxy/access/access_control.h"

using namespace cxp::proxy;

namespace {

// Bytes the heap holds for live allocations now (what stays allocated, unlike the RSS, which keeps
// what a parse used and freed).
std::size_t heap_in_use() {
  return mallinfo2().uordblks;
}

long resident_kib() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

std::string key_of(std::size_t i) {
  return "sk-bench-key-" + std::to_string(i) + "-0123456789abcdef0123456789";
}

void run(std::size_t keys, std::size_t requests) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("cxp-bench-keys-" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(file);
    out << "keys:\n";
    for (std::size_t i = 0; i < keys; ++i) {
      out << "- {name: key-" << i << ", key: " << key_of(i)
          << ", limits: {requestsPerMinute: 1000000, tokensPerMinute: 1000000000, "
             "concurrentTurns: 1000}}\n";
    }
  }
  boost::asio::io_context io;
  const long before = resident_kib();
  const auto heap_before = heap_in_use();
  AccessSettings settings;
  settings.api_keys_file = file.string();
  AccessControl access(io, settings, {"gpt-5"});
  std::vector<std::string> headers;
  for (std::size_t i = 0; i < keys; ++i) {  // every key's limit state exists, as after traffic
    const auto caller = std::get<AccessControl::Caller>(access.authenticate("Bearer " + key_of(i)));
    (void)access.admit(caller, "gpt-5");
  }
  const long after = resident_kib();
  const auto heap_after = heap_in_use();
  std::mt19937 random(7);
  std::vector<double> ns;
  ns.reserve(requests);
  std::size_t headers_total = 0;
  for (std::size_t r = 0; r < requests; ++r) {
    const auto authorization = "Bearer " + key_of(random() % keys);
    const auto started = std::chrono::steady_clock::now();
    auto caller = std::get<AccessControl::Caller>(access.authenticate(authorization));
    auto permit = std::get<PermitPtr>(access.admit(caller, "gpt-5"));
    headers_total += access.rate_headers(caller).size();
    permit->charge(120);
    permit.reset();
    ns.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - started)
            .count());
  }
  std::sort(ns.begin(), ns.end());
  const auto at = [&](double p) {
    return ns[static_cast<std::size_t>(p * (ns.size() - 1))] / 1000;
  };
  std::printf(
      "%6zu keys: per request p50 %5.2f us  p99 %5.2f us  max %7.2f us;  memory %5.0f "
      "B/key in use (heap), RSS %ld -> %ld KiB;  %zu x-ratelimit headers\n",
      keys, at(0.5), at(0.99), ns.back() / 1000,
      static_cast<double>(heap_after - heap_before) / static_cast<double>(keys), before, after,
      headers_total / requests);
  std::filesystem::remove(file);
}

}  // namespace

int main() {
  std::printf("authentication and per-key limits, %d requests each (bench/bench_access.cpp)\n",
              200000);
  for (const std::size_t keys : {10, 1000, 10000}) run(keys, 200000);
  return 0;
}
