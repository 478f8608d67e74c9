#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Recycling a worker that reached a lifetime limit: a successor is started while the current
// worker serves; once its handshake is done it takes the new turns and the old one drains.
enum class RecyclePhase {
  kIdle,         // no handover under way
  kStarting,     // the successor is being spawned
  kHandshaking,  // the successor's `initialize` is under way
  kBackoff,      // the successor failed; the next one starts after a backoff (the current serves)
};
std::string_view to_string(RecyclePhase phase);

enum class RecycleReason { kTurns, kRss };
std::string_view to_string(RecycleReason reason);

struct RecycleSnapshot {
  RecyclePhase phase = RecyclePhase::kIdle;
  std::optional<RecycleReason> reason;  // of the handover under way, or the latest one
  int successor_pid = 0;
  std::uint32_t successor_failures = 0;  // in a row, in this handover
  std::chrono::milliseconds successor_backoff_ms{0};
  std::vector<int> retiring_pids;  // former workers finishing their turns
  std::uint64_t by_turns = 0;      // handovers completed, by reason
  std::uint64_t by_rss = 0;
  std::uint64_t forced = 0;  // past the hard limit with no successor: restarted with a gap
};

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
  std::uint64_t turns = 0;        // turns started on the current worker
  std::uint64_t turns_total = 0;  // turns started on any worker
  std::uint64_t rss_bytes = 0;    // the current worker's process tree, latest sample; 0: unknown
  // The current worker's codex version, from its `initialize` answer (userAgent
  // "<client>/<version> (…)"); empty until a worker answered.
  std::string codex_version;
  RecycleSnapshot recycle;
};

}  // namespace cxp::proxy
