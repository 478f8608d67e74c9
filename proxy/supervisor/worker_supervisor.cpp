#include "proxy/supervisor/worker_supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/json_fields.h"
#include "common/utf8.h"
#include "proxy/supervisor/worker_process.h"

namespace cxp::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

// codex's version from its `initialize` answer: userAgent is "<client name>/<codex version> (…)".
std::string codex_version_of(const nlohmann::json& result) {
  const auto agent = string_field(result, "userAgent");
  const auto slash = agent.find('/');
  if (slash == std::string::npos) return "";
  const auto end = agent.find(' ', slash);
  return utf8_prefix(agent.substr(slash + 1, end == std::string::npos ? end : end - slash - 1), 64);
}

constexpr std::size_t kMaxStderrLineBytes = 64 * 1024;  // longer lines are dropped
constexpr std::size_t kMaxStderrLogBytes = 2048;        // kept lines are truncated to this
constexpr milliseconds kExitAfterEofGrace{500};
constexpr milliseconds kDrainPollInterval{20};
constexpr milliseconds kRetirePollInterval{100};

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

std::uint64_t own_rss(int pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

std::uint64_t process_tree_rss(int pid) {
  std::uint64_t total = 0;
  std::vector<int> todo{pid};
  for (std::size_t visited = 0; !todo.empty() && visited < 4096; ++visited) {
    const int current = todo.back();
    todo.pop_back();
    total += own_rss(current);
    std::ifstream children("/proc/" + std::to_string(current) + "/task/" + std::to_string(current) +
                           "/children");
    for (int child; children >> child;) todo.push_back(child);
  }
  return total;
}

struct WorkerSupervisor::RunningWorker {
  RunningWorker(asio::io_context& io, std::uint64_t id, Role role, const SpawnedWorker& spawned)
      : id(id),
        role(role),
        pid(spawned.pid),
        channel(std::make_shared<JsonRpcChannel>(io, spawned.stdin_fd, spawned.stdout_fd)),
        stderr_pipe(io, spawned.stderr_fd),
        exec_status(io, spawned.exec_status_fd),
        phase_timer(io),
        stop_timer(io) {}

  std::uint64_t id;
  Role role;
  int pid;
  std::shared_ptr<JsonRpcChannel> channel;
  asio::posix::stream_descriptor stderr_pipe;
  asio::posix::stream_descriptor exec_status;
  asio::steady_timer phase_timer;  // startup or handshake deadline
  asio::steady_timer stop_timer;   // SIGTERM → SIGKILL, stdout-closed grace, retirement polling
  std::array<char, 4096> stderr_buffer{};
  std::array<char, 16> exec_buffer{};
  std::size_t exec_bytes = 0;
  LineSplitter stderr_lines{kMaxStderrLineBytes};
  std::string failure_reason;  // set when we decided to kill it; explains the exit
  Clock::time_point handshake_started{};
  bool stopping = false;
};

WorkerSupervisor::WorkerSupervisor(asio::io_context& io, SupervisorSettings settings,
                                   std::uint64_t seed)
    : io_(io),
      settings_(std::move(settings)),
      machine_(settings_.restart, seed, Clock::now(), settings_.recycle),
      child_signals_(io, SIGCHLD),
      backoff_timer_(io),
      successor_timer_(io),
      stable_timer_(io),
      drain_timer_(io),
      rss_timer_(io) {
  machine_.set_observer([this](WorkerState from, WorkerState to, const WorkerSnapshot& snapshot) {
    on_transition(from, to, snapshot);
  });
  machine_.set_recycle_observer(
      [this](RecyclePhase from, RecyclePhase to, const WorkerSnapshot& snapshot) {
        on_recycle_transition(from, to, snapshot);
      });
}

WorkerSupervisor::~WorkerSupervisor() {
  for (auto& worker : workers_) {
    signal_worker_group(worker->pid, SIGKILL);
    int status = 0;
    ::waitpid(worker->pid, &status, 0);
  }
}

WorkerSupervisor::RunningWorker* WorkerSupervisor::find(std::uint64_t id) const {
  for (const auto& worker : workers_) {
    if (worker->id == id) return worker.get();
  }
  return nullptr;
}

std::shared_ptr<JsonRpcChannel> WorkerSupervisor::channel() const {
  if (!current_ || !machine_.accepting_requests()) return nullptr;
  return current_->channel;
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

void WorkerSupervisor::on_recycle_transition(RecyclePhase from, RecyclePhase to,
                                             const WorkerSnapshot& s) {
  const auto& r = s.recycle;
  nlohmann::json fields = {{"from", to_string(from)},
                           {"recycle_phase", to_string(to)},
                           {"reason", r.reason ? to_string(*r.reason) : "none"},
                           {"worker_state", to_string(s.state)},
                           {"pid", s.pid},
                           {"turns", s.turns},
                           {"rss_bytes", s.rss_bytes}};
  if (from == RecyclePhase::kIdle && to == RecyclePhase::kStarting) {
    log_.info("worker_recycle_started", std::move(fields));
  } else if (to == RecyclePhase::kBackoff) {
    fields["successor_failures"] = r.successor_failures;
    fields["backoff_ms"] = r.successor_backoff_ms.count();
    log_.warn("worker_recycle_successor_failed", std::move(fields));
  } else if (to == RecyclePhase::kIdle && from == RecyclePhase::kHandshaking &&
             !r.retiring_pids.empty()) {
    fields["retiring_pids"] = r.retiring_pids;
    log_.info("worker_recycle_completed", std::move(fields));
  } else if (to == RecyclePhase::kIdle) {
    log_.warn("worker_recycle_abandoned", std::move(fields));
  }
  if (state_observer_) state_observer_(s);
}

void WorkerSupervisor::start() {
  child_signals_.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) reap();
  });
  spawn(Role::kCurrent);
  schedule_rss_sample();
}

void WorkerSupervisor::spawn(Role role, RecycleReason reason) {
  if (shutting_down_) return;
  const auto now = Clock::now();
  if (role == Role::kCurrent) {
    machine_.spawn_started(now);
  } else {
    machine_.successor_spawn_started(reason, now);
  }
  SpawnedWorker spawned;
  std::string error;
  if (!spawn_worker(settings_.command, settings_.environment, spawned, error)) {
    // Fork itself failed (no process exists): an immediate failure of this worker.
    log_.error("worker_spawn_failed", {{"error_code", "spawn_failed"}, {"message", error}});
    if (role == Role::kSuccessor) return on_successor_exit({std::nullopt, std::nullopt, error});
    const auto decision = machine_.worker_exited({std::nullopt, std::nullopt, error}, now);
    if (decision.action == ExitDecision::Action::kRestartAfterBackoff)
      schedule_restart(decision.delay);
    return;
  }
  workers_.push_back(std::make_unique<RunningWorker>(io_, ++next_id_, role, spawned));
  auto& worker = *workers_.back();
  (role == Role::kCurrent ? current_ : successor_) = &worker;
  log_.info("worker_started", {{"pid", spawned.pid},
                               {"role", role == Role::kCurrent ? "current" : "successor"},
                               {"command", settings_.command},
                               {"restart_count", snapshot().restarts_total}});
  const auto id = worker.id;
  worker.phase_timer.expires_after(settings_.startup_timeout);
  worker.phase_timer.async_wait([this, id](boost::system::error_code ec) {
    auto* w = find(id);
    if (ec || !w) return;
    fail(*w, "worker did not start within WORKER_STARTUP_TIMEOUT_MS=" +
                 std::to_string(settings_.startup_timeout.count()));
  });
  watch_exec_status(id);
  watch_stderr(id);
}

void WorkerSupervisor::watch_exec_status(std::uint64_t id) {
  auto& w = *find(id);
  w.exec_status.async_read_some(
      asio::buffer(w.exec_buffer.data() + w.exec_bytes, w.exec_buffer.size() - w.exec_bytes),
      [this, id](boost::system::error_code ec, std::size_t n) {
        auto* w = find(id);
        if (!w) return;
        if (!ec) {
          w->exec_bytes += n;
          if (w->exec_bytes < sizeof(int)) return watch_exec_status(id);
          int code = 0;
          std::memcpy(&code, w->exec_buffer.data(), sizeof code);
          w->failure_reason = "cannot execute CODEX_BIN '" + settings_.command.front() +
                              "': " + std::strerror(code);
          return;  // the child exits 127; the exit path reports it
        }
        if (ec == asio::error::operation_aborted) return;
        // EOF: the close-on-exec pipe closed, so exec succeeded.
        begin_handshake(id);
      });
}

void WorkerSupervisor::begin_handshake(std::uint64_t id) {
  auto& w = *find(id);
  if (w.role == Role::kCurrent) {
    machine_.exec_confirmed(w.pid, Clock::now());
    if (snapshot().state != WorkerState::kHandshaking) return;
  } else {
    machine_.successor_exec_confirmed(w.pid, Clock::now());
  }
  w.handshake_started = Clock::now();
  w.phase_timer.cancel();
  w.channel->start({
      .on_notification =
          [this](const RpcNotification& note) {
            if (notification_sink_) notification_sink_(note);
          },
      .on_request =
          [this, id](const RpcServerRequest& ask) {
            auto* w = find(id);
            if (!w) return;
            if (request_sink_) return request_sink_(ask, *w->channel);
            w->channel->respond_error(ask.id, -32601, "codex-proxy does not handle " + ask.method);
          },
      .on_bad_line =
          [this](const std::string& reason, std::string_view line) {
            log_.warn("worker_bad_line",
                      {{"reason", reason},
                       {"line_prefix",
                        printable(line.substr(0, std::min<std::size_t>(line.size(), 200)))}});
          },
      .on_closed =
          [this, id] {
            // Normally the exit follows at once; a worker that closes stdout but lives on is
            // useless, so it is killed after a short grace.
            auto* w = find(id);
            if (!w || w->stopping) return;
            w->stop_timer.expires_after(kExitAfterEofGrace);
            w->stop_timer.async_wait([this, id](boost::system::error_code ec) {
              if (auto* w = find(id); w && !ec)
                fail(*w, "worker closed its stdout but did not exit");
            });
          },
  });
  // The experimental API carries what the proxy needs: dynamic (caller-declared) tools, injected
  // history items and the raw end-of-response event.
  nlohmann::json params = {
      {"clientInfo", {{"name", settings_.client_name}, {"version", settings_.client_version}}},
      {"capabilities", {{"experimentalApi", true}}}};
  w.channel->request(
      "initialize", params, settings_.handshake_timeout, [this, id](RpcOutcome outcome) {
        auto* w = find(id);
        if (!w) return;
        if (!outcome.transport_error.empty()) {
          if (outcome.transport_error.find("timed out") != std::string::npos) {
            fail(*w, "handshake timed out after WORKER_HANDSHAKE_TIMEOUT_MS=" +
                         std::to_string(settings_.handshake_timeout.count()));
          }
          return;  // otherwise the worker is gone; the exit path reports it
        }
        if (!outcome.ok)
          return fail(*w, "handshake failed: initialize returned error " + outcome.error.dump());
        w->channel->notify("initialized", nlohmann::json());
        on_handshake_done(id, duration_cast<milliseconds>(Clock::now() - w->handshake_started),
                          codex_version_of(outcome.result));
      });
}

void WorkerSupervisor::on_handshake_done(std::uint64_t id, milliseconds took,
                                         std::string codex_version) {
  auto* w = find(id);
  if (w->role == Role::kCurrent) {
    machine_.set_codex_version(std::move(codex_version));
    machine_.handshake_completed(took, Clock::now());
    log_.info("handshake_complete", {{"pid", w->pid},
                                     {"handshake_ms", took.count()},
                                     {"worker_state", to_string(snapshot().state)},
                                     {"restart_count", snapshot().restarts_total}});
    schedule_stable_check();
    return;
  }
  // The successor is ready: new turns go to it; the former worker finishes its own and stops.
  auto* former = current_;
  current_ = w;
  successor_ = nullptr;
  w->role = Role::kCurrent;
  former->role = Role::kRetiring;
  machine_.set_codex_version(std::move(codex_version));
  machine_.handover_completed(took, Clock::now());
  retire(former->id, Clock::now() + settings_.retire_grace);
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

void WorkerSupervisor::watch_stderr(std::uint64_t id) {
  auto& w = *find(id);
  w.stderr_pipe.async_read_some(
      asio::buffer(w.stderr_buffer), [this, id](boost::system::error_code ec, std::size_t n) {
        auto* w = find(id);
        if (!w) return;
        if (ec) {
          const auto tail = w->stderr_lines.take_partial();
          if (!tail.empty()) on_stderr_line(w->pid, tail);
          return;
        }
        for (const auto& line :
             w->stderr_lines.feed(std::string_view(w->stderr_buffer.data(), n))) {
          on_stderr_line(w->pid, line);
        }
        watch_stderr(id);
      });
}

void WorkerSupervisor::on_stderr_line(int pid, const std::string& line) {
  auto text = printable(line);
  if (text.empty()) return;
  if (text.size() > kMaxStderrLogBytes) text = text.substr(0, kMaxStderrLogBytes) + "…";
  if (!stderr_limiter_.allow(Clock::now())) return;
  nlohmann::json fields = {{"pid", pid}, {"line", text}};
  if (const auto dropped = stderr_limiter_.take_suppressed(); dropped > 0) {
    fields["suppressed_lines"] = dropped;
  }
  log_.info("worker_stderr", std::move(fields));
}

void WorkerSupervisor::fail(RunningWorker& worker, std::string reason) {
  if (worker.failure_reason.empty()) worker.failure_reason = std::move(reason);
  log_.warn("worker_killed", {{"pid", worker.pid},
                              {"reason", worker.failure_reason},
                              {"worker_state", to_string(snapshot().state)}});
  signal_worker_group(worker.pid, SIGKILL);
}

void WorkerSupervisor::reap() {
  child_signals_.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) reap();
  });
  for (std::size_t i = 0; i < workers_.size();) {
    int status = 0;
    if (::waitpid(workers_[i]->pid, &status, WNOHANG) == workers_[i]->pid) {
      on_exit(*workers_[i], status);  // removes it from workers_
    } else {
      ++i;
    }
  }
}

void WorkerSupervisor::on_exit(RunningWorker& exited, int wait_status) {
  const auto found = std::find_if(workers_.begin(), workers_.end(),
                                  [&](const auto& w) { return w.get() == &exited; });
  auto worker = std::move(*found);
  workers_.erase(found);
  signal_worker_group(worker->pid, SIGKILL);  // leftovers of its process tree
  worker->channel->close("worker exited");
  boost::system::error_code ignored;
  worker->stderr_pipe.close(ignored);
  worker->exec_status.close(ignored);
  worker->phase_timer.cancel();
  worker->stop_timer.cancel();

  WorkerExit exit;
  if (WIFEXITED(wait_status)) exit.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) exit.signal = WTERMSIG(wait_status);
  exit.reason = worker->failure_reason.empty() ? "worker " + describe_exit(wait_status)
                                               : worker->failure_reason;
  switch (worker->role) {
    case Role::kRetiring:
      machine_.retired(worker->pid);
      if (worker_lost_) worker_lost_(exit.reason, worker->channel.get());
      log_.info("worker_retired", {{"pid", worker->pid}, {"reason", exit.reason}});
      if (shutting_down_ && workers_.empty()) finish_stop();
      return;
    case Role::kSuccessor:
      successor_ = nullptr;
      return on_successor_exit(exit);
    case Role::kCurrent:
      current_ = nullptr;
      return on_current_exit(std::move(worker), exit);
  }
}

void WorkerSupervisor::on_successor_exit(WorkerExit exit) {
  log_.warn("worker_exited", {{"role", "successor"},
                              {"reason", exit.reason},
                              {"exit_code", exit.exit_code ? nlohmann::json(*exit.exit_code)
                                                           : nlohmann::json(nullptr)}});
  if (shutting_down_) {
    machine_.handover_abandoned(Clock::now());
    if (workers_.empty()) finish_stop();
    return;
  }
  if (!current_) return machine_.handover_abandoned(Clock::now());
  // The current worker keeps serving; another successor is tried after a backoff.
  const auto delay = machine_.successor_failed(Clock::now());
  successor_timer_.expires_after(delay);
  successor_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || shutting_down_ || !current_ || successor_) return;
    if (machine_.past_hard_limit()) return check_recycle();
    spawn(Role::kSuccessor, machine_.snapshot().recycle.reason.value_or(RecycleReason::kTurns));
  });
  check_recycle();  // past the hard limit already: no waiting for the next successor
}

void WorkerSupervisor::on_current_exit(std::unique_ptr<RunningWorker> worker, WorkerExit exit) {
  stable_timer_.cancel();
  if (successor_) {
    // A handover was under way: the restart path takes over (with its backoff).
    successor_->failure_reason = "the worker it was to succeed exited";
    stop_process(*successor_);
    successor_->role = Role::kRetiring;
    successor_ = nullptr;
  }
  successor_timer_.cancel();
  machine_.handover_abandoned(Clock::now());
  const auto decision = machine_.worker_exited(exit, Clock::now());
  if (worker_lost_) worker_lost_(exit.reason, worker->channel.get());
  const auto& s = snapshot();
  nlohmann::json fields = {
      {"pid", worker->pid},
      {"role", "current"},
      {"reason", exit.reason},
      {"exit_code", exit.exit_code ? nlohmann::json(*exit.exit_code) : nullptr},
      {"exit_signal", exit.signal ? nlohmann::json(*exit.signal) : nullptr},
      {"restart_count", s.restarts_total},
      {"restart_streak", s.restart_streak},
      {"worker_state", to_string(s.state)}};
  switch (decision.action) {
    case ExitDecision::Action::kStop:
      log_.info("worker_exited", std::move(fields));
      if (workers_.empty()) finish_stop();
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
    if (!ec) spawn(Role::kCurrent);
  });
}

void WorkerSupervisor::note_turn(const JsonRpcChannel* channel) {
  if (!current_ || current_->channel.get() != channel) return;
  machine_.turn_started();
  check_recycle();
}

void WorkerSupervisor::schedule_rss_sample() {
  rss_timer_.expires_after(settings_.rss_sample_interval);
  rss_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    if (current_ && machine_.accepting_requests()) {
      const auto rss = process_tree_rss(current_->pid);
      if (rss == 0 && !rss_unreadable_logged_) {
        rss_unreadable_logged_ = true;
        log_.warn("worker_rss_unreadable",
                  {{"pid", current_->pid},
                   {"message",
                    "cannot read the worker's memory from /proc; recycling by "
                    "WORKER_MAX_TURNS only"}});
      }
      if (machine_.rss_sampled(rss)) {
        log_.error("worker_rss_limit_below_idle",
                   {{"pid", current_->pid},
                    {"rss_bytes", rss},
                    {"message",
                     "WORKER_MAX_RSS_MB is below the memory of a worker that has served no turn ("
                     "" + std::to_string(rss / (1024 * 1024)) +
                         " MiB): raise it; recycling by WORKER_MAX_TURNS only"}});
      }
      check_recycle();
    }
    schedule_rss_sample();
  });
}

void WorkerSupervisor::check_recycle() {
  if (shutting_down_ || !current_ || !machine_.accepting_requests()) return;
  const auto& s = snapshot();
  if (machine_.past_hard_limit() && s.recycle.phase == RecyclePhase::kBackoff) {
    // No successor could take over in time: restart the worker the usual way (with a gap).
    log_.error("worker_recycle_forced",
               {{"pid", s.pid},
                {"turns", s.turns},
                {"rss_bytes", s.rss_bytes},
                {"successor_failures", s.recycle.successor_failures},
                {"message",
                 "the worker passed its hard limit (2x WORKER_MAX_TURNS or 1.5x "
                 "WORKER_MAX_RSS_MB) and no successor could start; restarting it"}});
    successor_timer_.cancel();
    machine_.recycle_forced(Clock::now());
    return fail(*current_, "recycled past its hard limit");
  }
  const auto due = machine_.recycle_due();
  if (!due) return;
  if (*due == RecycleReason::kRss && s.turns == 0) {
    // A fresh worker already over the limit: recycling could never help.
    if (!rss_below_idle_logged_) {
      rss_below_idle_logged_ = true;
      log_.error("worker_rss_limit_below_idle",
                 {{"rss_bytes", s.rss_bytes},
                  {"message",
                   "WORKER_MAX_RSS_MB is below an idle worker's memory; recycling by "
                   "memory is off until a worker has served turns"}});
    }
    return;
  }
  spawn(Role::kSuccessor, *due);
}

void WorkerSupervisor::retire(std::uint64_t id, Clock::time_point deadline) {
  auto* w = find(id);
  if (!w || w->stopping) return;
  if (in_flight(*w) == 0 || Clock::now() >= deadline) {
    if (in_flight(*w) > 0) log_.warn("retire_grace_expired", {{"pid", w->pid}});
    return stop_process(*w);
  }
  w->stop_timer.expires_after(kRetirePollInterval);
  w->stop_timer.async_wait([this, id, deadline](boost::system::error_code ec) {
    if (!ec) retire(id, deadline);
  });
}

void WorkerSupervisor::stop_process(RunningWorker& worker) {
  if (worker.stopping) return;
  worker.stopping = true;
  worker.phase_timer.cancel();
  worker.channel->close("the worker is being stopped");
  signal_worker_group(worker.pid, SIGTERM);
  const auto id = worker.id;
  worker.stop_timer.expires_after(settings_.kill_after);
  worker.stop_timer.async_wait([this, id](boost::system::error_code ec) {
    auto* w = find(id);
    if (ec || !w) return;
    log_.warn("worker_kill", {{"pid", w->pid}, {"reason", "did not exit after SIGTERM"}});
    signal_worker_group(w->pid, SIGKILL);
  });
}

void WorkerSupervisor::shutdown(std::function<void()> on_stopped) {
  if (shutting_down_) return;
  shutting_down_ = true;
  on_stopped_ = std::move(on_stopped);
  const bool was_ready = machine_.accepting_requests();
  machine_.drain_started(Clock::now());
  backoff_timer_.cancel();
  successor_timer_.cancel();
  stable_timer_.cancel();
  if (successor_) stop_process(*successor_);  // it serves nothing yet
  if (workers_.empty()) return finish_stop();
  log_.info("drain_started",
            {{"in_flight", in_flight()}, {"grace_ms", settings_.shutdown_grace.count()}});
  if (was_ready || !snapshot().recycle.retiring_pids.empty()) {
    return wait_for_idle(Clock::now() + settings_.shutdown_grace);
  }
  for (auto& worker : workers_) stop_process(*worker);
}

void WorkerSupervisor::wait_for_idle(Clock::time_point deadline) {
  if (workers_.empty()) return;
  if (in_flight() == 0 || Clock::now() >= deadline) {
    if (in_flight() > 0) log_.warn("drain_grace_expired", {{"in_flight", in_flight()}});
    for (auto& worker : workers_) stop_process(*worker);
    return;
  }
  drain_timer_.expires_after(kDrainPollInterval);
  drain_timer_.async_wait([this, deadline](boost::system::error_code ec) {
    if (!ec) wait_for_idle(deadline);
  });
}

std::size_t WorkerSupervisor::in_flight(const RunningWorker& worker) const {
  const std::size_t sessions = in_flight_ ? in_flight_(worker.channel.get()) : 0;
  return std::max(worker.channel->pending(), sessions);
}

std::size_t WorkerSupervisor::in_flight() const {
  std::size_t total = 0;
  for (const auto& worker : workers_) total += in_flight(*worker);
  return total;
}

void WorkerSupervisor::force_stop() {
  shutting_down_ = true;
  for (auto& worker : workers_) signal_worker_group(worker->pid, SIGKILL);
}

void WorkerSupervisor::finish_stop() {
  if (stopped_) return;
  stopped_ = true;
  machine_.stopped(Clock::now());
  child_signals_.cancel();
  drain_timer_.cancel();
  rss_timer_.cancel();
  successor_timer_.cancel();
  if (auto done = std::move(on_stopped_)) done();
}

}  // namespace cxp::proxy
