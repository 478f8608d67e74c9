"""The embedded supervisor and the honest probes, with real proxy and fake-worker processes."""
import os
import signal
import stat
import tempfile
import time
import unittest

from harness import ProxyTestCase, pid_alive, wait_until

FAST_BACKOFF = {"WORKER_BACKOFF_INITIAL_MS": "100", "WORKER_BACKOFF_MAX_MS": "400"}


def nominal_backoff(streak, initial, cap):
    return min(cap, initial * 2 ** (streak - 1))


class CrashTest(ProxyTestCase):
    def test_readyz_fails_within_100ms_of_a_worker_crash_and_recovers(self):
        proxy = self.start_proxy(env=FAST_BACKOFF)
        before = proxy.wait_ready()
        pid = before["worker"]["pid"]
        self.assertEqual(before["worker"]["restarts_total"], 0)

        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(proxy.readyz()),
                                  2, interval=0.002, message="/readyz 503 after the crash")
        crash_to_503 = time.monotonic() - killed_at
        self.assertLess(crash_to_503, 0.1, f"readyz took {crash_to_503 * 1000:.1f} ms to fail")
        self.assertFalse(body["ready"])
        self.assertIn(body["reason"], ("backoff", "starting", "handshaking"))
        self.assertEqual(body["worker"]["restarts_total"], 1)
        self.assertEqual(body["worker"]["last_exit_signal"], 9)
        self.assertIsNone(body["worker"]["last_exit_code"])
        self.assertIn("signal 9", body["worker"]["last_error"])
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)

        backoff_ms = body["worker"]["backoff_ms"]
        self.assertLessEqual(backoff_ms, 100)
        self.assertGreaterEqual(backoff_ms, 80)
        after = proxy.wait_ready(timeout=5)
        restart_to_200 = time.monotonic() - killed_at
        bound = (backoff_ms + after["worker"]["handshake_ms"] + 500) / 1000
        self.assertLess(restart_to_200, bound, f"ready again after {restart_to_200 * 1000:.0f} ms")
        self.assertNotEqual(after["worker"]["pid"], pid)
        self.assertEqual(after["worker"]["restarts_total"], 1)
        print(f"\nMEASURED crash->readyz 503: {crash_to_503 * 1000:.1f} ms; "
              f"crash->readyz 200: {restart_to_200 * 1000:.0f} ms (backoff {backoff_ms} ms)")

        exited = proxy.events("worker_exited")
        self.assertEqual(exited[-1]["exit_signal"], 9)
        self.assertEqual(exited[-1]["restart_count"], 1)
        self.assertTrue(proxy.events("backoff_scheduled"))

    def test_streak_resets_after_the_worker_stays_ready(self):
        proxy = self.start_proxy(env={**FAST_BACKOFF, "WORKER_STABLE_MS": "300"})
        pid = proxy.wait_ready()["worker"]["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: proxy.readyz()[1]["worker"]["restart_streak"] == 1, 2, message="streak 1")
        proxy.wait_ready()
        body = wait_until(lambda: (lambda b: b if b["worker"]["restart_streak"] == 0 else None)(
            proxy.readyz()[1]), 3, interval=0.02, message="streak reset")
        self.assertEqual(body["worker"]["restarts_total"], 1)
        self.assertEqual(body["worker"]["backoff_ms"], 0)
        self.assertTrue(proxy.find_event("restart_streak_reset"))


class SlowStartTest(ProxyTestCase):
    def test_readyz_reports_handshaking_until_a_slow_worker_answers(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_STARTUP_DELAY_MS": "2000"})
        started = time.monotonic()
        reasons = set()
        while True:
            status, body = proxy.readyz()
            if status == 200:
                break
            self.assertEqual(status, 503)
            self.assertFalse(body["ready"])
            reasons.add(body["reason"])
            self.assertLess(time.monotonic() - started, 8, "worker never became ready")
            time.sleep(0.02)
        waited = time.monotonic() - started
        self.assertIn("handshaking", reasons)
        self.assertTrue(reasons <= {"starting", "handshaking"}, reasons)
        self.assertGreater(waited, 1.5)
        self.assertGreaterEqual(body["worker"]["handshake_ms"], 1800)
        self.assertEqual(body["worker"]["restarts_total"], 0)


class RestartLoopTest(ProxyTestCase):
    def test_backoff_grows_within_bounds_and_reaches_the_cap(self):
        initial, cap = 50, 400
        proxy = self.start_proxy(env={"FAKE_CODEX_HANDSHAKE_FAIL": "exit", "FAKE_CODEX_EXIT_CODE": "3",
                                      "WORKER_BACKOFF_INITIAL_MS": str(initial),
                                      "WORKER_BACKOFF_MAX_MS": str(cap), "WORKER_RESTART_MAX": "0"})
        seen = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and max(seen, default=0) < 7:
            status, body = proxy.readyz()
            self.assertEqual(status, 503)
            w = body["worker"]
            if body["reason"] == "backoff":
                seen[w["restart_streak"]] = w["backoff_ms"]
                self.assertEqual(w["last_exit_code"], 3)
            time.sleep(0.01)
        self.assertGreaterEqual(max(seen), 7, f"too few restarts observed: {seen}")
        for streak, backoff in seen.items():
            nominal = nominal_backoff(streak, initial, cap)
            self.assertLessEqual(backoff, nominal, f"streak {streak}")
            self.assertGreaterEqual(backoff, int(nominal * 0.8) - 1, f"streak {streak}")
        at_cap = [b for s, b in seen.items() if nominal_backoff(s, initial, cap) == cap]
        self.assertTrue(at_cap, f"never reached the cap: {seen}")
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)
        self.assertIn("code 3", proxy.readyz()[1]["worker"]["last_error"])

    def test_restart_limit_makes_livez_fail(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_HANDSHAKE_FAIL": "exit", "WORKER_RESTART_MAX": "3",
                                      "WORKER_BACKOFF_INITIAL_MS": "20", "WORKER_BACKOFF_MAX_MS": "50"})
        wait_until(lambda: proxy.request("GET", "/livez")[0] == 503, 5, interval=0.01,
                   message="/livez 503 after the restart limit")
        status, body = proxy.readyz()
        self.assertEqual(status, 503)
        self.assertEqual(body["reason"], "failed")
        self.assertEqual(body["worker"]["restart_streak"], 3)
        _, _, verbose = proxy.request("GET", "/livez?verbose")
        self.assertIn(b"[-]supervisor failed: gave up after 3", verbose)
        self.assertEqual(proxy.request("GET", "/healthz")[0], 200)
        self.assertTrue(proxy.find_event("supervisor_gave_up"))
        # It stays given up: no further spawns.
        spawned = len(proxy.events("worker_started"))
        time.sleep(0.3)
        self.assertEqual(len(proxy.events("worker_started")), spawned)


class HandshakeFailureTest(ProxyTestCase):
    def test_a_worker_that_exits_before_reading_its_stdin_does_not_kill_the_proxy(self):
        # /bin/true exits at once: the proxy's `initialize` write hits a closed pipe (EPIPE).
        proxy = self.start_proxy(codex_bin="/bin/true",
                                 env={"WORKER_BACKOFF_INITIAL_MS": "5", "WORKER_BACKOFF_MAX_MS": "10",
                                      "WORKER_RESTART_MAX": "0"})
        body = wait_until(lambda: (lambda b: b if b["worker"]["restarts_total"] >= 20 else None)(
            proxy.readyz()[1]), 10, interval=0.02, message="20 restarts")
        self.assertIsNone(proxy.process.poll(), "codex-proxy died")
        self.assertEqual(body["worker"]["last_exit_code"], 0)
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)


    def test_handshake_error_is_reported_and_retried(self):
        proxy = self.start_proxy(env={**FAST_BACKOFF, "FAKE_CODEX_HANDSHAKE_FAIL": "error"})
        body = wait_until(lambda: (lambda b: b if b["worker"]["restarts_total"] >= 2 else None)(
            proxy.readyz()[1]), 5, interval=0.01, message="two restarts")
        self.assertIn("handshake failed", body["worker"]["last_error"])
        self.assertIn("scripted handshake failure", body["worker"]["last_error"])
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)

    def test_a_worker_that_never_answers_the_handshake_is_killed_and_restarted(self):
        proxy = self.start_proxy(env={**FAST_BACKOFF, "FAKE_CODEX_HANDSHAKE_FAIL": "hang",
                                      "WORKER_HANDSHAKE_TIMEOUT_MS": "300"})
        started = time.monotonic()
        body = wait_until(lambda: (lambda b: b if b["worker"]["restarts_total"] >= 1 else None)(
            proxy.readyz()[1]), 3, interval=0.01, message="a restart after the handshake timeout")
        self.assertGreater(time.monotonic() - started, 0.25)
        self.assertIn("handshake timed out", body["worker"]["last_error"])
        self.assertEqual(body["worker"]["last_exit_signal"], 9)


class BadBinaryTest(ProxyTestCase):
    def test_missing_binary_is_reported_while_probes_keep_serving(self):
        proxy = self.start_proxy(codex_bin="/nonexistent/codex", env=FAST_BACKOFF)
        body = wait_until(lambda: (lambda b: b if b["worker"]["restarts_total"] >= 1 else None)(
            proxy.readyz()[1]), 3, interval=0.01, message="a failed start")
        self.assertIn(body["reason"], ("backoff", "starting"))
        self.assertIn("/nonexistent/codex", body["worker"]["last_error"])
        self.assertIn("No such file", body["worker"]["last_error"])
        self.assertEqual(body["worker"]["last_exit_code"], 127)
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)
        exited = proxy.events("worker_exited")
        self.assertTrue(any("/nonexistent/codex" in e["reason"] for e in exited))

    def test_non_executable_binary_reports_permission_denied(self):
        with tempfile.NamedTemporaryFile("w", prefix="not-exec-", delete=False) as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(f.name, stat.S_IRUSR | stat.S_IWUSR)
        self.addCleanup(os.remove, f.name)
        proxy = self.start_proxy(codex_bin=f.name, env=FAST_BACKOFF)
        body = wait_until(lambda: (lambda b: b if b["worker"]["restarts_total"] >= 1 else None)(
            proxy.readyz()[1]), 3, interval=0.01, message="a failed start")
        self.assertIn("Permission denied", body["worker"]["last_error"])


class ShutdownTest(ProxyTestCase):
    def test_sigterm_fails_readyz_at_once_and_exits_zero_within_the_grace(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_SHUTDOWN_DELAY_MS": "800",
                                      "WORKER_SHUTDOWN_GRACE_MS": "3000"})
        pid = proxy.wait_ready()["worker"]["pid"]
        proxy.signal(signal.SIGTERM)
        sent = time.monotonic()
        status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(proxy.readyz()),
                                  1, interval=0.002, message="/readyz 503 after SIGTERM")
        self.assertLess(time.monotonic() - sent, 0.1)
        self.assertEqual(body["reason"], "draining")
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)
        code = proxy.wait_exit(timeout=6)
        took = time.monotonic() - sent
        self.assertEqual(code, 0)
        self.assertGreater(took, 0.6)  # the worker's 800 ms linger was honoured
        self.assertLess(took, 3.0 + 3.0 + 1.0)
        self.assertFalse(pid_alive(pid))
        states = [e["worker_state"] for e in proxy.events("worker_state_changed")]
        self.assertEqual(states[-2:], ["draining", "stopped"])

    def test_a_worker_that_ignores_sigterm_is_killed(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_SHUTDOWN_DELAY_MS": "60000",
                                      "WORKER_SHUTDOWN_GRACE_MS": "200"})
        pid = proxy.wait_ready()["worker"]["pid"]
        proxy.signal(signal.SIGTERM)
        self.assertEqual(proxy.wait_exit(timeout=10), 0)
        wait_until(lambda: not pid_alive(pid), 2, message="the worker to be gone")
        self.assertTrue(proxy.find_event("worker_kill"))

    def test_worker_does_not_outlive_a_killed_proxy(self):
        proxy = self.start_proxy()
        pid = proxy.wait_ready()["worker"]["pid"]
        proxy.process.kill()
        proxy.process.wait(timeout=5)
        wait_until(lambda: not pid_alive(pid), 3, message="the orphaned worker to die")


if __name__ == "__main__":
    unittest.main(verbosity=2)
