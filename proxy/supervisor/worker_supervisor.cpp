#include "proxy/supervisor/worker_supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "proxy/supervisor/worker_process.h"

namespace cxp::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t kMaxStderrLineBytes = 64 * 1024;  // longer lines are dropped
constexpr std::size_t kMaxStderrLogBytes = 2048;        // kept lines are truncated to this
constexpr milliseconds kExitAfterEofGrace{500};
constexpr milliseconds kDrainPollInterval{20};

// Removes ANSI escape sequences (the real worker colours its stderr) and control characters.
std::string printable(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\x1b') {
      if (i + 1 < line.size() && line[i + 1] == '[') {
        i += 2;
        while (i < line.size() && !(line[i] >= '@' && line[i] <= '~')) ++i;
      }
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') continue;
    out.push_back(c);
  }
  return out;
}

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "ended with wait status " + std::to_string(wait_status);
}

}  // namespace

struct WorkerSupervisor::RunningWorker {
  RunningWorker(asio::io_context& io, const SpawnedWorker& spawned)
      : pid(spawned.pid),
        channel(std::make_shared<JsonRpcChannel>(io, spawned.stdin_fd, spawned.stdout_fd)),
        stderr_pipe(io, spawned.stderr_fd),
        exec_status(io, spawned.exec_status_fd) {}

  int pid;
  std::shared_ptr<JsonRpcChannel> channel;
  asio::posix::stream_descriptor stderr_pipe;
  asio::posix::stream_descriptor exec_status;
  std::array<char, 4096> stderr_buffer{};
  std::array<char, 16> exec_buffer{};
  std::size_t exec_bytes = 0;
  LineSplitter stderr_lines{kMaxStderrLineBytes};
  std::string failure_reason;  // set when we decided to kill it; explains the exit
  Clock::time_point handshake_started{};
};

WorkerSupervisor::WorkerSupervisor(asio::io_context& io, SupervisorSettings settings,
                                   std::uint64_t seed)
    : io_(io),
      settings_(std::move(settings)),
      machine_(settings_.restart, seed, Clock::now()),
      child_signals_(io, SIGCHLD),
      phase_timer_(io),
      backoff_timer_(io),
      stable_timer_(io),
      drain_timer_(io),
      kill_timer_(io) {
  machine_.set_observer([this](WorkerState from, WorkerState to, const WorkerSnapshot& snapshot) {
    on_transition(from, to, snapshot);
  });
}

WorkerSupervisor::~WorkerSupervisor() {
  if (worker_) {
    signal_worker_group(worker_->pid, SIGKILL);
    int status = 0;
    ::waitpid(worker_->pid, &status, 0);
  }
}

std::shared_ptr<JsonRpcChannel> WorkerSupervisor::channel() const {
  if (!worker_ || !machine_.accepting_requests()) return nullptr;
  return worker_->channel;
}

void WorkerSupervisor::on_transition(WorkerState from, WorkerState to, const WorkerSnapshot& s) {
  nlohmann::json fields = {{"from", to_string(from)},
                           {"worker_state", to_string(to)},
                           {"restart_count", s.restarts_total},
                           {"restart_streak", s.restart_streak},
                           {"backoff_ms", s.backoff_ms.count()}};
  if (s.pid > 0) fields["pid"] = s.pid;
  log_.info("worker_state_changed", std::move(fields));
  if (state_observer_) state_observer_(s);
}

void WorkerSupervisor::start() {
  child_signals_.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) reap();
  });
  spawn();
}

void WorkerSupervisor::spawn() {
  if (shutting_down_) return;
  ++generation_;
  machine_.spawn_started(Clock::now());
  SpawnedWorker spawned;
  std::string error;
  if (!spawn_worker(settings_.command, settings_.environment, spawned, error)) {
    // Fork itself failed (no process exists): treat it as an immediate failure of this worker.
    log_.error("worker_spawn_failed", {{"error_code", "spawn_failed"}, {"message", error}});
    const auto decision = machine_.worker_exited({std::nullopt, std::nullopt, error}, Clock::now());
    if (decision.action == ExitDecision::Action::kRestartAfterBackoff)
      schedule_restart(decision.delay);
    return;
  }
  worker_ = std::make_unique<RunningWorker>(io_, spawned);
  log_.info("worker_started", {{"pid", spawned.pid},
                               {"command", settings_.command},
                               {"restart_count", snapshot().restarts_total}});
  const auto generation = generation_;
  phase_timer_.expires_after(settings_.startup_timeout);
  phase_timer_.async_wait([this, generation](boost::system::error_code ec) {
    if (ec || generation != generation_ || !worker_) return;
    fail_current("worker did not start within WORKER_STARTUP_TIMEOUT_MS=" +
                 std::to_string(settings_.startup_timeout.count()));
  });
  watch_exec_status(generation);
  watch_stderr(generation);
}

void WorkerSupervisor::watch_exec_status(std::uint64_t generation) {
  auto& w = *worker_;
  w.exec_status.async_read_some(
      asio::buffer(w.exec_buffer.data() + w.exec_bytes, w.exec_buffer.size() - w.exec_bytes),
      [this, generation](boost::system::error_code ec, std::size_t n) {
        if (generation != generation_ || !worker_) return;
        auto& w = *worker_;
        if (!ec) {
          w.exec_bytes += n;
          if (w.exec_bytes < sizeof(int)) return watch_exec_status(generation);
          int code = 0;
          std::memcpy(&code, w.exec_buffer.data(), sizeof code);
          w.failure_reason = "cannot execute CODEX_BIN '" + settings_.command.front() +
                             "': " + std::strerror(code);
          return;  // the child exits 127; the exit path reports it
        }
        if (ec == asio::error::operation_aborted) return;
        // EOF: the close-on-exec pipe closed, so exec succeeded.
        begin_handshake(generation);
      });
}

void WorkerSupervisor::begin_handshake(std::uint64_t generation) {
  auto& w = *worker_;
  machine_.exec_confirmed(w.pid, Clock::now());
  if (snapshot().state != WorkerState::kHandshaking) return;
  w.handshake_started = Clock::now();
  phase_timer_.cancel();
  w.channel->start({
      .on_notification =
          [this](const RpcNotification& note) {
            if (notification_sink_) notification_sink_(note);
          },
      .on_request =
          [this, generation](const RpcServerRequest& ask) {
            if (generation != generation_ || !worker_) return;
            if (request_sink_) return request_sink_(ask, *worker_->channel);
            worker_->channel->respond_error(ask.id, -32601,
                                            "codex-proxy does not handle " + ask.method);
          },
      .on_bad_line =
          [this](const std::string& reason, std::string_view line) {
            log_.warn("worker_bad_line",
                      {{"reason", reason},
                       {"line_prefix",
                        printable(line.substr(0, std::min<std::size_t>(line.size(), 200)))}});
          },
      .on_closed =
          [this, generation] {
            // Normally the exit follows at once; a worker that closes stdout but lives on is
            // useless, so it is killed after a short grace.
            if (generation != generation_ || !worker_) return;
            kill_timer_.expires_after(kExitAfterEofGrace);
            kill_timer_.async_wait([this, generation](boost::system::error_code ec) {
              if (ec || generation != generation_ || !worker_) return;
              fail_current("worker closed its stdout but did not exit");
            });
          },
  });
  // The experimental API carries what the proxy needs: dynamic (caller-declared) tools, injected
  // history items and the raw end-of-response event.
  nlohmann::json params = {
      {"clientInfo", {{"name", settings_.client_name}, {"version", settings_.client_version}}},
      {"capabilities", {{"experimentalApi", true}}}};
  w.channel->request(
      "initialize", params, settings_.handshake_timeout, [this, generation](RpcOutcome outcome) {
        if (generation != generation_ || !worker_) return;
        if (!outcome.transport_error.empty()) {
          if (outcome.transport_error.find("timed out") != std::string::npos) {
            fail_current("handshake timed out after WORKER_HANDSHAKE_TIMEOUT_MS=" +
                         std::to_string(settings_.handshake_timeout.count()));
          }
          return;  // otherwise the worker is gone; the exit path reports it
        }
        if (!outcome.ok) {
          fail_current("handshake failed: initialize returned error " + outcome.error.dump());
          return;
        }
        worker_->channel->notify("initialized", nlohmann::json());
        const auto took = duration_cast<milliseconds>(Clock::now() - worker_->handshake_started);
        machine_.handshake_completed(took, Clock::now());
        log_.info("handshake_complete", {{"pid", worker_->pid},
                                         {"handshake_ms", took.count()},
                                         {"worker_state", to_string(snapshot().state)},
                                         {"restart_count", snapshot().restarts_total}});
        schedule_stable_check();
      });
}

void WorkerSupervisor::schedule_stable_check() {
  const auto ready_since = snapshot().state_since;
  stable_timer_.expires_after(settings_.restart.stable_after);
  stable_timer_.async_wait([this, ready_since](boost::system::error_code ec) {
    if (ec) return;
    if (machine_.note_stable(ready_since, Clock::now())) {
      log_.info("restart_streak_reset", {{"worker_state", to_string(snapshot().state)},
                                         {"restart_count", snapshot().restarts_total}});
    }
  });
}

void WorkerSupervisor::watch_stderr(std::uint64_t generation) {
  auto& w = *worker_;
  w.stderr_pipe.async_read_some(asio::buffer(w.stderr_buffer),
                                [this, generation](boost::system::error_code ec, std::size_t n) {
                                  if (generation != generation_ || !worker_) return;
                                  if (ec) {
                                    const auto tail = worker_->stderr_lines.take_partial();
                                    if (!tail.empty()) on_stderr_line(tail);
                                    return;
                                  }
                                  for (const auto& line : worker_->stderr_lines.feed(
                                           std::string_view(worker_->stderr_buffer.data(), n))) {
                                    on_stderr_line(line);
                                  }
                                  watch_stderr(generation);
                                });
}

void WorkerSupervisor::on_stderr_line(const std::string& line) {
  auto text = printable(line);
  if (text.empty()) return;
  if (text.size() > kMaxStderrLogBytes) text = text.substr(0, kMaxStderrLogBytes) + "…";
  if (!stderr_limiter_.allow(Clock::now())) return;
  nlohmann::json fields = {{"pid", worker_ ? worker_->pid : 0}, {"line", text}};
  if (const auto dropped = stderr_limiter_.take_suppressed(); dropped > 0) {
    fields["suppressed_lines"] = dropped;
  }
  log_.info("worker_stderr", std::move(fields));
}

void WorkerSupervisor::fail_current(std::string reason) {
  if (!worker_) return;
  if (worker_->failure_reason.empty()) worker_->failure_reason = std::move(reason);
  log_.warn("worker_killed", {{"pid", worker_->pid},
                              {"reason", worker_->failure_reason},
                              {"worker_state", to_string(snapshot().state)}});
  signal_worker_group(worker_->pid, SIGKILL);
}

void WorkerSupervisor::reap() {
  child_signals_.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) reap();
  });
  if (!worker_) return;
  int status = 0;
  const pid_t pid = ::waitpid(worker_->pid, &status, WNOHANG);
  if (pid == worker_->pid) on_worker_exit(status);
}

void WorkerSupervisor::on_worker_exit(int wait_status) {
  auto worker = std::move(worker_);
  ++generation_;                              // invalidates every callback of the old worker
  signal_worker_group(worker->pid, SIGKILL);  // leftovers of its process tree
  worker->channel->close("worker exited");
  boost::system::error_code ignored;
  worker->stderr_pipe.close(ignored);
  worker->exec_status.close(ignored);
  phase_timer_.cancel();
  stable_timer_.cancel();
  kill_timer_.cancel();

  WorkerExit exit;
  if (WIFEXITED(wait_status)) exit.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) exit.signal = WTERMSIG(wait_status);
  exit.reason = worker->failure_reason.empty() ? "worker " + describe_exit(wait_status)
                                               : worker->failure_reason;
  const auto decision = machine_.worker_exited(exit, Clock::now());
  if (worker_lost_) worker_lost_(exit.reason);
  const auto& s = snapshot();
  nlohmann::json fields = {
      {"pid", worker->pid},
      {"reason", exit.reason},
      {"exit_code", exit.exit_code ? nlohmann::json(*exit.exit_code) : nullptr},
      {"exit_signal", exit.signal ? nlohmann::json(*exit.signal) : nullptr},
      {"restart_count", s.restarts_total},
      {"restart_streak", s.restart_streak},
      {"worker_state", to_string(s.state)}};
  switch (decision.action) {
    case ExitDecision::Action::kStop:
      log_.info("worker_exited", std::move(fields));
      finish_stop();
      return;
    case ExitDecision::Action::kGiveUp:
      log_.error("worker_exited", std::move(fields));
      log_.error("supervisor_gave_up",
                 {{"restart_streak", s.restart_streak},
                  {"error_code", "restart_limit"},
                  {"message", "worker failed " + std::to_string(s.restart_streak) +
                                  " times in a row (WORKER_RESTART_MAX); /livez now fails"}});
      return;
    case ExitDecision::Action::kRestartAfterBackoff:
      log_.warn("worker_exited", std::move(fields));
      log_.info("backoff_scheduled", {{"backoff_ms", decision.delay.count()},
                                      {"restart_count", s.restarts_total},
                                      {"restart_streak", s.restart_streak},
                                      {"worker_state", to_string(s.state)}});
      schedule_restart(decision.delay);
      return;
  }
}

void WorkerSupervisor::schedule_restart(std::chrono::milliseconds delay) {
  backoff_timer_.expires_after(delay);
  backoff_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) spawn();
  });
}

void WorkerSupervisor::shutdown(std::function<void()> on_stopped) {
  if (shutting_down_) return;
  shutting_down_ = true;
  on_stopped_ = std::move(on_stopped);
  const bool was_ready = machine_.accepting_requests();
  machine_.drain_started(Clock::now());
  backoff_timer_.cancel();
  stable_timer_.cancel();
  if (!worker_) return finish_stop();
  log_.info("drain_started",
            {{"in_flight", in_flight()}, {"grace_ms", settings_.shutdown_grace.count()}});
  if (was_ready) return wait_for_idle(Clock::now() + settings_.shutdown_grace);
  stop_worker();
}

void WorkerSupervisor::wait_for_idle(Clock::time_point deadline) {
  if (!worker_) return;
  if (in_flight() == 0 || Clock::now() >= deadline) {
    if (in_flight() > 0) log_.warn("drain_grace_expired", {{"in_flight", in_flight()}});
    return stop_worker();
  }
  drain_timer_.expires_after(kDrainPollInterval);
  drain_timer_.async_wait([this, deadline](boost::system::error_code ec) {
    if (!ec) wait_for_idle(deadline);
  });
}

std::size_t WorkerSupervisor::in_flight() const {
  const std::size_t rpc = worker_ ? worker_->channel->pending() : 0;
  return std::max(rpc, in_flight_ ? in_flight_() : 0);
}

void WorkerSupervisor::stop_worker() {
  if (!worker_) return;
  worker_->channel->close("proxy is shutting down");
  signal_worker_group(worker_->pid, SIGTERM);
  const auto generation = generation_;
  kill_timer_.expires_after(settings_.kill_after);
  kill_timer_.async_wait([this, generation](boost::system::error_code ec) {
    if (ec || generation != generation_ || !worker_) return;
    log_.warn("worker_kill", {{"pid", worker_->pid}, {"reason", "did not exit after SIGTERM"}});
    signal_worker_group(worker_->pid, SIGKILL);
  });
}

void WorkerSupervisor::force_stop() {
  shutting_down_ = true;
  if (worker_) signal_worker_group(worker_->pid, SIGKILL);
}

void WorkerSupervisor::finish_stop() {
  machine_.stopped(Clock::now());
  child_signals_.cancel();
  phase_timer_.cancel();
  drain_timer_.cancel();
  kill_timer_.cancel();
  if (auto done = std::move(on_stopped_)) done();
}

}  // namespace cxp::proxy
