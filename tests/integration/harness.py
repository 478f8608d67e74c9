"""Test harness: real codex-proxy and codex-fake-worker processes on loopback.

Every process a test starts is registered for cleanup and killed (with its process group) even when
the test fails. Ports are chosen by the kernel (PORT=0) and read back from the proxy's
`listening` log line.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from polling import wait_until  # noqa: F401  (re-exported for the tests)

from proxy_process import BIN_DIR, FAKE_WORKER, PROXY, REAL_CODEX, SOURCE_DIR, Proxy, pid_alive  # noqa: F401


class ProxyTestCase(unittest.TestCase):
    def start_proxy(self, **kwargs):
        proxy = Proxy(**kwargs)
        self.addCleanup(proxy.close)
        return proxy
