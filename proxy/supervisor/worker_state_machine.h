#pragma once

#include <chrono>
#include <functional>
#include <random>
#include <string>

#include "common/backoff.h"
#include "proxy/supervisor/worker_state.h"

namespace cxp::proxy {

struct RestartPolicy {
  std::chrono::milliseconds backoff_initial{250};
  std::chrono::milliseconds backoff_max{5000};
  std::uint32_t restart_max = 10;  // consecutive failures before giving up; 0 = never give up
  std::chrono::milliseconds stable_after{30000};  // ready this long → the restart streak resets
};

// How a worker ended. Exactly one of exit_code / signal is set when the process was reaped.
struct WorkerExit {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;  // human-readable cause, e.g. "handshake timed out after 5000 ms"
};

// What the supervisor must do after a worker ended.
struct ExitDecision {
  enum class Action { kRestartAfterBackoff, kGiveUp, kStop } action;
  std::chrono::milliseconds delay{0};
};

// The single source of truth for the worker's state. Pure logic: time and randomness come in as
// arguments, so every transition is unit-testable. `transition` is the only place that changes
// `state`; it calls the observer, which logs and notifies the probes.
class WorkerStateMachine {
 public:
  using Clock = std::chrono::steady_clock;
  // Called after every state change with (from, to, snapshot after the change).
  using Observer = std::function<void(WorkerState from, WorkerState to, const WorkerSnapshot&)>;

  WorkerStateMachine(RestartPolicy policy, std::uint64_t seed, Clock::time_point now);

  void set_observer(Observer observer) { observer_ = std::move(observer); }
  const WorkerSnapshot& snapshot() const { return snapshot_; }
  const RestartPolicy& policy() const { return policy_; }

  // starting: a new process is being spawned.
  void spawn_started(Clock::time_point now);
  // handshaking: exec succeeded and `initialize` was sent.
  void exec_confirmed(int pid, Clock::time_point now);
  // ready: the handshake finished after `handshake`.
  void handshake_completed(std::chrono::milliseconds handshake, Clock::time_point now);
  // The worker has been ready since `ready_since`; if that is long enough, reset the streak.
  // Returns true when the streak was reset.
  bool note_stable(Clock::time_point ready_since, Clock::time_point now);
  // The worker process ended (crash, failed exec, failed handshake, or a stop we asked for).
  ExitDecision worker_exited(const WorkerExit& exit, Clock::time_point now);
  // draining: shutdown requested.
  void drain_started(Clock::time_point now);
  // stopped: shutdown finished.
  void stopped(Clock::time_point now);

  bool accepting_requests() const { return snapshot_.state == WorkerState::kReady; }

 private:
  void transition(WorkerState to, Clock::time_point now);

  RestartPolicy policy_;
  JitteredBackoff backoff_;
  std::mt19937_64 rng_;
  WorkerSnapshot snapshot_;
  Observer observer_;
};

}  // namespace cxp::proxy
