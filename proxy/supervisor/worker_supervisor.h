#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/telemetry/json_log.h"
#include "common/telemetry/log_rate_limiter.h"
#include "proxy/rpc/json_rpc_channel.h"
#include "proxy/rpc/line_splitter.h"
#include "proxy/supervisor/worker_state_machine.h"

namespace cxp::proxy {

struct SupervisorSettings {
  std::vector<std::string> command;      // e.g. {"codex", "app-server", "-c", …}
  std::vector<std::string> environment;  // the worker's whole environment, "NAME=value"
  RestartPolicy restart;
  RecyclePolicy recycle;
  std::chrono::milliseconds startup_timeout{10000};    // spawn → exec confirmed
  std::chrono::milliseconds handshake_timeout{15000};  // `initialize` sent → result
  std::chrono::milliseconds shutdown_grace{10000};     // drain: in-flight work may finish
  std::chrono::milliseconds kill_after{3000};          // SIGTERM → SIGKILL
  // A retiring worker's turns may finish this long (the request timeout); then it is stopped.
  std::chrono::milliseconds retire_grace{120000};
  std::chrono::milliseconds rss_sample_interval{2000};
  std::string client_name = "codex-proxy";
  std::string client_version = "0.0.0";
};

// Supervises the worker processes: spawns the worker, performs the app-server handshake, restarts
// it with jittered exponential backoff when it fails, recycles it when it reaches its lifetime
// limit (turns or memory: a successor is started and handshaken while it serves, then takes the
// new turns while the old one finishes its own — /readyz stays 200 throughout), and drains on
// shutdown. All work happens on the io_context's thread; WorkerStateMachine holds the one copy of
// the state everyone reads.
class WorkerSupervisor {
 public:
  WorkerSupervisor(boost::asio::io_context& io, SupervisorSettings settings, std::uint64_t seed);
  ~WorkerSupervisor();
  WorkerSupervisor(const WorkerSupervisor&) = delete;
  WorkerSupervisor& operator=(const WorkerSupervisor&) = delete;

  void start();
  // Graceful stop: draining at once, in-flight requests (on every worker) may finish for
  // `shutdown_grace`, then the workers get SIGTERM and, after `kill_after`, SIGKILL. `on_stopped`
  // runs once all have exited.
  void shutdown(std::function<void()> on_stopped);
  // Second signal: kill the workers now.
  void force_stop();

  const WorkerSnapshot& snapshot() const { return machine_.snapshot(); }

  // Where the workers' notifications go (the API layer routes them to turns by thread id).
  void set_notification_sink(std::function<void(const RpcNotification&)> sink) {
    notification_sink_ = std::move(sink);
  }
  // Where the workers' requests go (dynamic tool calls); the sink answers each through the channel.
  void set_request_sink(std::function<void(const RpcServerRequest&, JsonRpcChannel&)> sink) {
    request_sink_ = std::move(sink);
  }
  // Called when a worker process ends while it may have turns, with the reason and its channel.
  void set_worker_lost_handler(
      std::function<void(const std::string&, const JsonRpcChannel*)> handler) {
    worker_lost_ = std::move(handler);
  }
  // Turns in flight on a worker's channel (a drain and a retirement wait for them), besides RPCs.
  void set_in_flight_source(std::function<std::size_t(const JsonRpcChannel*)> source) {
    in_flight_ = std::move(source);
  }
  // Called after every state transition with the new snapshot (the status reporter's feed).
  void set_state_observer(std::function<void(const WorkerSnapshot&)> observer) {
    state_observer_ = std::move(observer);
  }
  // The channel to the current worker; null unless it is ready.
  std::shared_ptr<JsonRpcChannel> channel() const;
  // A turn started on `channel` (counted towards the worker's lifetime when it is the current).
  void note_turn(const JsonRpcChannel* channel);

 private:
  struct RunningWorker;
  enum class Role { kCurrent, kSuccessor, kRetiring };

  void spawn(Role role, RecycleReason reason = RecycleReason::kTurns);
  RunningWorker* find(std::uint64_t id) const;
  void watch_exec_status(std::uint64_t id);
  void begin_handshake(std::uint64_t id);
  void on_handshake_done(std::uint64_t id, std::chrono::milliseconds took,
                         std::string codex_version);
  void watch_stderr(std::uint64_t id);
  void on_stderr_line(int pid, const std::string& line);
  void reap();
  void on_exit(RunningWorker& worker, int wait_status);
  void on_current_exit(std::unique_ptr<RunningWorker> worker, WorkerExit exit);
  void on_successor_exit(WorkerExit exit);
  // Records why a worker is being given up on, and kills it; its exit path does the rest.
  void fail(RunningWorker& worker, std::string reason);
  void schedule_stable_check();
  void schedule_restart(std::chrono::milliseconds delay);
  void schedule_rss_sample();
  void check_recycle();
  void retire(std::uint64_t id, std::chrono::steady_clock::time_point deadline);
  void stop_process(RunningWorker& worker);
  void wait_for_idle(std::chrono::steady_clock::time_point deadline);
  void finish_stop();
  void on_transition(WorkerState from, WorkerState to, const WorkerSnapshot& snapshot);
  void on_recycle_transition(RecyclePhase from, RecyclePhase to, const WorkerSnapshot& snapshot);
  std::size_t in_flight(const RunningWorker& worker) const;
  std::size_t in_flight() const;

  boost::asio::io_context& io_;
  SupervisorSettings settings_;
  WorkerStateMachine machine_;
  telemetry::JsonLog log_{"supervisor"};
  boost::asio::signal_set child_signals_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer successor_timer_;  // the next successor after a failed one
  boost::asio::steady_timer stable_timer_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer rss_timer_;
  telemetry::LogRateLimiter stderr_limiter_{20.0, 50.0};
  std::vector<std::unique_ptr<RunningWorker>> workers_;  // every live worker process
  RunningWorker* current_ = nullptr;
  RunningWorker* successor_ = nullptr;
  std::uint64_t next_id_ = 0;
  bool rss_unreadable_logged_ = false;
  bool rss_below_idle_logged_ = false;
  std::function<void()> on_stopped_;
  std::function<void(const RpcNotification&)> notification_sink_;
  std::function<void(const RpcServerRequest&, JsonRpcChannel&)> request_sink_;
  std::function<void(const std::string&, const JsonRpcChannel*)> worker_lost_;
  std::function<std::size_t(const JsonRpcChannel*)> in_flight_;
  std::function<void(const WorkerSnapshot&)> state_observer_;
  bool shutting_down_ = false;
  bool stopped_ = false;
};

// RSS of a process and its descendants, in bytes; 0 when /proc cannot tell.
std::uint64_t process_tree_rss(int pid);

}  // namespace cxp::proxy
