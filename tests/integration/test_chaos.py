"""Chaos under load, with the real `codex app-server` and the scripted model (in a process of its
own): the worker SIGKILLed every 2 s under 200 concurrent clients, and a model that stalls, resets
its connections and answers 500s. Every answer must be a complete 200 or a retryable error (the
envelope with 429/502/503/504; in a stream an error event, then `[DONE]`), none may hang past the
client's timeout, and the proxy's file descriptors and memory must come back after the load (the
CLOSE_WAIT leak of issue 16 held 2,194 sockets after such a run). Figures: bench/run.sh chaos."""
import asyncio
import os
import sys
import tempfile
import unittest

from harness import ProxyTestCase, wait_until
from proxy_process import SANITIZED  # noqa: E402  (tests/pylib)
from chaos_load import WorkerKiller, fds, rss_kib, run_load  # noqa: E402  (tests/pylib)
from real_worker import real_worker_env, start_stub_process  # noqa: E402

CLIENTS = 200
# Generous: the request timeout (20 s) plus the longest queue wait (10 s) plus slack for 2 cores.
CLIENT_TIMEOUT = 60
# Memory the proxy may keep after the load (allocator caches, grown pools): a leak of sockets or
# sessions at this load costs far more (the CLOSE_WAIT leak: +54 MB).
RSS_SLACK_KIB = 24 * 1024


class ChaosTestCase(ProxyTestCase):
    def start_chaos_proxy(self, **env):
        stub, base_url = start_stub_process()
        self.addCleanup(stub.stdout.close)
        self.addCleanup(stub.wait, 10)
        self.addCleanup(stub.kill)
        home = tempfile.TemporaryDirectory(prefix="cxp-chaos-home-")
        self.addCleanup(home.cleanup)
        settings = {"WORKER_MAX_CONCURRENCY": "8", "PROXY_QUEUE_MAX": "64", "PROXY_QUEUE_TIMEOUT_MS": "10000",
                    "WORKER_REQUEST_TIMEOUT_MS": "20000", **env}
        proxy = self.start_proxy(env=real_worker_env(base_url, home.name, **settings), codex_bin=None)
        proxy.wait_ready(timeout=60)
        # Warm up (first turn, thread pools), then take the baseline the load must return to.
        report = asyncio.run(run_load(proxy.port, 4, 2, lambda rng: "[[reply:warm up]]", CLIENT_TIMEOUT))
        self.assertGreater(report.count("ok"), 0, report.by_kind())
        return proxy

    def assert_every_answer_complete_or_retryable(self, report, minimum_ok):
        summary = f"{len(report.outcomes)} answers: {report.by_kind()}"
        print(f"\n{self.id()}: {summary}, longest {report.longest():.1f} s", file=sys.stderr)
        self.assertEqual(report.problems(), [], summary)
        self.assertGreaterEqual(report.count("ok", stream=True), minimum_ok, summary)
        self.assertGreaterEqual(report.count("ok", stream=False), minimum_ok, summary)
        self.assertLess(report.longest(), CLIENT_TIMEOUT, summary)

    def assert_resources_return(self, proxy, start_fds, start_rss):
        pid = proxy.process.pid
        # The worker's pipes and the listener are part of the baseline; sockets of the load are not.
        try:
            wait_until(lambda: fds(pid) <= start_fds + 2, 30, interval=0.5, message="the fds to come back")
        except AssertionError:
            self.fail(f"{fds(pid)} fds 30 s after the load, {start_fds} before it: "
                      f"{sorted(os.readlink(f'/proc/{pid}/fd/{fd}') for fd in os.listdir(f'/proc/{pid}/fd'))[:40]}")
        if not SANITIZED:  # ASan's quarantine holds freed memory; LeakSanitizer checks at exit
            self.assertLessEqual(rss_kib(pid), start_rss + RSS_SLACK_KIB,
                                 f"RSS {start_rss} KiB before the load, {rss_kib(pid)} KiB after")


class WorkerKillChaosTest(ChaosTestCase):
    def test_worker_sigkilled_every_2s_under_200_clients_half_streaming(self):
        # A worker that dies every 2 s would make the default supervisor give up (WORKER_RESTART_MAX
        # consecutive failures, then /livez fails and the kubelet restarts the pod); here it must
        # keep serving, so it never gives up and its backoff stays short.
        proxy = self.start_chaos_proxy(WORKER_RESTART_MAX="0", WORKER_BACKOFF_MAX_MS="1000")
        start_fds, start_rss = fds(proxy.process.pid), rss_kib(proxy.process.pid)
        killer = WorkerKiller(proxy, every=2.0)
        killer.start()
        try:
            report = asyncio.run(run_load(proxy.port, CLIENTS, 60,
                                          lambda rng: f"[[reply:answer {rng.randrange(1000)} of the chaos]]",
                                          CLIENT_TIMEOUT))
        finally:
            killer.stop()
        self.assertGreaterEqual(killer.kills, 15, "the worker was killed throughout the load")
        self.assert_every_answer_complete_or_retryable(report, minimum_ok=20)
        self.assertGreater(report.count("retryable"), 0, report.by_kind())
        proxy.wait_ready(timeout=60)
        self.assertGreaterEqual(proxy.readyz()[1]["worker"]["restarts_total"], killer.kills - 1)
        self.assert_resources_return(proxy, start_fds, start_rss)


class ModelFaultChaosTest(ChaosTestCase):
    FAULTS = ["[[reply:fine]]"] * 4 + [
        "[[fail:server_error:overloaded]]",   # response.failed → 502 model_error
        "[[status:500]]",                     # an HTTP 500 from the model → 502
        "[[disconnect]][[reply:a b c d e f]]",  # the connection reset mid-stream → 502
        "[[wait:6000]][[reply:late]]",        # a stall past the request timeout → 504, interrupted
        "[[hang]]",                           # never answers → 504, interrupted
    ]

    def test_a_model_that_stalls_resets_and_fails_under_200_clients(self):
        proxy = self.start_chaos_proxy(WORKER_REQUEST_TIMEOUT_MS="4000")
        start_fds, start_rss = fds(proxy.process.pid), rss_kib(proxy.process.pid)
        report = asyncio.run(run_load(proxy.port, CLIENTS, 40, lambda rng: rng.choice(self.FAULTS), CLIENT_TIMEOUT))
        self.assert_every_answer_complete_or_retryable(report, minimum_ok=20)
        codes = {o.code for o in report.outcomes if o.kind == "retryable"}
        self.assertIn("timeout", codes, report.by_kind())
        self.assertIn("model_error", codes, report.by_kind())
        # The faults were the model's: the worker never died.
        self.assertEqual(proxy.readyz()[1]["worker"]["restarts_total"], 0)
        self.assert_resources_return(proxy, start_fds, start_rss)


if __name__ == "__main__":
    unittest.main()
