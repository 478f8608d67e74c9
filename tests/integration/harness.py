"""Test harness: real codex-proxy processes on loopback, with the real `codex app-server` against the
scripted model (tests/model-stub) or, for faults the real worker cannot show, codex-fake-worker.

Every process a test starts is registered for cleanup and killed (with its process group) even when
the test fails. Ports are chosen by the kernel (PORT=0) and read back from the proxy's
`listening` log line.
"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from polling import wait_until  # noqa: F401,E402  (re-exported for the tests)

from proxy_process import BIN_DIR, FAKE_WORKER, PROXY, REAL_CODEX, SOURCE_DIR, Proxy, pid_alive  # noqa: F401,E402
from real_worker import MODEL_KEY, RealWorker  # noqa: F401,E402
from model_stub import last_user_text, message_text, messages_of  # noqa: F401,E402

# The real worker's first start (unpacking its helpers, the handshake) takes about a second.
REAL_READY_TIMEOUT = 60


class ProxyTestCase(unittest.TestCase):
    def start_proxy(self, **kwargs):
        proxy = Proxy(**kwargs)
        self.addCleanup(proxy.close)
        return proxy

    @property
    def model(self):
        """The scripted model of this test (started on first use): `self.model.requests()`."""
        if not hasattr(self, "_real_worker"):
            self._real_worker = RealWorker()
            self.addCleanup(self._real_worker.close)
        return self._real_worker.stub

    def start_real_proxy(self, env=None, wait_ready=True, **kwargs):
        """codex-proxy running the real codex app-server against this test's scripted model."""
        self.model  # noqa: B018  (starts the stub)
        if kwargs.get("run_as") is not None:
            os.chmod(self._real_worker.home_root.name, 0o777)  # its CODEX_HOME is made by that user
        proxy = self.start_proxy(env=self._real_worker.env(**(env or {})), codex_bin=None, **kwargs)
        if wait_ready:
            proxy.wait_ready(timeout=REAL_READY_TIMEOUT)
        return proxy

    def worker_wrapper(self, script):
        """An executable shell script (`script` after `#!/bin/sh`) in a temporary folder of this test,
        to stand as CODEX_BIN in front of the real worker; returns (path, folder)."""
        work = tempfile.TemporaryDirectory(prefix="cxp-wrapper-")
        self.addCleanup(work.cleanup)
        path = os.path.join(work.name, "codex-wrapper")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + script)
        os.chmod(path, 0o755)
        return path, work.name
