#!/usr/bin/env python3
"""Chaos figures (not a test; tests/integration/test_chaos.py asserts the same with generous bounds).

  python3 bench/bench_chaos.py [--scenario kill|model|both] [--clients 200] [--seconds 60]
                               [--kill-every 2]

One codex-proxy with the real `codex app-server`, the scripted model in a process of its own.
  kill    the worker SIGKILLed every --kill-every seconds, prompts answered at once
  model   the model stalls past the request timeout, hangs, resets its connection mid-stream and
          answers 500s and failures (half the prompts), the worker untouched
Clients (half streaming, half on keep-alive connections) loop for --seconds, each waiting a
jittered 50-300 ms after a non-200. Printed per scenario: answers by outcome and status, the
complete 200s per second, latency of the 200s p50/p99, the longest answer, and codex-proxy's fds,
RSS and threads before the load, at its end and 10 s later.
"""
import argparse
import asyncio
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from chaos_load import WorkerKiller, fds, rss_kib, run_load, threads  # noqa: E402
from proxy_process import Proxy  # noqa: E402
from real_worker import real_worker_env, start_stub_process  # noqa: E402

MODEL_FAULTS = ["[[reply:fine]]"] * 4 + ["[[fail:server_error:overloaded]]", "[[status:500]]",
                                         "[[disconnect]][[reply:a b c d e f]]", "[[wait:6000]][[reply:late]]",
                                         "[[hang]]"]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


def gauges(pid):
    return f"fds {fds(pid)}, RSS {rss_kib(pid) / 1024:.1f} MiB, threads {threads(pid)}"


def scenario(name, clients, seconds, kill_every):
    stub, base_url = start_stub_process()
    home = tempfile.TemporaryDirectory(prefix="bench-chaos-home-")
    env = {"WORKER_MAX_CONCURRENCY": "8", "PROXY_QUEUE_MAX": "64", "PROXY_QUEUE_TIMEOUT_MS": "10000",
           "WORKER_REQUEST_TIMEOUT_MS": "20000" if name == "kill" else "4000",
           "WORKER_RESTART_MAX": "0", "WORKER_BACKOFF_MAX_MS": "1000"}
    proxy = Proxy(env=real_worker_env(base_url, home.name, **env), codex_bin=None)
    try:
        proxy.wait_ready(timeout=60)
        asyncio.run(run_load(proxy.port, 4, 2, lambda rng: "[[reply:warm up]]", 60))
        pid = proxy.process.pid
        before = gauges(pid)
        killer = WorkerKiller(proxy, kill_every) if name == "kill" else None
        if killer:
            killer.start()
        prompt = (lambda rng: f"[[reply:answer {rng.randrange(1000)} of the chaos]]") if name == "kill" \
            else (lambda rng: rng.choice(MODEL_FAULTS))
        started = time.monotonic()
        report = asyncio.run(run_load(proxy.port, clients, seconds, prompt, 60))
        wall = time.monotonic() - started
        if killer:
            killer.stop()
        at_end = gauges(pid)
        time.sleep(10)
        after = gauges(pid)
        ok = [o.seconds for o in report.outcomes if o.kind == "ok"]
        print(f"== {name}: {clients} clients for {seconds} s" +
              (f", worker SIGKILLed every {kill_every} s ({killer.kills} kills, "
               f"{proxy.readyz()[1]['worker']['restarts_total']} restarts)" if killer else ""))
        print(f"answers {len(report.outcomes)}: {report.by_kind()}")
        print(f"not complete-or-retryable: {report.count('bad') + report.count('hang')} {report.problems(5)}")
        print(f"complete 200s {len(ok)} ({len(ok) / wall:.1f}/s; stream {report.count('ok', True)}, "
              f"non-stream {report.count('ok', False)}), latency p50 {pct(ok, 50) * 1000:.0f} ms "
              f"p99 {pct(ok, 99) * 1000:.0f} ms, longest answer {report.longest():.1f} s")
        print(f"codex-proxy before: {before}; at the end: {at_end}; 10 s later: {after}")
    finally:
        proxy.close()
        stub.kill()
        stub.wait()
        home.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("kill", "model", "both"), default="both")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-every", type=float, default=2.0)
    args = parser.parse_args()
    for name in (("kill", "model") if args.scenario == "both" else (args.scenario,)):
        scenario(name, args.clients, args.seconds, args.kill_every)


if __name__ == "__main__":
    main()
