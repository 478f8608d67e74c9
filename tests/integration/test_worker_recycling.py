"""Recycling the real worker: after WORKER_MAX_TURNS turns or at WORKER_MAX_RSS_MB a warm successor
takes over while the old worker finishes its turns — under load, no request is refused and /readyz
never answers 503; a successor that cannot start leaves the old worker serving until the hard limit;
SIGTERM during a handover drains every worker."""
import http.client
import json
import os
import signal
import threading
import time
import unittest

from harness import REAL_CODEX, ProxyTestCase, pid_alive, wait_until


def chat(proxy, content, stream=False, timeout=60):
    return proxy.request("POST", "/v1/chat/completions",
                         body=json.dumps({"messages": [{"role": "user", "content": content}], "stream": stream}),
                         headers={"Content-Type": "application/json"}, timeout=timeout)


class ReadyzWatch:
    """Polls /readyz every 10 ms in the background and keeps every status it saw."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.statuses = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.statuses.append(self.proxy.request("GET", "/readyz", timeout=5)[0])
            except OSError as error:
                self.statuses.append(str(error))
            time.sleep(0.01)

    def close(self):
        self.stop.set()
        self.thread.join(10)
        return self.statuses


def recycles(proxy):
    return proxy.readyz()[1]["worker"]["recycle"]["recycles"]


def worker_pids(proxy):
    return {e["pid"] for e in proxy.events("worker_started")}


class RecyclingTest(ProxyTestCase):
    def gated_worker(self):
        """A CODEX_BIN that runs the real codex unless the returned marker file exists."""
        wrapper, folder = self.worker_wrapper(
            'if [ -e "$(dirname "$0")/refuse" ]; then echo "refusing to start (test)" >&2; exit 3; fi\n'
            f'exec "{REAL_CODEX}" "$@"\n')
        marker = os.path.join(folder, "refuse")
        return wrapper, marker

    def test_recycling_by_turns_under_load_refuses_nothing_and_readyz_stays_200(self):
        proxy = self.start_real_proxy(env={"WORKER_MAX_TURNS": "8", "WORKER_MAX_CONCURRENCY": "4"})
        watch = ReadyzWatch(proxy)
        results = []

        def client(n):
            for i in range(12):
                status, _, raw = chat(proxy, f"[[slow:5]][[reply:client {n} request {i}]]")
                results.append((status, raw))

        clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(180)
        statuses = watch.close()
        self.assertEqual([s for s, _ in results], [200] * 48, [r for s, r in results if s != 200][:3])
        self.assertEqual({s for s in statuses}, {200}, "readyz was not 200 throughout")
        # 48 turns, a successor due every 8: while one starts the current worker keeps serving (up to
        # its hard limit of 16, never reached here since nothing is forced), so at least 2 handovers.
        self.assertGreaterEqual(recycles(proxy)["turns"], 2)
        self.assertEqual(recycles(proxy)["forced"], 0)
        self.assertEqual(proxy.readyz()[1]["worker"]["restarts_total"], 0)
        # The former workers are gone once their turns finished. The last turn may itself have
        # started a handover: the current worker is read when the recycle is idle.
        def former_workers_alive():
            worker = proxy.readyz()[1]["worker"]
            if worker["recycle"]["phase"] != "idle" or worker["recycle"]["retiring_pids"]:
                return True
            return [p for p in worker_pids(proxy) - {worker["pid"]} if pid_alive(p)]
        wait_until(lambda: not former_workers_alive(), 30, message="every former worker to have exited")
        completed = proxy.events("worker_recycle_completed")
        self.assertEqual(len(completed), recycles(proxy)["turns"])
        self.assertEqual({e["reason"] for e in completed}, {"turns"})
        _, _, metrics = proxy.request("GET", "/metrics")
        self.assertIn('codex_worker_recycles_total{reason="turns"}', metrics.decode())

    def test_recycling_by_memory(self):
        probe = self.start_real_proxy()
        idle = wait_until(lambda: probe.readyz()[1]["worker"]["rss_bytes"], 20, interval=0.2,
                          message="a sample of the idle worker's memory")
        probe.close()
        limit_mb = idle // (1024 * 1024) + 25  # a few turns' growth above idle
        proxy = self.start_real_proxy(env={"WORKER_MAX_RSS_MB": str(limit_mb), "WORKER_MAX_TURNS": "100000"})
        for i in range(300):
            status, _, _ = chat(proxy, f"[[reply:turn {i}]]")
            self.assertEqual(status, 200)
            if recycles(proxy)["rss"] >= 1:
                break
        self.assertGreaterEqual(recycles(proxy)["rss"], 1, f"no recycle by memory below {limit_mb} MiB")
        self.assertEqual(proxy.find_event("worker_recycle_completed")["reason"], "rss")

    def test_a_memory_limit_below_the_idle_worker_is_reported_and_turns_still_recycle(self):
        proxy = self.start_real_proxy(env={"WORKER_MAX_RSS_MB": "64", "WORKER_MAX_TURNS": "2"})
        wait_until(lambda: proxy.events("worker_rss_limit_below_idle"), 20, interval=0.2,
                   message="worker_rss_limit_below_idle for a limit below an idle worker")
        for i in range(5):
            status, _, _ = chat(proxy, f"[[reply:turn {i}]]")
            self.assertEqual(status, 200)
        wait_until(lambda: recycles(proxy)["turns"] >= 1, 20, message="a recycle by turns")
        self.assertEqual(recycles(proxy)["rss"], 0, "memory recycled a worker below its idle size")
        self.assertEqual(len(proxy.events("worker_rss_limit_below_idle")), 1)

    def test_a_successor_that_cannot_start_keeps_the_old_worker_serving_until_the_hard_limit(self):
        wrapper, marker = self.gated_worker()
        proxy = self.start_real_proxy(env={"CODEX_BIN": wrapper, "WORKER_MAX_TURNS": "3",
                                           "WORKER_BACKOFF_INITIAL_MS": "50", "WORKER_BACKOFF_MAX_MS": "300",
                                           "WORKER_RESTART_MAX": "0"})
        first = proxy.readyz()[1]["worker"]["pid"]
        open(marker, "w").close()
        watch = ReadyzWatch(proxy)
        for i in range(5):  # the hard limit is 6 turns
            status, _, raw = chat(proxy, f"[[reply:still served {i}]]")
            self.assertEqual(status, 200, raw)
        wait_until(lambda: proxy.find_event("worker_recycle_successor_failed"), 10,
                   message="a failed successor")
        self.assertEqual(set(watch.close()), {200})
        self.assertEqual(proxy.readyz()[1]["worker"]["pid"], first)
        self.assertGreaterEqual(proxy.readyz()[1]["worker"]["recycle"]["successor_failures"], 1)
        # The sixth turn passes the hard limit: the worker is restarted the ordinary way.
        chat(proxy, "[[reply:the last one]]")
        wait_until(lambda: recycles(proxy)["forced"] == 1, 10, message="a forced recycle")
        self.assertTrue(proxy.find_event("worker_recycle_forced"))
        os.remove(marker)
        proxy.wait_ready(timeout=60)
        self.assertNotEqual(proxy.readyz()[1]["worker"]["pid"], first)
        self.assertEqual(chat(proxy, "[[reply:back]]")[0], 200)

    def test_a_successor_that_starts_later_completes_the_handover(self):
        wrapper, marker = self.gated_worker()
        proxy = self.start_real_proxy(env={"CODEX_BIN": wrapper, "WORKER_MAX_TURNS": "2",
                                           "WORKER_BACKOFF_INITIAL_MS": "50", "WORKER_BACKOFF_MAX_MS": "200"})
        open(marker, "w").close()
        for i in range(3):
            self.assertEqual(chat(proxy, "[[reply:x]]")[0], 200)
        wait_until(lambda: proxy.find_event("worker_recycle_successor_failed"), 10, message="a failed successor")
        os.remove(marker)
        wait_until(lambda: recycles(proxy)["turns"] == 1, 30, interval=0.05, message="the handover")
        self.assertEqual(recycles(proxy)["forced"], 0)
        self.assertEqual(chat(proxy, "[[reply:on the successor]]")[0], 200)

    def test_sigterm_during_a_handover_lets_the_retiring_workers_turn_finish(self):
        proxy = self.start_real_proxy(env={"WORKER_MAX_TURNS": "1", "WORKER_SHUTDOWN_GRACE_MS": "10000"})
        first = proxy.readyz()[1]["worker"]["pid"]
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
        self.addCleanup(conn.close)
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps({"messages": [{"role": "user", "content": "[[slow:150]][[reply:w1 w2 w3 w4 w5 w6 w7 w8 w9 w10]]"}],
                                      "stream": True}), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        # Its turn was the worker's last: the successor takes over while the stream goes on.
        wait_until(lambda: first in proxy.readyz()[1]["worker"]["recycle"]["retiring_pids"], 30, interval=0.02,
                   message="the first worker retiring with its turn in flight")
        proxy.signal(signal.SIGTERM)
        body = response.read()
        self.assertTrue(body.endswith(b"data: [DONE]\n\n"), body[-200:])
        self.assertIn(b"w10", body)
        self.assertEqual(proxy.wait_exit(timeout=30), 0)
        for pid in worker_pids(proxy):
            wait_until(lambda: not pid_alive(pid), 10, message=f"worker {pid} to exit")


if __name__ == "__main__":
    unittest.main(verbosity=2)
