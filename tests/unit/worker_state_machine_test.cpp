#include "proxy/supervisor/worker_state_machine.h"

#include <doctest/doctest.h>

#include <vector>

using namespace cxp::proxy;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Recorder {
  std::vector<std::pair<WorkerState, WorkerState>> transitions;
  void attach(WorkerStateMachine& m) {
    m.set_observer([this](WorkerState from, WorkerState to, const WorkerSnapshot&) {
      transitions.emplace_back(from, to);
    });
  }
};

RestartPolicy policy(std::uint32_t restart_max = 5) {
  RestartPolicy p;
  p.backoff_initial = 100ms;
  p.backoff_max = 1000ms;
  p.restart_max = restart_max;
  p.stable_after = 10s;
  return p;
}

WorkerExit crashed(int code) {
  return {code, std::nullopt, "worker exited with code " + std::to_string(code)};
}

void bring_up(WorkerStateMachine& m, Clock::time_point t, int pid = 100) {
  m.spawn_started(t);
  m.exec_confirmed(pid, t);
  m.handshake_completed(12ms, t);
}

}  // namespace

TEST_CASE("a healthy start goes starting → handshaking → ready") {
  const auto t0 = Clock::now();
  WorkerStateMachine m(policy(), 1, t0);
  Recorder rec;
  rec.attach(m);
  m.spawn_started(t0);
  CHECK(m.snapshot().state == WorkerState::kStarting);
  m.exec_confirmed(4242, t0 + 1ms);
  CHECK(m.snapshot().state == WorkerState::kHandshaking);
  CHECK(m.snapshot().pid == 4242);
  CHECK_FALSE(m.accepting_requests());
  m.handshake_completed(35ms, t0 + 36ms);
  CHECK(m.snapshot().state == WorkerState::kReady);
  CHECK(m.snapshot().handshake_ms == 35ms);
  CHECK(m.accepting_requests());
  REQUIRE(rec.transitions.size() == 2);
  CHECK(rec.transitions[0] == std::pair{WorkerState::kStarting, WorkerState::kHandshaking});
  CHECK(rec.transitions[1] == std::pair{WorkerState::kHandshaking, WorkerState::kReady});
}

TEST_CASE("a crash records the exit, counts the restart and schedules a bounded backoff") {
  const auto t0 = Clock::now();
  WorkerStateMachine m(policy(), 7, t0);
  bring_up(m, t0);
  const auto decision = m.worker_exited(crashed(3), t0 + 1s);
  CHECK(decision.action == ExitDecision::Action::kRestartAfterBackoff);
  CHECK(decision.delay >= 80ms);
  CHECK(decision.delay <= 100ms);
  const auto& s = m.snapshot();
  CHECK(s.state == WorkerState::kBackoff);
  CHECK(s.pid == 0);
  CHECK(s.restarts_total == 1);
  CHECK(s.restart_streak == 1);
  CHECK(s.last_exit_code == 3);
  CHECK_FALSE(s.last_exit_signal.has_value());
  CHECK(s.backoff_ms == decision.delay);
  CHECK(s.last_error == "worker exited with code 3");
}

TEST_CASE("consecutive failures grow the backoff up to the cap, then give up at restart_max") {
  const auto t0 = Clock::now();
  WorkerStateMachine m(policy(6), 99, t0);
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 5; ++i) {
    m.spawn_started(t0);
    m.exec_confirmed(10 + i, t0);
    const auto d = m.worker_exited({std::nullopt, 9, "killed"}, t0);
    REQUIRE(d.action == ExitDecision::Action::kRestartAfterBackoff);
    delays.push_back(d.delay);
  }
  // nominal 100, 200, 400, 800, 1000 (cap); each within [0.8, 1.0] of nominal
  const std::int64_t nominal[] = {100, 200, 400, 800, 1000};
  for (std::size_t i = 0; i < delays.size(); ++i) {
    CHECK(delays[i].count() <= nominal[i]);
    CHECK(delays[i].count() >= nominal[i] * 8 / 10);
  }
  CHECK(m.snapshot().last_exit_signal == 9);
  m.spawn_started(t0);
  const auto last = m.worker_exited({1, std::nullopt, "exited"}, t0);
  CHECK(last.action == ExitDecision::Action::kGiveUp);
  CHECK(m.snapshot().state == WorkerState::kFailed);
  CHECK(m.snapshot().restart_streak == 6);
  CHECK(m.snapshot().restarts_total == 5);
}

TEST_CASE("restart_max 0 never gives up") {
  const auto t0 = Clock::now();
  WorkerStateMachine m(policy(0), 3, t0);
  for (int i = 0; i < 200; ++i) {
    m.spawn_started(t0);
    CHECK(m.worker_exited(crashed(1), t0).action == ExitDecision::Action::kRestartAfterBackoff);
  }
  CHECK(m.snapshot().backoff_ms <= 1000ms);
  CHECK(m.snapshot().backoff_ms >= 800ms);
}

TEST_CASE("the streak and backoff reset only after the worker stayed ready long enough") {
  const auto t0 = Clock::now();
  WorkerStateMachine m(policy(), 5, t0);
  bring_up(m, t0);
  m.worker_exited(crashed(1), t0 + 1s);
  m.spawn_started(t0 + 2s);
  m.exec_confirmed(2, t0 + 2s);
  m.handshake_completed(5ms, t0 + 2s);
  const auto ready_since = m.snapshot().state_since;
  CHECK_FALSE(m.note_stable(ready_since, ready_since + 9s));
  CHECK(m.snapshot().restart_streak == 1);
  CHECK(m.note_stable(ready_since, ready_since + 10s));
  CHECK(m.snapshot().restart_streak == 0);
  CHECK(m.snapshot().backoff_ms == 0ms);
  CHECK(m.snapshot().restarts_total == 1);  // history is kept
  // A stale check from an earlier ready period does nothing.
  m.worker_exited(crashed(1), ready_since + 11s);
  CHECK_FALSE(m.note_stable(ready_since, ready_since + 60s));
}

TEST_CASE("draining never restarts and ends in stopped") {
  const auto t0 = Clock::now();
  WorkerStateMachine m(policy(), 5, t0);
  Recorder rec;
  bring_up(m, t0);
  rec.attach(m);
  m.drain_started(t0 + 1s);
  CHECK(m.snapshot().state == WorkerState::kDraining);
  CHECK_FALSE(m.accepting_requests());
  const auto d = m.worker_exited({0, std::nullopt, "exited"}, t0 + 2s);
  CHECK(d.action == ExitDecision::Action::kStop);
  CHECK(m.snapshot().restarts_total == 0);
  CHECK(m.snapshot().last_exit_code == 0);
  m.stopped(t0 + 2s);
  CHECK(m.snapshot().state == WorkerState::kStopped);
  m.spawn_started(t0 + 3s);  // a late backoff timer must not resurrect it
  CHECK(m.snapshot().state == WorkerState::kStopped);
  REQUIRE(rec.transitions.size() == 2);
  CHECK(rec.transitions[1] == std::pair{WorkerState::kDraining, WorkerState::kStopped});
}

TEST_CASE("out-of-order events are ignored") {
  const auto t0 = Clock::now();
  WorkerStateMachine m(policy(), 5, t0);
  m.handshake_completed(1ms, t0);  // no handshake in progress
  CHECK(m.snapshot().state == WorkerState::kStarting);
  bring_up(m, t0);
  m.exec_confirmed(77, t0);
  CHECK(m.snapshot().state == WorkerState::kReady);
}

TEST_CASE("state names are the contract's words") {
  CHECK(to_string(WorkerState::kStarting) == "starting");
  CHECK(to_string(WorkerState::kHandshaking) == "handshaking");
  CHECK(to_string(WorkerState::kReady) == "ready");
  CHECK(to_string(WorkerState::kBackoff) == "backoff");
  CHECK(to_string(WorkerState::kDraining) == "draining");
  CHECK(to_string(WorkerState::kStopped) == "stopped");
  CHECK(to_string(WorkerState::kFailed) == "failed");
}

namespace {

WorkerStateMachine ready_machine(RecyclePolicy recycle, Clock::time_point t0) {
  WorkerStateMachine m(policy(), 7, t0, recycle);
  m.spawn_started(t0);
  m.exec_confirmed(100, t0);
  m.handshake_completed(10ms, t0);
  return m;
}

}  // namespace

TEST_CASE("recycling: a successor is due at the turn limit, takes over, and the old one retires") {
  const auto t0 = Clock::now();
  auto m = ready_machine({3, 0}, t0);
  std::vector<std::pair<RecyclePhase, RecyclePhase>> phases;
  m.set_recycle_observer([&](RecyclePhase from, RecyclePhase to, const WorkerSnapshot&) {
    phases.emplace_back(from, to);
  });
  m.turn_started();
  m.turn_started();
  CHECK_FALSE(m.recycle_due());
  m.turn_started();
  REQUIRE(m.recycle_due() == RecycleReason::kTurns);
  m.successor_spawn_started(RecycleReason::kTurns, t0);
  CHECK_FALSE(m.recycle_due());  // one handover at a time
  m.successor_exec_confirmed(200, t0);
  CHECK(m.snapshot().recycle.successor_pid == 200);
  CHECK(m.accepting_requests());  // the current worker serves throughout
  m.handover_completed(15ms, t0);
  const auto& s = m.snapshot();
  CHECK(s.pid == 200);
  CHECK(s.turns == 0);
  CHECK(s.turns_total == 3);
  CHECK(s.recycle.retiring_pids == std::vector<int>{100});
  CHECK(s.recycle.by_turns == 1);
  CHECK(s.state == WorkerState::kReady);
  CHECK(s.restarts_total == 0);  // a recycle is not a restart
  m.retired(100);
  CHECK(m.snapshot().recycle.retiring_pids.empty());
  CHECK(phases == std::vector<std::pair<RecyclePhase, RecyclePhase>>{
                      {RecyclePhase::kIdle, RecyclePhase::kStarting},
                      {RecyclePhase::kStarting, RecyclePhase::kHandshaking},
                      {RecyclePhase::kHandshaking, RecyclePhase::kIdle}});
}

TEST_CASE(
    "recycling by memory waits for a turn; the hard limit applies only after a failed successor") {
  const auto t0 = Clock::now();
  auto m = ready_machine({0, 100}, t0);
  CHECK_FALSE(m.rss_sampled(80));
  m.turn_started();
  CHECK_FALSE(m.rss_sampled(99));
  CHECK_FALSE(m.recycle_due());
  CHECK_FALSE(m.rss_sampled(160));
  REQUIRE(m.recycle_due() == RecycleReason::kRss);
  CHECK(m.past_hard_limit());
  m.successor_spawn_started(RecycleReason::kRss, t0);
  const auto delay = m.successor_failed(t0);
  CHECK(delay >= 80ms);
  CHECK(delay <= 100ms);
  CHECK(m.snapshot().recycle.phase == RecyclePhase::kBackoff);
  CHECK(m.snapshot().recycle.successor_failures == 1);
  CHECK(m.snapshot().recycle.reason == RecycleReason::kRss);
  m.recycle_forced(t0);
  CHECK(m.snapshot().recycle.forced == 1);
  CHECK(m.snapshot().recycle.phase == RecyclePhase::kIdle);
}

TEST_CASE("a memory limit below an idle worker is reported once and never recycles") {
  const auto t0 = Clock::now();
  auto m = ready_machine({3, 100}, t0);
  CHECK(m.rss_sampled(120));  // no turn served yet: the limit is below the idle worker
  CHECK(m.rss_limit_below_idle());
  CHECK_FALSE(m.rss_sampled(130));  // once
  m.turn_started();
  CHECK_FALSE(m.rss_sampled(300));
  CHECK_FALSE(m.recycle_due());      // memory no longer recycles (no storm of successors)
  CHECK_FALSE(m.past_hard_limit());  // nor forces a restart
  m.turn_started();
  m.turn_started();
  CHECK(m.recycle_due() == RecycleReason::kTurns);  // turns still do
}

TEST_CASE("a crash of the current worker abandons a handover and resets its counts") {
  const auto t0 = Clock::now();
  auto m = ready_machine({2, 0}, t0);
  m.turn_started();
  m.turn_started();
  m.successor_spawn_started(RecycleReason::kTurns, t0);
  m.handover_abandoned(t0);
  const auto decision = m.worker_exited({std::nullopt, 9, "killed"}, t0);
  CHECK(decision.action == ExitDecision::Action::kRestartAfterBackoff);
  CHECK(m.snapshot().turns == 0);
  CHECK(m.snapshot().recycle.phase == RecyclePhase::kIdle);
}
