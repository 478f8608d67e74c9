#!/usr/bin/env python3
"""Benchmarks of codex-proxy against codex-fake-worker (not a test: it prints figures).

  python3 bench/bench_proxy.py [--requests 400] [--concurrency 8] [--token-delay-ms 2] [--streams 1000]

1. Turn latency and throughput straight to the fake worker (JSON-RPC over stdio) vs through the
   proxy (HTTP, non-streaming), same token delay and concurrency.
2. SSE time to first content chunk through the proxy vs time to the first delta straight from the
   worker.
3. Proxy RSS idle and with N concurrent open streams (turns that hang until interrupted).
Everything runs on loopback and stops by itself.
"""
import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "pylib"))
from proxy_process import pass_fake_script  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
BODY = {"model": "gpt-5", "messages": [{"role": "user", "content": "hello"}]}
REPLY = "one two three four five six seven eight"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def summary(name, latencies, wall):
    print(f"  {name:<28} {len(latencies) / wall:8.1f} req/s   p50 {pct(latencies, 50):7.2f} ms   "
          f"p95 {pct(latencies, 95):7.2f} ms   p99 {pct(latencies, 99):7.2f} ms")


# ---------------------------------------------------------------- direct (stdio JSON-RPC) ----
class DirectWorker:
    """A worker driven over stdio JSON-RPC, as codex-proxy drives it, without the proxy."""

    def __init__(self, env, command=None):
        self.env = env
        self.command = command or [os.path.join(BIN, "codex-fake-worker"), "app-server"]

    async def start(self):
        started = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            *self.command, env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=64 * 1024 * 1024)
        self.next_id = 0
        self.pending = {}
        self.turns = {}
        self.reader = asyncio.create_task(self.read())
        await self.call("initialize", {"clientInfo": {"name": "bench", "version": "1"}})
        self.send({"method": "initialized"})
        self.handshake_s = time.perf_counter() - started

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())

    async def call(self, method, params):
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        self.send({"id": self.next_id, "method": method, "params": params})
        return await future

    async def read(self):
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "id" in message and message["id"] in self.pending:
                self.pending.pop(message["id"]).set_result(message.get("result"))
            elif message.get("method") in ("item/agentMessage/delta", "turn/completed"):
                turn = self.turns.get(message["params"].get("threadId"))
                if turn:
                    turn.put_nowait(message["method"])

    async def start_thread(self):
        return (await self.call("thread/start", {"cwd": "/", "approvalPolicy": "never", "sandbox": "read-only",
                                                 "ephemeral": True, "model": "gpt-5"}))["thread"]["id"]

    async def turn(self, text="hello", thread=None):
        """One turn, on a new thread unless `thread` is given. Returns (total, to first delta from
        turn/start, thread/start time) in seconds."""
        started = time.perf_counter()
        thread = thread or await self.start_thread()
        thread_started = time.perf_counter()
        events = asyncio.Queue()
        self.turns[thread] = events
        await self.call("turn/start", {"threadId": thread, "input": [{"type": "text", "text": text}]})
        first = None
        while (event := await events.get()) != "turn/completed":
            first = first or time.perf_counter()
        del self.turns[thread]
        return (time.perf_counter() - started, (first or time.perf_counter()) - thread_started,
                thread_started - started)

    async def stop(self):
        self.proc.stdin.close()
        await self.proc.wait()
        self.reader.cancel()


# ---------------------------------------------------------------- through the proxy (HTTP) ---
async def http_request(reader, writer, body, port):
    payload = json.dumps(body).encode()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % (port, len(payload)) + payload)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = None
    chunked = False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
            chunked = True
    if not chunked:
        return await reader.readexactly(length), None
    first_content = None
    data = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return data, first_content
        data += chunk[:-2]
        if first_content is None and b'"content":"' in chunk and b'"content":""' not in chunk:
            first_content = time.perf_counter()


async def proxy_load(port, requests, concurrency, body):
    latencies, ttfc = [], []
    queue = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(None)

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            _, first = await http_request(reader, writer, body, port)
            latencies.append(time.perf_counter() - started)
            if first:
                ttfc.append(first - started)
        writer.close()

    wall = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, ttfc, time.perf_counter() - wall


def start_proxy(env, ready_timeout=10):
    log = tempfile.NamedTemporaryFile(prefix="bench-proxy-", suffix=".log", delete=False)
    full = pass_fake_script({**os.environ, "PORT": "0", "PROXY_OPS_PORT": "0", "CODEX_BIN": os.path.join(BIN, "codex-fake-worker"),
                             **env})
    # The worker's threads start in the proxy's working directory: an empty one, as in a pod (not
    # this repository, where codex would look for git and AGENTS.md on every thread).
    workdir = tempfile.mkdtemp(prefix="bench-proxy-cwd-")
    proc = subprocess.Popen([os.path.join(BIN, "codex-proxy")], stdout=log, stderr=subprocess.DEVNULL, env=full,
                            cwd=workdir)
    proc.log_path = log.name
    deadline = time.time() + ready_timeout
    while time.time() < deadline:
        ports = [json.loads(l) for l in open(log.name) if '"listening"' in l]
        if ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]['ops_port']}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return proc, ports[0]["port"]
            except OSError:
                pass
        time.sleep(0.02)
    proc.kill()
    raise SystemExit("codex-proxy did not become ready")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def open_streams(port, count):
    body = json.dumps({**BODY, "stream": True}).encode()
    connections = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        connections.append((reader, writer))
    for reader, _ in connections:  # every stream has started: headers and the role chunk arrived
        await reader.readuntil(b'"role":"assistant"')
    return connections


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--token-delay-ms", type=int, default=2)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    worker_env = {"FAKE_CODEX_REPLY": REPLY, "FAKE_CODEX_TOKEN_DELAY_MS": str(args.token_delay_ms)}
    print(f"codex-proxy benchmark: {args.requests} requests, concurrency {args.concurrency}, "
          f"reply of {len(REPLY.split())} tokens, token delay {args.token_delay_ms} ms, {os.cpu_count()} cores")

    direct = DirectWorker({**os.environ, **worker_env})
    await direct.start()
    results = []
    wall = time.perf_counter()
    sem = asyncio.Semaphore(args.concurrency)

    async def one():
        async with sem:
            results.append(await direct.turn())

    await asyncio.gather(*(one() for _ in range(args.requests)))
    wall = time.perf_counter() - wall
    await direct.stop()
    print("\n1. turn latency")
    summary("straight to the worker", [r[0] for r in results], wall)

    proxy, port = start_proxy({**worker_env, "WORKER_MAX_CONCURRENCY": str(max(args.concurrency, 1))})
    try:
        latencies, _, wall_p = await proxy_load(port, args.requests, args.concurrency, BODY)
        summary("through the proxy (JSON)", latencies, wall_p)
        _, ttfc, _ = await proxy_load(port, args.requests // 2, args.concurrency, {**BODY, "stream": True})
        print("\n2. SSE time to first content chunk")
        direct_first = [r[1] for r in results]
        print(f"  straight to the worker       p50 {pct(direct_first, 50):7.2f} ms   p95 {pct(direct_first, 95):7.2f} ms")
        print(f"  through the proxy            p50 {pct(ttfc, 50):7.2f} ms   p95 {pct(ttfc, 95):7.2f} ms")
        print(f"  overhead (p50)               {pct(ttfc, 50) - pct(direct_first, 50):7.2f} ms "
              "(includes thread/start, which the direct figure excludes)")
    finally:
        proxy.kill()
        proxy.wait()

    proxy, port = start_proxy({"FAKE_CODEX_HANG_TURNS": "all", "WORKER_MAX_CONCURRENCY": str(args.streams),
                               "PROXY_QUEUE_MAX": "0",
                               "PROXY_SSE_KEEPALIVE_MS": "600000", "WORKER_REQUEST_TIMEOUT_MS": "600000"})
    try:
        idle = rss_kib(proxy.pid)
        started = time.perf_counter()
        connections = await open_streams(port, args.streams)
        opened = time.perf_counter() - started
        busy = rss_kib(proxy.pid)
        print(f"\n3. memory\n  proxy RSS idle               {idle / 1024:7.1f} MiB")
        print(f"  with {args.streams} open streams        {busy / 1024:7.1f} MiB "
              f"({(busy - idle) / args.streams:.1f} KiB per stream; all opened in {opened:.1f} s)")
        for _, writer in connections:
            writer.close()
    finally:
        proxy.kill()
        proxy.wait()


if __name__ == "__main__":
    asyncio.run(main())
