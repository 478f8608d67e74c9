#!/usr/bin/env python3
"""What one pod carries (not a test): one codex-proxy with the real `codex app-server` and the
scripted model streaming realistic turns, at rising concurrency.

  python3 bench/bench_capacity.py [--turn-seconds 5,30] [--concurrency 4,16,32,64,128,256]
                                  [--rounds 2] [--defaults]

For each turn length and concurrency C: a proxy whose worker may run C turns at once
(WORKER_MAX_CONCURRENCY=C), C clients each streaming `--rounds` turns back to back. The model
streams each turn as 100 words, one delta every turn-seconds/100 (a 5 s turn: 50 ms apart), the
way real models take seconds. Printed per step: turns ok, turns/s, first token p50/p95, turn
p50/p95, the worker's CPU per turn and RSS peak (its process tree), codex-proxy's RSS peak.

--defaults: one proxy at its default settings (no WORKER_MAX_CONCURRENCY, PROXY_QUEUE_MAX,
WORKER_MAX_RSS_MB given), 64 clients with 5-second turns, as one burst and then arriving over one
turn (client i starts i/64 of a turn late, as steady traffic does): what a pod does out of the box.
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from bench_proxy import http_request, pct, rss_kib, start_proxy  # noqa: E402
from chaos_load import tree_total  # noqa: E402
from proxy_process import REAL_CODEX  # noqa: E402
from real_worker import real_worker_env, start_stub_process  # noqa: E402

WORDS = 100
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Sampler(threading.Thread):
    """The peak RSS of the worker's tree and of codex-proxy, every 0.25 s."""

    def __init__(self, proxy_pid, worker_pid):
        super().__init__(daemon=True)
        self.proxy_pid, self.worker_pid = proxy_pid, worker_pid
        self.worker_peak = self.proxy_peak = 0
        self.stopping = threading.Event()
        self.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                self.worker_peak = max(self.worker_peak, tree_total(self.worker_pid, rss_kib))
                self.proxy_peak = max(self.proxy_peak, rss_kib(self.proxy_pid))
            except (FileNotFoundError, ProcessLookupError, StopIteration):
                pass
            self.stopping.wait(0.25)

    def stop(self):
        self.stopping.set()
        self.join()


def worker_pid(proxy):
    ops = next(json.loads(l) for l in open(proxy.log_path) if '"listening"' in l)["ops_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{ops}/readyz", timeout=5) as r:
        return json.loads(r.read())["worker"]["pid"]


async def clients(port, count, rounds, body, spread=0.0):
    """`spread`: client i starts i*spread/count seconds late (arrivals over time, not one burst)."""
    turns, firsts, failures = [], [], 0

    async def client(index):
        nonlocal failures
        await asyncio.sleep(index * spread / count)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(rounds):
            started = time.perf_counter()
            try:
                data, first = await http_request(reader, writer, body, port)
            except (asyncio.IncompleteReadError, ConnectionError):
                failures += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if first is None or b'"finish_reason":"stop"' not in data:
                failures += 1
                continue
            turns.append(time.perf_counter() - started)
            firsts.append(first - started)
        writer.close()

    wall = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(count)))
    return turns, firsts, failures, time.perf_counter() - wall


async def step(env, home, clients_count, rounds, turn_seconds, settings, spread=0.0):
    delay_ms = int(turn_seconds * 1000 / WORDS)
    reply = " ".join(f"w{i}" for i in range(WORDS))
    body = {"model": "gpt-5", "stream": True,
            "messages": [{"role": "user", "content": f"go [[slow:{delay_ms}]] [[reply:{reply}]]"}]}
    proxy, port = start_proxy({**env, "CODEX_HOME": home, **settings}, ready_timeout=60)
    try:
        pid = worker_pid(proxy)
        sampler = Sampler(proxy.pid, pid)
        cpu_before = tree_total(pid, cpu_seconds)
        turns, firsts, failures, wall = await clients(port, clients_count, rounds, body, spread)
        cpu = tree_total(pid, cpu_seconds) - cpu_before
        sampler.stop()
        ok = len(turns)
        print(f"  {clients_count:>4} clients  {ok:>4}/{clients_count * rounds:<4} ok  {ok / wall:6.1f} turns/s  "
              f"first token p50/p95 {pct(firsts, 50):6.0f} / {pct(firsts, 95):6.0f} ms  "
              f"turn p50/p95 {pct(turns, 50) / 1000:5.2f} / {pct(turns, 95) / 1000:5.2f} s  "
              f"worker CPU {cpu / max(ok, 1) * 1000:5.0f} ms/turn, RSS peak {sampler.worker_peak / 1024:5.0f} MiB  "
              f"proxy RSS peak {sampler.proxy_peak / 1024:4.0f} MiB", flush=True)
    finally:
        proxy.kill()
        proxy.wait()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--turn-seconds", default="5,30")
    parser.add_argument("--concurrency", default="4,16,32,64,128,256")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--defaults", action="store_true")
    args = parser.parse_args()
    stub, base_url = start_stub_process()
    home = tempfile.TemporaryDirectory(prefix="bench-capacity-home-")
    env = real_worker_env(base_url, home.name)
    print(f"capacity of one pod: codex app-server ({REAL_CODEX}), the model streaming {WORDS} words per turn, "
          f"{os.cpu_count()} cores")
    try:
        if args.defaults:
            print("\ndefault settings, 5 s turns, 64 clients at once")
            await step(env, home.name, 64, args.rounds, 5, {})
            print("default settings, 5 s turns, 64 clients arriving over one turn")
            await step(env, home.name, 64, args.rounds, 5, {}, spread=5)
            return
        for turn_seconds in [float(t) for t in args.turn_seconds.split(",")]:
            print(f"\n{turn_seconds:g} s turns (WORKER_MAX_CONCURRENCY = clients)")
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                await step(env, home.name, concurrency, args.rounds, turn_seconds,
                           {"WORKER_MAX_CONCURRENCY": str(concurrency), "PROXY_QUEUE_MAX": "1000",
                            "WORKER_MAX_RSS_MB": "4096", "WORKER_MAX_TURNS": "100000",
                            "WORKER_REQUEST_TIMEOUT_MS": "300000"})
    finally:
        stub.kill()
        stub.wait()
        home.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
