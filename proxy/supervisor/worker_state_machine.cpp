#include "proxy/supervisor/worker_state_machine.h"

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

WorkerStateMachine::WorkerStateMachine(RestartPolicy policy, std::uint64_t seed,
                                       Clock::time_point now)
    : policy_(policy), backoff_(policy.backoff_initial, policy.backoff_max), rng_(seed) {
  snapshot_.state_since = now;
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
