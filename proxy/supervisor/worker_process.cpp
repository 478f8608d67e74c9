#include "proxy/supervisor/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cxp::proxy {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

bool spawn_worker(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  SpawnedWorker& out, std::string& error) {
  int in[2] = {-1, -1};
  int out_pipe[2] = {-1, -1};
  int err[2] = {-1, -1};
  int status[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(status, O_CLOEXEC) != 0) {
    error = std::string("pipe failed: ") + std::strerror(errno);
    for (int* p : {in, out_pipe, err, status}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
    return false;
  }
  // Build argv before fork: the child may only call async-signal-safe functions.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> environment;
  environment.reserve(env.size() + 1);
  for (const auto& entry : env) environment.push_back(const_cast<char*>(entry.c_str()));
  environment.push_back(nullptr);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    error = std::string("fork failed: ") + std::strerror(errno);
    for (int* p : {in, out_pipe, err, status}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
    return false;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the proxy died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execvpe(args[0], args.data(), environment.data());
    const int code = errno;
    [[maybe_unused]] auto written = ::write(status[1], &code, sizeof code);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so signalling the group never races the child
  close_fd(in[0]);
  close_fd(out_pipe[1]);
  close_fd(err[1]);
  close_fd(status[1]);
  out.pid = pid;
  out.stdin_fd = in[1];
  out.stdout_fd = out_pipe[0];
  out.stderr_fd = err[0];
  out.exec_status_fd = status[0];
  return true;
}

void signal_worker_group(int pid, int signal) {
  if (pid <= 0) return;
  if (::kill(-pid, signal) != 0 && errno == ESRCH) ::kill(pid, signal);
}

}  // namespace cxp::proxy
