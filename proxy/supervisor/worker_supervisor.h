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
  std::chrono::milliseconds startup_timeout{10000};    // spawn → exec confirmed
  std::chrono::milliseconds handshake_timeout{15000};  // `initialize` sent → result
  std::chrono::milliseconds shutdown_grace{10000};     // drain: in-flight work may finish
  std::chrono::milliseconds kill_after{3000};          // SIGTERM → SIGKILL
  std::string client_name = "codex-proxy";
  std::string client_version = "0.0.0";
};

// Runs one worker process at a time: spawns it, performs the app-server handshake, restarts it with
// jittered exponential backoff when it fails, and drains it on shutdown. All work happens on the
// io_context's thread; WorkerStateMachine holds the one copy of the state everyone reads.
class WorkerSupervisor {
 public:
  WorkerSupervisor(boost::asio::io_context& io, SupervisorSettings settings, std::uint64_t seed);
  ~WorkerSupervisor();
  WorkerSupervisor(const WorkerSupervisor&) = delete;
  WorkerSupervisor& operator=(const WorkerSupervisor&) = delete;

  void start();
  // Graceful stop: draining at once, in-flight requests may finish for `shutdown_grace`, then the
  // worker gets SIGTERM and, after `kill_after`, SIGKILL. `on_stopped` runs once it has exited.
  void shutdown(std::function<void()> on_stopped);
  // Second signal: kill the worker now.
  void force_stop();

  const WorkerSnapshot& snapshot() const { return machine_.snapshot(); }

  // Where the worker's notifications go (the API layer routes them to turns by thread id).
  void set_notification_sink(std::function<void(const RpcNotification&)> sink) {
    notification_sink_ = std::move(sink);
  }
  // Where the worker's requests go (dynamic tool calls); the sink answers each through the channel.
  void set_request_sink(std::function<void(const RpcServerRequest&, JsonRpcChannel&)> sink) {
    request_sink_ = std::move(sink);
  }
  // Called when the worker process ends while the proxy runs, with the reason.
  void set_worker_lost_handler(std::function<void(const std::string&)> handler) {
    worker_lost_ = std::move(handler);
  }
  // Work in flight that a drain waits for (turns streaming on the worker), besides RPC requests.
  void set_in_flight_source(std::function<std::size_t()> source) { in_flight_ = std::move(source); }
  // Called after every state transition with the new snapshot (the status reporter's feed).
  void set_state_observer(std::function<void(const WorkerSnapshot&)> observer) {
    state_observer_ = std::move(observer);
  }
  // The channel to the ready worker; null unless the state is ready.
  std::shared_ptr<JsonRpcChannel> channel() const;

 private:
  struct RunningWorker;

  void spawn();
  void watch_exec_status(std::uint64_t generation);
  void begin_handshake(std::uint64_t generation);
  void watch_stderr(std::uint64_t generation);
  void on_stderr_line(const std::string& line);
  void reap();
  void on_worker_exit(int wait_status);
  // Records why the current worker is being given up on, and kills it; the exit path restarts it.
  void fail_current(std::string reason);
  void schedule_stable_check();
  void schedule_restart(std::chrono::milliseconds delay);
  void stop_worker();
  void wait_for_idle(std::chrono::steady_clock::time_point deadline);
  void finish_stop();
  void on_transition(WorkerState from, WorkerState to, const WorkerSnapshot& snapshot);

  boost::asio::io_context& io_;
  SupervisorSettings settings_;
  WorkerStateMachine machine_;
  telemetry::JsonLog log_{"supervisor"};
  boost::asio::signal_set child_signals_;
  boost::asio::steady_timer phase_timer_;  // startup or handshake deadline of the current worker
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer stable_timer_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer kill_timer_;
  telemetry::LogRateLimiter stderr_limiter_{20.0, 50.0};
  std::unique_ptr<RunningWorker> worker_;
  std::uint64_t generation_ = 0;
  std::function<void()> on_stopped_;
  std::function<void(const RpcNotification&)> notification_sink_;
  std::function<void(const RpcServerRequest&, JsonRpcChannel&)> request_sink_;
  std::function<void(const std::string&)> worker_lost_;
  std::function<std::size_t()> in_flight_;
  std::function<void(const WorkerSnapshot&)> state_observer_;
  std::size_t in_flight() const;
  bool shutting_down_ = false;
};

}  // namespace cxp::proxy
