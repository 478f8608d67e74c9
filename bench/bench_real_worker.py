#!/usr/bin/env python3
"""Benchmarks of codex-proxy with the real `codex app-server` and the scripted model (not a test).

  python3 bench/bench_real_worker.py [--requests 96] [--concurrency 1,8,32] [--reply-words 8]

The model is tests/model-stub in a process of its own, answering at once (so the figures are codex's
and the proxy's, not a model's). For each concurrency, the same prompts are played
  a) straight to one `codex app-server` over stdio JSON-RPC (as codex-proxy drives it), and
  b) through one codex-proxy (HTTP, streaming and not), whose worker is an identical app server;
printing throughput, total latency, time to first token, the cost of `thread/start`, and what a
pre-started thread would save (turns on a thread started before the clock). Also the worker's RSS
before and after, and its spawn → `initialize` time.
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from bench_proxy import DirectWorker, pct, proxy_load, rss_kib, start_proxy  # noqa: E402
from real_worker import real_worker_env, start_stub_process  # noqa: E402
from proxy_process import REAL_CODEX  # noqa: E402
from chaos_load import tree_total  # noqa: E402


def start_stub():
    return start_stub_process()


def tree_rss_kib(pid):
    """RSS of a process and its descendants (the npm `codex` wrapper runs the native binary)."""
    return tree_total(pid, rss_kib)


def line(name, values, wall=None, unit_ms=True):
    rate = f"{len(values) / wall:7.1f} req/s   " if wall else " " * 17
    print(f"  {name:<40} {rate}p50 {pct(values, 50):8.1f} ms   p95 {pct(values, 95):8.1f} ms")


async def direct(command, env, prompt, requests, concurrency, prewarmed=False):
    worker = DirectWorker(env, command=command)
    await worker.start()
    threads = [await worker.start_thread() for _ in range(requests)] if prewarmed else []
    rss_before = tree_rss_kib(worker.proc.pid)
    results = []
    sem = asyncio.Semaphore(concurrency)

    async def one(index):
        async with sem:
            results.append(await worker.turn(prompt, thread=threads[index] if prewarmed else None))

    wall = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
    wall = time.perf_counter() - wall
    rss_after = tree_rss_kib(worker.proc.pid)
    handshake = worker.handshake_s
    await worker.stop()
    return results, wall, handshake, rss_before, rss_after


def worker_command(proxy):
    """The worker's exact command line, from the proxy's `worker_started` log line."""
    with open(proxy.log_path) as f:
        return next(json.loads(l)["command"] for l in f if '"worker_started"' in l)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--reply-words", type=int, default=8)
    parser.add_argument("--override", action="append", default=[],
                        help="one more codex -c key=value for the worker (e.g. features.shell_snapshot=false)")
    args = parser.parse_args()
    reply = " ".join(f"w{i}" for i in range(args.reply_words))
    prompt = f"hello [[reply:{reply}]]"
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": prompt}]}
    stub, base_url = start_stub()
    home = tempfile.TemporaryDirectory(prefix="bench-codex-home-")
    env = real_worker_env(base_url, home.name)
    env["WORKER_CONFIG_OVERRIDES"] = "\n".join([env["WORKER_CONFIG_OVERRIDES"], *args.override])
    worker_env = {**os.environ, **env, "CODEX_HOME": home.name}
    print(f"real worker benchmark: codex app-server ({REAL_CODEX}), the model stub answering {args.reply_words} "
          f"words at once, {args.requests} requests per run, {os.cpu_count()} cores"
          + (f", overrides {args.override}" if args.override else ""))
    try:
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            print(f"\nconcurrency {concurrency}")
            proxy, port = start_proxy({**env, "CODEX_HOME": home.name,
                                       "WORKER_MAX_CONCURRENCY": str(concurrency), "PROXY_QUEUE_MAX": "1000"},
                                      ready_timeout=60)
            command = worker_command(proxy)  # the direct runs start the worker exactly as the proxy does
            results, wall, handshake, before, after = await direct(command, worker_env, prompt, args.requests,
                                                                   concurrency)
            line("direct: total (thread/start + turn)", [r[0] for r in results], wall)
            line("direct: first delta from turn/start", [r[1] for r in results])
            line("direct: thread/start", [r[2] for r in results])
            print(f"  direct: spawn → initialize answered       {handshake * 1000:8.1f} ms;  worker RSS "
                  f"{before / 1024:.0f} → {after / 1024:.0f} MiB ({(after - before) / args.requests:.0f} KiB per turn)")
            warm, warm_wall, _, _, _ = await direct(command, worker_env, prompt, args.requests, concurrency,
                                                    prewarmed=True)
            line("direct, thread pre-started: total", [r[0] for r in warm], warm_wall)
            line("direct, thread pre-started: first delta", [r[1] for r in warm])
            try:
                latencies, _, wall_p = await proxy_load(port, args.requests, concurrency, body)
                line("proxy: total (JSON)", latencies, wall_p)
                latencies, ttfc, wall_s = await proxy_load(port, args.requests, concurrency, {**body, "stream": True})
                line("proxy: total (SSE)", latencies, wall_s)
                line("proxy: first content chunk (SSE)", ttfc)
            finally:
                proxy.kill()
                proxy.wait()
    finally:
        stub.kill()
        stub.wait()
        home.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
