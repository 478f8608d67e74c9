"""The supervisor against the real Codex CLI: its app server answers the handshake offline."""
import json
import os
import signal
import tempfile
import unittest

from harness import REAL_CODEX, ProxyTestCase, pid_alive, wait_until


class RealCodexTest(ProxyTestCase):
    def test_real_codex_app_server_completes_the_handshake_and_stops_cleanly(self):
        self.assertTrue(os.access(REAL_CODEX, os.X_OK), f"{REAL_CODEX} missing: run scripts/setup.sh")
        home = tempfile.TemporaryDirectory(prefix="cxp-codex-home-")
        self.addCleanup(home.cleanup)
        proxy = self.start_proxy(codex_bin=REAL_CODEX, env={"CODEX_HOME": home.name,
                                                            "WORKER_HANDSHAKE_TIMEOUT_MS": "30000"})
        body = proxy.wait_ready(timeout=45)
        self.assertEqual(body["worker"]["state"], "ready")
        self.assertEqual(body["worker"]["restarts_total"], 0)
        self.assertIsNotNone(body["worker"]["handshake_ms"])
        pid = body["worker"]["pid"]
        proxy.signal(signal.SIGTERM)
        self.assertEqual(proxy.wait_exit(timeout=20), 0)
        wait_until(lambda: not pid_alive(pid), 5, message="the codex process to exit")
        # Nothing of the worker's process group is left behind.
        wait_until(lambda: not [p for p in os.listdir("/proc")
                                if p.isdigit() and _pgid(int(p)) == pid and pid_alive(int(p))],
                   5, message="every process of the worker's group to exit")


    def test_a_turn_that_cannot_reach_the_model_times_out_with_504_and_the_worker_stays_usable(self):
        home = tempfile.TemporaryDirectory(prefix="cxp-codex-home-")
        self.addCleanup(home.cleanup)
        proxy = self.start_proxy(codex_bin=REAL_CODEX, env={"CODEX_HOME": home.name,
                                                            "WORKER_HANDSHAKE_TIMEOUT_MS": "30000",
                                                            "WORKER_REQUEST_TIMEOUT_MS": "2500"})
        proxy.wait_ready(timeout=45)
        body = json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]})
        for attempt in range(2):  # the second request proves the worker is still usable
            status, _, raw = proxy.request("POST", "/v1/chat/completions", body=body,
                                           headers={"Content-Type": "application/json"}, timeout=30)
            self.assertEqual(status, 504, f"attempt {attempt}: {raw!r}")
            self.assertEqual(json.loads(raw)["error"]["code"], "timeout")
        status, ready = proxy.readyz()
        self.assertEqual(status, 200)
        self.assertEqual(ready["worker"]["restarts_total"], 0)


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


if __name__ == "__main__":
    unittest.main(verbosity=2)
