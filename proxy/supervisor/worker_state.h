#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cxp::proxy {

// The lifecycle of the supervised worker process. See WorkerStateMachine for the transitions.
enum class WorkerState {
  kStarting,     // process being spawned (fork/exec not yet confirmed)
  kHandshaking,  // exec confirmed, `initialize` sent, waiting for its result
  kReady,        // handshake done: requests may be sent
  kBackoff,      // worker died or failed to start; waiting before the next spawn
  kDraining,     // shutdown requested: in-flight work finishing, then the worker is stopped
  kStopped,      // shutdown finished
  kFailed,       // gave up after WORKER_RESTART_MAX consecutive failures
};

std::string_view to_string(WorkerState state);

// Everything the probes, logs, metrics and the status reporter know about the worker. There is
// exactly one instance, owned by WorkerStateMachine; everyone else reads it.
struct WorkerSnapshot {
  WorkerState state = WorkerState::kStarting;
  int pid = 0;  // 0 when no process is running
  std::uint64_t restarts_total = 0;
  std::uint32_t restart_streak = 0;         // consecutive failures since the worker was last stable
  std::chrono::milliseconds backoff_ms{0};  // delay of the current / latest backoff in this streak
  std::optional<int> last_exit_code;
  std::optional<int> last_exit_signal;
  std::optional<std::chrono::milliseconds> handshake_ms;  // of the current or latest worker
  std::string last_error;  // why the latest worker failed; empty when none has
  std::chrono::steady_clock::time_point state_since{};
};

}  // namespace cxp::proxy
