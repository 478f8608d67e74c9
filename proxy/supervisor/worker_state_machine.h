#pragma once

#include <chrono>
#include <functional>
#include <optional>
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

// A worker's bounded lifetime: a successor takes over after this many turns or this much memory
// (0: no such limit). Past twice the turns or 1.5 times the memory with no successor ready, the
// worker is restarted anyway, with a gap.
struct RecyclePolicy {
  std::uint64_t max_turns = 0;
  std::uint64_t max_rss_bytes = 0;
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
  // Called after every recycle phase change with (from, to, snapshot after the change).
  using RecycleObserver =
      std::function<void(RecyclePhase from, RecyclePhase to, const WorkerSnapshot&)>;

  WorkerStateMachine(RestartPolicy policy, std::uint64_t seed, Clock::time_point now,
                     RecyclePolicy recycle = {});

  void set_observer(Observer observer) { observer_ = std::move(observer); }
  void set_recycle_observer(RecycleObserver observer) { recycle_observer_ = std::move(observer); }
  const WorkerSnapshot& snapshot() const { return snapshot_; }
  const RestartPolicy& policy() const { return policy_; }

  // starting: a new process is being spawned.
  void spawn_started(Clock::time_point now);
  // handshaking: exec succeeded and `initialize` was sent.
  void exec_confirmed(int pid, Clock::time_point now);
  // ready: the handshake finished after `handshake`.
  void handshake_completed(std::chrono::milliseconds handshake, Clock::time_point now);
  // The codex version of the worker now current (not a transition: a fact for /healthz, /metrics).
  void set_codex_version(std::string version) { snapshot_.codex_version = std::move(version); }
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

  // --- recycling ---
  void turn_started();
  // Returns true the first time a worker that has served no turn is found at or above the memory
  // limit: the limit is below an idle worker, so recycling by memory could never help (it would
  // replace every worker at once). Memory then no longer triggers recycling; turns still do.
  bool rss_sampled(std::uint64_t bytes);
  bool rss_limit_below_idle() const { return rss_limit_below_idle_; }
  // The limit that calls for a successor now, if any: only while ready and no handover is under
  // way; memory only once the worker has served a turn.
  std::optional<RecycleReason> recycle_due() const;
  // Past the hard limit (twice the turns; 1.5 times the memory once it has served a turn).
  bool past_hard_limit() const;
  // starting: a successor is spawned for `reason` (kept from the first attempt of a handover).
  void successor_spawn_started(RecycleReason reason, Clock::time_point now);
  // handshaking: the successor's exec succeeded.
  void successor_exec_confirmed(int pid, Clock::time_point now);
  // The successor is ready: it becomes the current worker; the former one retires.
  void handover_completed(std::chrono::milliseconds handshake, Clock::time_point now);
  // The successor failed (exit, failed handshake): backoff; returns the delay before the next.
  std::chrono::milliseconds successor_failed(Clock::time_point now);
  // A handover given up: the current worker stopped or is restarted.
  void handover_abandoned(Clock::time_point now);
  // The hard limit was passed with no successor: the current worker is restarted with a gap.
  void recycle_forced(Clock::time_point now);
  // A retiring worker ended.
  void retired(int pid);

 private:
  void transition(WorkerState to, Clock::time_point now);
  void recycle_transition(RecyclePhase to, Clock::time_point now);
  bool rss_limit_applies() const;

  RestartPolicy policy_;
  JitteredBackoff backoff_;
  std::mt19937_64 rng_;
  WorkerSnapshot snapshot_;
  Observer observer_;
  RecyclePolicy recycle_policy_;
  RecycleObserver recycle_observer_;
  bool rss_limit_below_idle_ = false;
};

}  // namespace cxp::proxy
