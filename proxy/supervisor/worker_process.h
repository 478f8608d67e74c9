#pragma once

#include <string>
#include <vector>

namespace cxp::proxy {

// File descriptors and identity of one spawned worker. The child runs in its own process group
// (so the whole tree — e.g. the npm `codex` wrapper and its native binary — is signalled together)
// and receives SIGKILL if the proxy dies.
struct SpawnedWorker {
  int pid = -1;
  int stdin_fd = -1;   // write end of the worker's stdin
  int stdout_fd = -1;  // read end of the worker's stdout
  int stderr_fd = -1;  // read end of the worker's stderr
  // Read end of a close-on-exec pipe: EOF means exec succeeded; 4 bytes (errno) mean it failed.
  int exec_status_fd = -1;
};

// Forks and execs `argv` (argv[0] looked up on PATH) with exactly the environment `env`
// ("NAME=value" entries). Returns false and fills `error` only when the fork itself fails; exec
// failures are reported through exec_status_fd and the child's exit (127).
bool spawn_worker(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  SpawnedWorker& out, std::string& error);

// Signals the worker's whole process group. Ignores groups that are already gone.
void signal_worker_group(int pid, int signal);

}  // namespace cxp::proxy
