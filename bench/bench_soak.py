#!/usr/bin/env python3
"""A soak of one codex-proxy pod with the real worker at a steady rate (not a test: it prints figures).

  python3 bench/bench_soak.py [--minutes 30] [--rate 20] [--concurrency 4]
                              [--max-turns 400] [--max-rss-mb 1024]

Requests arrive at a fixed rate (one-line prompts, the scripted model answering at once). Every
5 s the pod's memory (codex-proxy and every process under it: the current, the successor and the
retiring workers) is sampled. At the end: requests and how many were not 200, latency p50/p99
overall and during handovers (a recycle's start to the retired worker's exit) vs outside them, the
recycles, and the memory minute by minute — the saw-tooth a bounded worker lifetime draws.
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from bench_proxy import http_request, pct, start_proxy  # noqa: E402
from bench_real_worker import start_stub, tree_rss_kib  # noqa: E402
from real_worker import real_worker_env  # noqa: E402


def log_events(path):
    out = []
    with open(path) as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            stamp = datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=timezone.utc).timestamp() if "timestamp" in event else None
            out.append((stamp, event))
    return out


def handover_windows(events):
    """(start, end) wall-clock windows from each recycle's start to the exit of the worker it retired."""
    windows, start = [], None
    for stamp, event in events:
        if event.get("event") == "worker_recycle_started":
            start = stamp
        elif event.get("event") == "worker_retired" and start is not None:
            windows.append((start, stamp))
            start = None
    return windows


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=400)
    parser.add_argument("--max-rss-mb", type=int, default=1024)
    args = parser.parse_args()
    stub, base_url = start_stub()
    home = tempfile.TemporaryDirectory(prefix="bench-soak-home-")
    env = {**real_worker_env(base_url, home.name), "WORKER_MAX_TURNS": str(args.max_turns),
           "WORKER_MAX_RSS_MB": str(args.max_rss_mb), "WORKER_MAX_CONCURRENCY": str(args.concurrency)}
    proxy, port = start_proxy(env, ready_timeout=60)
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "[[reply:one two three four five]]"}]}
    results = []  # (wall-clock start, seconds, status)
    memory = []   # (wall-clock, KiB of the whole pod)
    deadline = time.monotonic() + args.minutes * 60
    sem = asyncio.Semaphore(args.concurrency)

    async def one():
        async with sem:
            started = time.time()
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                data, _ = await http_request(reader, writer, body, port)
                writer.close()
                status = 200 if data.startswith(b'{"choices"') else 500
            except (OSError, asyncio.IncompleteReadError):
                status = 0
            results.append((started, time.time() - started, status))

    async def sample():
        while time.monotonic() < deadline:
            memory.append((time.time(), tree_rss_kib(proxy.pid)))
            await asyncio.sleep(5)

    try:
        sampler = asyncio.create_task(sample())
        tasks = []
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            tasks.append(asyncio.create_task(one()))
            next_at += 1 / args.rate
            await asyncio.sleep(max(0, next_at - time.monotonic()))
        await asyncio.gather(*tasks)
        await sampler
    finally:
        proxy.terminate()
        proxy.wait()
        stub.kill()
    events = log_events(proxy.log_path)
    windows = handover_windows(events)
    during = [d for s, d, _ in results if any(a <= s <= b for a, b in windows)]
    outside = [d for s, d, _ in results if not any(a <= s <= b for a, b in windows)]
    refused = [st for _, _, st in results if st != 200]
    recycled = [e for _, e in events if e.get("event") == "worker_recycle_completed"]
    forced = [e for _, e in events if e.get("event") == "worker_recycle_forced"]
    print(f"soak: {args.minutes:g} min at {args.rate:g} req/s (concurrency {args.concurrency}), "
          f"WORKER_MAX_TURNS={args.max_turns}, WORKER_MAX_RSS_MB={args.max_rss_mb}, {os.cpu_count()} cores")
    print(f"  requests {len(results)}, not 200: {len(refused)}")
    print(f"  recycles {len(recycled)} (by turns {sum(1 for e in recycled if e['reason'] == 'turns')}, "
          f"by rss {sum(1 for e in recycled if e['reason'] == 'rss')}), forced {len(forced)}")
    print(f"  latency p50 {pct([d for _, d, _ in results], 50):.1f} ms, p99 {pct([d for _, d, _ in results], 99):.1f} ms")
    if during:
        print(f"  during handovers ({len(during)} requests): p50 {pct(during, 50):.1f} ms, p99 {pct(during, 99):.1f} ms")
    print(f"  outside handovers ({len(outside)} requests): p50 {pct(outside, 50):.1f} ms, p99 {pct(outside, 99):.1f} ms")
    peak = max(k for _, k in memory)
    print(f"  pod memory: min {min(k for _, k in memory) / 1024:.0f} MiB, max {peak / 1024:.0f} MiB")
    start = memory[0][0]
    print("  pod memory, first 2 minutes every 5 s (MiB):")
    print("    " + " ".join(f"{kib / 1024:.0f}" for stamp, kib in memory if stamp - start < 120))
    print("  pod memory by minute (min-max MiB):")
    minutes = {}
    for stamp, kib in memory:
        low, high = minutes.get(int((stamp - start) // 60), (kib, kib))
        minutes[int((stamp - start) // 60)] = (min(low, kib), max(high, kib))
    for minute, (low, high) in sorted(minutes.items()):
        bar = " " * int(low / peak * 50) + "#" * max(1, int(high / peak * 50) - int(low / peak * 50))
        print(f"    {minute:3d} {low / 1024:5.0f}-{high / 1024:<5.0f} |{bar}")
    home.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
