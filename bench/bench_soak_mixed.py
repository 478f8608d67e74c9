#!/usr/bin/env python3
"""A soak of one codex-proxy pod under mixed traffic with a worker kill every minute (not a test:
it prints figures; bench/soak.sh runs it).

  python3 bench/bench_soak_mixed.py [--minutes 30] [--rate 4] [--kill-every 60]

The real `codex app-server` against the scripted model (a process of its own). Requests arrive at a
fixed rate, a mix of: chat completions (40 %), streamed (25 %), with a tool the model calls (15 %),
the Responses API (10 %) and model failures (10 %). Every --kill-every seconds the current worker is
SIGKILLed. Each minute: codex-proxy's RSS, open fds and threads, and the worker's (its whole process
tree: the node launcher and the codex binary), and the minute's answers by outcome. At the end: the
slope per hour of codex-proxy's RSS, fds and threads (least squares over the minutes after the
first two), the answers that were neither complete nor retryable, and the longest answer.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from chaos_load import LoadReport, Outcome, _read_answer, fds, request, rss_kib, threads, tree_total  # noqa: E402
from proxy_process import Proxy  # noqa: E402
from real_worker import real_worker_env, start_stub_process  # noqa: E402

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


async def responses_request(port, timeout):
    """One /v1/responses request (not streamed); classified like a chat completion's envelope."""
    payload = json.dumps({"model": "gpt-5", "input": "[[reply:from the responses api]]"}).encode()
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        await writer.drain()
        status, _, body = await asyncio.wait_for(_read_answer(reader), timeout)
        writer.close()
    except asyncio.TimeoutError:
        return Outcome("hang", 0, False, time.monotonic() - started, "no answer")
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        return Outcome("bad", 0, False, time.monotonic() - started, str(error))
    seconds = time.monotonic() - started
    if status == 200 and json.loads(body).get("status") == "completed":
        return Outcome("ok", status, False, seconds)
    if status in (429, 502, 503, 504) and "error" in json.loads(body):
        return Outcome("retryable", status, False, seconds, code=json.loads(body)["error"].get("code") or "")
    return Outcome("bad", status, False, seconds, body[:200].decode("utf-8", "replace"))


async def one(port, rng, timeout):
    kind = rng.random()
    if kind < 0.40:
        return (await request(port, {"model": "gpt-5", "messages": [{"role": "user", "content": "[[reply:a plain answer]]"}]},
                              False, timeout))[0]
    if kind < 0.65:
        return (await request(port, {"model": "gpt-5", "messages": [{"role": "user", "content": "[[reply:a streamed answer]]"}]},
                              True, timeout))[0]
    if kind < 0.80:
        body = {"model": "gpt-5", "tools": TOOLS,
                "messages": [{"role": "user", "content": '[[call:get_weather:{"city":"Paris"}]]'}]}
        return (await request(port, body, rng.random() < 0.5, timeout))[0]
    if kind < 0.90:
        return await responses_request(port, timeout)
    return (await request(port, {"model": "gpt-5", "messages": [{"role": "user", "content": "[[fail:server_error:overloaded]]"}]},
                          False, timeout))[0]


def slope_per_hour(points):
    """Least-squares slope of (minute, value) points, per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 60 * sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=4)
    parser.add_argument("--kill-every", type=float, default=60)
    args = parser.parse_args()
    stub, base_url = start_stub_process()
    home = tempfile.TemporaryDirectory(prefix="bench-soak-mixed-")
    proxy = Proxy(env=real_worker_env(base_url, home.name, WORKER_RESTART_MAX="0"), codex_bin=None)
    proxy.wait_ready(60)
    pid = proxy.process.pid
    rng = random.Random(1)
    report, minute_reports = LoadReport(), []
    samples = []  # (minute, proxy rss KiB, fds, threads, worker rss KiB, fds, threads)
    started = time.monotonic()
    deadline = started + args.minutes * 60
    kills = 0

    async def sampler():
        minute = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(max(0, started + (minute + 1) * 60 - 5 - time.monotonic()))  # just before a kill
            minute += 1
            worker = proxy.readyz()[1]["worker"].get("pid") or 0
            samples.append((minute, rss_kib(pid), fds(pid), threads(pid),
                            tree_total(worker, rss_kib) if worker else 0, tree_total(worker, fds) if worker else 0,
                            tree_total(worker, threads) if worker else 0))
            minute_reports.append(len(report.outcomes))

    async def killer():
        nonlocal kills
        while time.monotonic() + args.kill_every < deadline:
            await asyncio.sleep(args.kill_every)
            worker = proxy.readyz()[1]["worker"].get("pid")
            if worker:
                os.kill(worker, signal.SIGKILL)
                kills += 1

    async def record(task):
        report.outcomes.append(await task)

    tasks = []
    background = [asyncio.create_task(sampler()), asyncio.create_task(killer())]
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        tasks.append(asyncio.create_task(record(one(proxy.port, rng, 180))))
        next_at += 1 / args.rate
        await asyncio.sleep(max(0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)
    for task in background:
        task.cancel()
    print(f"soak (mixed traffic): {args.minutes:g} min at {args.rate:g} req/s, worker SIGKILLed every "
          f"{args.kill_every:g} s ({kills} kills), {os.cpu_count()} cores")
    print(f"  answers {len(report.outcomes)}: {report.by_kind()}")
    print(f"  neither complete nor retryable: {report.count('bad') + report.count('hang')} {report.problems(5)}")
    print(f"  longest answer {report.longest():.1f} s")
    print("  minute | codex-proxy RSS MiB  fds  threads | worker tree RSS MiB  fds  threads")
    for minute, prss, pfds, pthr, wrss, wfds, wthr in samples:
        print(f"  {minute:6d} | {prss / 1024:19.1f} {pfds:4d} {pthr:8d} | {wrss / 1024:19.1f} {wfds:4d} {wthr:8d}")
    steady = [s for s in samples if s[0] > 2]
    print(f"  codex-proxy slope per hour (minutes 3-{samples[-1][0] if samples else 0}): "
          f"RSS {slope_per_hour([(s[0], s[1] / 1024) for s in steady]):+.2f} MiB, "
          f"fds {slope_per_hour([(s[0], s[2]) for s in steady]):+.2f}, "
          f"threads {slope_per_hour([(s[0], s[3]) for s in steady]):+.2f}")
    print(f"  worker (sampled 55 s into each life) RSS MiB min {min(s[4] for s in samples) / 1024:.0f} "
          f"max {max(s[4] for s in samples) / 1024:.0f}, fds max {max(s[5] for s in samples)}, "
          f"threads max {max(s[6] for s in samples)}")
    proxy.close()
    stub.kill()
    home.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
