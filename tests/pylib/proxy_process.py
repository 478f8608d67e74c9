"""A codex-proxy process with its JSON log captured, for the integration and e2e tiers."""
import http.client
import json
import os
import resource
import signal
import subprocess
import tempfile

import artifacts
from polling import wait_until

BIN_DIR = os.environ.get("CXP_BIN_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/bin"))
SOURCE_DIR = os.environ.get("CXP_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
PROXY = os.path.join(BIN_DIR, "codex-proxy")
FAKE_WORKER = os.path.join(BIN_DIR, "codex-fake-worker")
REAL_CODEX = os.path.join(SOURCE_DIR, "tests/node/node_modules/.bin/codex")


SANITIZER_OPTIONS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")
# Under tests/run_sanitized.sh: the binaries are instrumented (ASan keeps freed memory in quarantine,
# so RSS figures mean nothing there; LeakSanitizer checks leaks at exit instead).
SANITIZED = "ASAN_OPTIONS" in os.environ


def pass_fake_script(env):
    """`env` with its FAKE_CODEX_* variables named in WORKER_ENV_PASSTHROUGH: the worker's
    environment is an allow-list, and codex-fake-worker reads its script from these. The sanitizer
    options of a sanitized run (tests/run_sanitized.sh) pass too, so a sanitized codex-fake-worker
    reports where codex-proxy does."""
    scripted = sorted(k for k in env if k.startswith("FAKE_CODEX_") or k in SANITIZER_OPTIONS)
    if not scripted:
        return env
    return {**env, "WORKER_ENV_PASSTHROUGH": ",".join(filter(None, [env.get("WORKER_ENV_PASSTHROUGH", ""),
                                                                     *scripted]))}


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class _Kept:
    """A directory the caller owns (same shape as TemporaryDirectory, never removed)."""

    def __init__(self, name):
        self.name = name

    def cleanup(self):
        pass


class Proxy:
    """One codex-proxy process with its log captured to a file."""

    def __init__(self, env=None, args=(), codex_bin=FAKE_WORKER, wait_listening=True, max_open_files=None,
                 workdir=None, run_as=None):
        """`workdir`: the process's working directory, holding its logs (kept afterwards); default: a
        temporary one, removed by close(). `run_as`: a uid to run as (gid the same), as a pod's
        non-root user; the working directory is made writable for it."""
        self._own_workdir = workdir is None
        self.workdir = tempfile.TemporaryDirectory(prefix="cxp-it-") if workdir is None else _Kept(workdir)
        self.log_path = os.path.join(self.workdir.name, "proxy.log")
        self.stderr_path = os.path.join(self.workdir.name, "proxy.stderr")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_CODEX_", "WORKER_", "PROXY_"))}
        full_env.update({"PORT": "0", "PROXY_OPS_PORT": "0", "PROXY_HOST": "127.0.0.1"})
        if codex_bin:  # None: the env says which worker
            full_env["CODEX_BIN"] = codex_bin
        full_env.update(env or {})
        full_env = pass_fake_script(full_env)
        artifacts.note_env_secrets(full_env)
        self.seen_worker_pids = set()
        with open(self.log_path, "wb") as out, open(self.stderr_path, "wb") as err:
            def limit_files():
                if max_open_files:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))
            identity = {}
            if run_as is not None:
                os.chmod(self.workdir.name, 0o777)
                identity = {"user": run_as, "group": run_as, "extra_groups": []}
            self.process = subprocess.Popen([PROXY, *args], stdout=out, stderr=err, env=full_env,
                                            cwd=self.workdir.name, start_new_session=True,
                                            preexec_fn=limit_files, **identity)
        self.port = None  # the OpenAI API (/v1/*)
        self.ops_port = None  # probes, /metrics, /internal/*
        if wait_listening:
            event = wait_until(lambda: self.find_event("listening") or self._exited_early(), 10,
                               message="the proxy's listening log line")
            if isinstance(event, dict):
                self.port = event["port"]
                self.ops_port = event["ops_port"]

    def _exited_early(self):
        if self.process.poll() is not None:
            raise AssertionError(f"codex-proxy exited with {self.process.returncode}: {self.stderr()}")
        return None

    # --- logs -------------------------------------------------------------------------------
    def log_lines(self):
        lines = []
        with open(self.log_path, "rb") as f:
            for raw in f:
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    pass
        return lines

    def raw_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def find_event(self, event):
        for line in self.log_lines():
            if line.get("event") == event:
                return line
        return None

    def events(self, event):
        return [line for line in self.log_lines() if line.get("event") == event]

    # --- HTTP -------------------------------------------------------------------------------
    def port_for(self, path):
        """The port serving `path`: /v1/* on the API port, everything else on the ops port."""
        return self.port if path.startswith("/v1/") or path == "/v1" else self.ops_port

    def request(self, method, path, body=None, headers=None, timeout=5, port=None):
        """`port`: ask this port instead of the one serving `path` (to see what the other answers)."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port_for(path), timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), data
        finally:
            conn.close()

    def get_json(self, path):
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def readyz(self):
        status, body = self.get_json("/readyz")
        pid = body["worker"].get("pid")
        if pid:
            self.seen_worker_pids.add(pid)
        return status, body

    def wait_ready(self, timeout=10):
        return wait_until(lambda: self.readyz()[0] == 200 and self.readyz()[1], timeout,
                          interval=0.01, message="/readyz 200")

    # --- lifecycle --------------------------------------------------------------------------
    def signal(self, sig):
        self.process.send_signal(sig)

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().split(") ")[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_exit(self, timeout):
        return self.process.wait(timeout=timeout)

    def close(self):
        if self.process.poll() is None and SANITIZED:
            # A sanitized run stops the proxy as Kubernetes does (SIGTERM) so that it exits through
            # main and LeakSanitizer checks it; SIGKILL only if it does not stop.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
        artifacts.keep("proxy", [self.log_path, self.stderr_path, *artifacts.trace_files(self.workdir.name)])
        for pid in self.seen_worker_pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.workdir.cleanup()
