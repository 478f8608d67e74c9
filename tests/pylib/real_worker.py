"""The real `codex app-server` as codex-proxy's worker, pointed at the scripted model.

One place for the configuration every real-worker test (and the benchmarks) uses: the model stub
(tests/model-stub) on loopback, a private CODEX_HOME, the stub as the worker's model provider with
codex's own retries off (so a scripted failure is answered at once), and the model key.
"""
import json
import os
import subprocess
import sys
import tempfile

from proxy_process import REAL_CODEX, SOURCE_DIR

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "model-stub"))
from model_stub import ModelStub  # noqa: E402  (re-exported)

STUB = os.path.join(SOURCE_DIR, "tests", "model-stub", "model_stub.py")
MODEL_KEY = "sk-stub-model-key-0123456789abcdef"
MODEL_KEY_VAR = "STUB_MODEL_API_KEY"
# codex's retries of the model off: a scripted failure reaches the client at once.
NO_RETRIES = ("model_providers.codexproxy.request_max_retries=0\n"
              "model_providers.codexproxy.stream_max_retries=0")


def real_worker_env(base_url, codex_home, overrides=NO_RETRIES, **extra):
    """The proxy environment that runs the real codex against the model at `base_url`."""
    env = {
        "CODEX_BIN": REAL_CODEX,
        "CODEX_HOME": codex_home,
        # A home without this machine's shell profile, as in a pod: codex runs a login shell per
        # thread (its shell snapshot), and a developer's profile (pyenv, nvm…) would dominate every
        # figure and slow every test.
        "HOME": codex_home,
        "WORKER_PROVIDER_BASE_URL": base_url,
        "WORKER_PROVIDER_NAME": "model stub",
        "WORKER_PROVIDER_ENV_KEY": MODEL_KEY_VAR,
        MODEL_KEY_VAR: MODEL_KEY,
        "WORKER_CONFIG_OVERRIDES": overrides,
        # The first start of codex unpacks its bundled helpers: give it room on slow machines.
        "WORKER_HANDSHAKE_TIMEOUT_MS": "30000",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_stub_process(log_path=None):
    """The model stub in a process of its own (under load, the caller's threads stay free);
    returns (process, base_url). The caller kills the process."""
    args = [sys.executable, STUB, "--api-key", MODEL_KEY] + (["--log", log_path] if log_path else [])
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return process, json.loads(process.stdout.readline())["base_url"]


class RealWorker:
    """A model stub (checking the key) and the env of proxies that use it, cleaned up by `close`."""

    def __init__(self, log_path=None):
        self.home_root = tempfile.TemporaryDirectory(prefix="cxp-codex-home-")
        self.stub = ModelStub(log_path=log_path, api_key=MODEL_KEY).start()
        self._homes = 0

    def env(self, **extra):
        self._homes += 1
        home = os.path.join(self.home_root.name, str(self._homes))
        return real_worker_env(self.stub.base_url, home, **extra)

    def close(self):
        self.stub.stop()
        self.home_root.cleanup()
