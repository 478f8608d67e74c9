"""Load under chaos, shared by the chaos tests (tests/integration/test_chaos.py) and their bench
(bench/bench_chaos.py): many concurrent clients on raw HTTP/1.1 (half keep their connection, half
open one per request; half stream), every answer classified, and the process gauges (fds, RSS,
threads) that must come back after the load.

An answer is one of:
  ok         a complete 200: a chat.completion with a finish_reason, or an SSE stream whose last
             chunk before `[DONE]` carries a finish_reason
  retryable  the OpenAI error envelope with 429/502/503/504, or an SSE stream that ends with an
             error event marked retryable, then `[DONE]`
  hang       no complete answer within the client's timeout
  bad        anything else (a torn body, a 500, a stream without `[DONE]`, a reset connection…)
"""
import asyncio
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field

RETRYABLE_STATUS = (429, 502, 503, 504)


@dataclass
class Outcome:
    kind: str          # ok | retryable | hang | bad
    status: int        # HTTP status, 0 when none arrived
    stream: bool
    seconds: float
    detail: str = ""   # for `bad` and `hang`: what was wrong
    code: str = ""     # the error envelope's code, when there is one


@dataclass
class LoadReport:
    outcomes: list = field(default_factory=list)

    def count(self, kind, stream=None):
        return sum(1 for o in self.outcomes if o.kind == kind and (stream is None or o.stream == stream))

    def by_kind(self):
        out = {}
        for o in self.outcomes:
            key = f"{o.kind}:{o.status}" + (f":{o.code}" if o.code else "")
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def problems(self, limit=10):
        return [f"{o.kind} {o.status} stream={o.stream} after {o.seconds:.1f}s: {o.detail}"
                for o in self.outcomes if o.kind in ("bad", "hang")][:limit]

    def longest(self):
        return max((o.seconds for o in self.outcomes), default=0.0)


def sse_events(body):
    return [line[6:] for line in body.decode("utf-8", "replace").splitlines() if line.startswith("data: ")]


def classify(status, body, stream, seconds):
    """The Outcome of one complete HTTP answer."""
    def bad(why, code=""):
        return Outcome("bad", status, stream, seconds, why[:300], code)
    if status == 200 and stream:
        events = sse_events(body)
        if not events or events[-1] != "[DONE]":
            return bad(f"stream without [DONE]: {body[-200:]!r}")
        try:
            last = json.loads(events[-2]) if len(events) >= 2 else {}
        except ValueError:
            return bad(f"unparsable event {events[-2][:100]!r}")
        if "error" in last:
            error = last["error"]
            if error.get("retryable") is True and error.get("message"):
                return Outcome("retryable", status, stream, seconds, code=str(error.get("code", "")))
            return bad(f"non-retryable error event {error}", str(error.get("code", "")))
        choices = last.get("choices") or [{}]
        if not any(json.loads(e).get("choices", [{}])[0].get("finish_reason") for e in events[:-1]
                   if e.startswith("{") and json.loads(e).get("choices")):
            return bad(f"stream ended without a finish_reason: {choices}")
        return Outcome("ok", status, stream, seconds)
    try:
        document = json.loads(body)
    except ValueError:
        return bad(f"unparsable body {body[:200]!r}")
    if status == 200:
        try:
            choice = document["choices"][0]
            if choice["finish_reason"] and choice["message"]["role"] == "assistant":
                return Outcome("ok", status, stream, seconds)
        except (KeyError, IndexError, TypeError):
            pass
        return bad(f"incomplete completion {body[:200]!r}")
    error = document.get("error") if isinstance(document, dict) else None
    if status in RETRYABLE_STATUS and isinstance(error, dict) and error.get("message") and error.get("type"):
        return Outcome("retryable", status, stream, seconds, code=str(error.get("code", "")))
    return bad(f"{status} {body[:200]!r}", str((error or {}).get("code", "")))


async def _read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip().lower()
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return status, headers, body


async def request(port, body, stream, timeout, connection=None):
    """One chat completion; returns (Outcome, the connection to reuse or None)."""
    payload = json.dumps({**body, "stream": stream}).encode()
    started = time.monotonic()
    try:
        if connection is None:
            connection = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        reader, writer = connection
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        await writer.drain()
        status, headers, answer = await asyncio.wait_for(_read_answer(reader), timeout)
    except asyncio.TimeoutError:
        _close(connection)
        return Outcome("hang", 0, stream, time.monotonic() - started, f"no answer in {timeout}s"), None
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
        _close(connection)
        return Outcome("bad", 0, stream, time.monotonic() - started, f"{type(error).__name__}: {error}"), None
    outcome = classify(status, answer, stream, time.monotonic() - started)
    if headers.get(b"connection") == b"close":
        _close(connection)
        connection = None
    return outcome, connection


def _close(connection):
    if connection is not None:
        try:
            connection[1].close()
        except OSError:
            pass


async def run_load(port, clients, seconds, prompt, timeout, backoff=(0.05, 0.3)):
    """`clients` concurrent clients for `seconds`: even-numbered ones stream, every other pair keeps
    its connection. `prompt(rng)` gives each request's user message. After a retryable answer a
    client waits a jittered `backoff` (as the OpenAI SDKs do) before its next request."""
    report = LoadReport()
    deadline = time.monotonic() + seconds

    async def client(index):
        rng = random.Random(index)
        stream, keep = index % 2 == 0, (index // 2) % 2 == 0
        connection = None
        while time.monotonic() < deadline:
            body = {"model": "gpt-5", "messages": [{"role": "user", "content": prompt(rng)}]}
            outcome, connection = await request(port, body, stream, timeout, connection if keep else None)
            report.outcomes.append(outcome)
            if not keep:
                _close(connection)
                connection = None
            if outcome.kind != "ok":
                await asyncio.sleep(rng.uniform(*backoff))
        _close(connection)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return report


# --- the process's gauges ---------------------------------------------------------------------
def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def _status_number(pid, field):
    """A number of /proc/<pid>/status, e.g. VmRSS (KiB) or Threads; 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return _status_number(pid, "VmRSS")


def threads(pid):
    return _status_number(pid, "Threads")


def tree_total(pid, gauge):
    """`gauge` (rss_kib, fds, threads) summed over a process and its descendants (the npm `codex`
    launcher runs the native binary)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += gauge(current)
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


class WorkerKiller(threading.Thread):
    """SIGKILLs the proxy's current worker (its pid from /readyz) every `every` seconds."""

    def __init__(self, proxy, every):
        super().__init__(daemon=True)
        self.proxy, self.every = proxy, every
        self.kills = 0
        self._stopping = threading.Event()

    def run(self):
        while not self._stopping.wait(self.every):
            try:
                pid = self.proxy.readyz()[1]["worker"].get("pid")
            except (OSError, ValueError, KeyError):
                continue
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass

    def stop(self):
        self._stopping.set()
        self.join(10)
