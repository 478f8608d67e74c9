#pragma once

#include <atomic>
#include <cstdint>

namespace cxp::proxy {

// Function calls of the model, counted across every request (exported as the codex_tool_buffer_*
// metrics): a call arrives from the worker (started), reaches the client (flushed), or is dropped
// — a function the request did not declare, or a turn that failed or timed out around it
// (aborted).
struct ToolBufferCounters {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> flushed{0};
  std::atomic<std::uint64_t> aborted{0};
};

// Counters of the API kept in one place and read by /metrics.
struct ApiStats {
  ToolBufferCounters tool_buffer;
  std::atomic<std::int64_t> streams_active{0};
  // /v1 requests answered 503 because of maintenance mode (codex_maintenance_refused_total: what a
  // maintenance window turned away). Counted by the const gatekeeper, hence mutable.
  mutable std::atomic<std::uint64_t> maintenance_refused{0};
};

}  // namespace cxp::proxy
