#include "proxy/supervisor/worker_state_machine.h"

#include <algorithm>

namespace cxp::proxy {

std::string_view to_string(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return "starting";
    case WorkerState::kHandshaking:
      return "handshaking";
    case WorkerState::kReady:
      return "ready";
    case WorkerState::kBackoff:
      return "backoff";
    case WorkerState::kDraining:
      return "draining";
    case WorkerState::kStopped:
      return "stopped";
    case WorkerState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view to_string(RecyclePhase phase) {
  switch (phase) {
    case RecyclePhase::kIdle:
      return "idle";
    case RecyclePhase::kStarting:
      return "starting";
    case RecyclePhase::kHandshaking:
      return "handshaking";
    case RecyclePhase::kBackoff:
      return "backoff";
  }
  return "unknown";
}

std::string_view to_string(RecycleReason reason) {
  return reason == RecycleReason::kTurns ? "turns" : "rss";
}

WorkerStateMachine::WorkerStateMachine(RestartPolicy policy, std::uint64_t seed,
                                       Clock::time_point now, RecyclePolicy recycle)
    : policy_(policy),
      backoff_(policy.backoff_initial, policy.backoff_max),
      rng_(seed),
      recycle_policy_(recycle) {
  snapshot_.state_since = now;
}

void WorkerStateMachine::recycle_transition(RecyclePhase to, Clock::time_point) {
  const RecyclePhase from = snapshot_.recycle.phase;
  snapshot_.recycle.phase = to;
  if (recycle_observer_) recycle_observer_(from, to, snapshot_);
}

void WorkerStateMachine::turn_started() {
  ++snapshot_.turns;
  ++snapshot_.turns_total;
}

bool WorkerStateMachine::rss_sampled(std::uint64_t bytes) {
  snapshot_.rss_bytes = bytes;
  if (rss_limit_below_idle_ || recycle_policy_.max_rss_bytes == 0 || snapshot_.turns > 0 ||
      bytes < recycle_policy_.max_rss_bytes) {
    return false;
  }
  rss_limit_below_idle_ = true;
  return true;
}

bool WorkerStateMachine::rss_limit_applies() const {
  return recycle_policy_.max_rss_bytes > 0 && !rss_limit_below_idle_ && snapshot_.turns > 0;
}

std::optional<RecycleReason> WorkerStateMachine::recycle_due() const {
  if (snapshot_.state != WorkerState::kReady || snapshot_.recycle.phase != RecyclePhase::kIdle) {
    return std::nullopt;
  }
  if (recycle_policy_.max_turns > 0 && snapshot_.turns >= recycle_policy_.max_turns) {
    return RecycleReason::kTurns;
  }
  if (rss_limit_applies() && snapshot_.rss_bytes >= recycle_policy_.max_rss_bytes) {
    return RecycleReason::kRss;
  }
  return std::nullopt;
}

bool WorkerStateMachine::past_hard_limit() const {
  // A worker that has served nothing is never past a memory limit: restarting it could not help.
  return (recycle_policy_.max_turns > 0 && snapshot_.turns >= 2 * recycle_policy_.max_turns) ||
         (rss_limit_applies() && snapshot_.rss_bytes >= recycle_policy_.max_rss_bytes / 2 * 3);
}

void WorkerStateMachine::successor_spawn_started(RecycleReason reason, Clock::time_point now) {
  if (snapshot_.recycle.phase == RecyclePhase::kIdle) {
    snapshot_.recycle.reason = reason;
    snapshot_.recycle.successor_failures = 0;
  }
  snapshot_.recycle.successor_pid = 0;
  recycle_transition(RecyclePhase::kStarting, now);
}

void WorkerStateMachine::successor_exec_confirmed(int pid, Clock::time_point now) {
  snapshot_.recycle.successor_pid = pid;
  if (snapshot_.recycle.phase == RecyclePhase::kStarting) {
    recycle_transition(RecyclePhase::kHandshaking, now);
  }
}

void WorkerStateMachine::handover_completed(std::chrono::milliseconds handshake,
                                            Clock::time_point now) {
  auto& r = snapshot_.recycle;
  if (snapshot_.pid > 0) r.retiring_pids.push_back(snapshot_.pid);
  snapshot_.pid = r.successor_pid;
  snapshot_.handshake_ms = handshake;
  snapshot_.turns = 0;
  snapshot_.rss_bytes = 0;
  r.successor_pid = 0;
  r.successor_failures = 0;
  r.successor_backoff_ms = std::chrono::milliseconds{0};
  if (r.reason == RecycleReason::kTurns) ++r.by_turns;
  if (r.reason == RecycleReason::kRss) ++r.by_rss;
  recycle_transition(RecyclePhase::kIdle, now);
}

std::chrono::milliseconds WorkerStateMachine::successor_failed(Clock::time_point now) {
  auto& r = snapshot_.recycle;
  r.successor_pid = 0;
  r.successor_failures += 1;
  r.successor_backoff_ms = backoff_.delay(r.successor_failures, rng_);
  recycle_transition(RecyclePhase::kBackoff, now);
  return r.successor_backoff_ms;
}

void WorkerStateMachine::handover_abandoned(Clock::time_point now) {
  auto& r = snapshot_.recycle;
  r.successor_pid = 0;
  r.successor_backoff_ms = std::chrono::milliseconds{0};
  if (r.phase != RecyclePhase::kIdle) recycle_transition(RecyclePhase::kIdle, now);
}

void WorkerStateMachine::recycle_forced(Clock::time_point now) {
  ++snapshot_.recycle.forced;
  handover_abandoned(now);
}

void WorkerStateMachine::retired(int pid) {
  auto& pids = snapshot_.recycle.retiring_pids;
  pids.erase(std::remove(pids.begin(), pids.end(), pid), pids.end());
}

void WorkerStateMachine::transition(WorkerState to, Clock::time_point now) {
  const WorkerState from = snapshot_.state;
  snapshot_.state = to;
  snapshot_.state_since = now;
  if (observer_) observer_(from, to, snapshot_);
}

void WorkerStateMachine::spawn_started(Clock::time_point now) {
  if (snapshot_.state == WorkerState::kDraining || snapshot_.state == WorkerState::kStopped) return;
  snapshot_.pid = 0;
  snapshot_.handshake_ms.reset();
  if (snapshot_.state == WorkerState::kStarting) {
    snapshot_.state_since = now;  // the very first spawn: nothing changes
    return;
  }
  transition(WorkerState::kStarting, now);
}

void WorkerStateMachine::exec_confirmed(int pid, Clock::time_point now) {
  snapshot_.pid = pid;
  if (snapshot_.state != WorkerState::kStarting) return;
  transition(WorkerState::kHandshaking, now);
}

void WorkerStateMachine::handshake_completed(std::chrono::milliseconds handshake,
                                             Clock::time_point now) {
  if (snapshot_.state != WorkerState::kHandshaking) return;
  snapshot_.handshake_ms = handshake;
  transition(WorkerState::kReady, now);
}

bool WorkerStateMachine::note_stable(Clock::time_point ready_since, Clock::time_point now) {
  if (snapshot_.state != WorkerState::kReady || snapshot_.state_since != ready_since) return false;
  if (now - ready_since < policy_.stable_after || snapshot_.restart_streak == 0) return false;
  snapshot_.restart_streak = 0;
  snapshot_.backoff_ms = std::chrono::milliseconds{0};
  return true;
}

ExitDecision WorkerStateMachine::worker_exited(const WorkerExit& exit, Clock::time_point now) {
  snapshot_.pid = 0;
  snapshot_.turns = 0;
  snapshot_.rss_bytes = 0;
  snapshot_.last_exit_code = exit.exit_code;
  snapshot_.last_exit_signal = exit.signal;
  if (snapshot_.state == WorkerState::kDraining || snapshot_.state == WorkerState::kStopped) {
    return {ExitDecision::Action::kStop};
  }
  snapshot_.last_error = exit.reason;
  snapshot_.restart_streak += 1;
  if (policy_.restart_max > 0 && snapshot_.restart_streak >= policy_.restart_max) {
    snapshot_.backoff_ms = std::chrono::milliseconds{0};
    transition(WorkerState::kFailed, now);
    return {ExitDecision::Action::kGiveUp};
  }
  snapshot_.restarts_total += 1;
  snapshot_.backoff_ms = backoff_.delay(snapshot_.restart_streak, rng_);
  transition(WorkerState::kBackoff, now);
  return {ExitDecision::Action::kRestartAfterBackoff, snapshot_.backoff_ms};
}

void WorkerStateMachine::drain_started(Clock::time_point now) {
  if (snapshot_.state == WorkerState::kDraining || snapshot_.state == WorkerState::kStopped) return;
  transition(WorkerState::kDraining, now);
}

void WorkerStateMachine::stopped(Clock::time_point now) {
  if (snapshot_.state == WorkerState::kStopped) return;
  snapshot_.pid = 0;
  transition(WorkerState::kStopped, now);
}

}  // namespace cxp::proxy
