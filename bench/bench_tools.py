#!/usr/bin/env python3
"""Tool-call round trips and endpoint overhead through codex-proxy with the real worker (not a test).

  python3 bench/bench_tools.py [--rounds 40]

(bench/run.sh tools). A round trip is what a client does with a function: request 1 (the model calls get_weather) and
request 2 (the conversation with the tool's result; the model answers). Measured streaming, one at a
time: time to the tool call (request 1, first tool_calls chunk), time to the answer's first content
(request 2), and the whole round trip. Then the same one-line prompt through /v1/chat/completions
and /v1/responses (total latency, JSON), to show what the second endpoint costs.
The model is tests/model-stub answering at once; the worker's defaults are codex-proxy's.
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
from bench_proxy import pct, start_proxy  # noqa: E402
from bench_real_worker import start_stub  # noqa: E402
from real_worker import real_worker_env  # noqa: E402

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "current weather",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}]
ASK = 'What is the weather in Paris? [[call:get_weather:{"city":"Paris"}]]'


async def post(port, path, body):
    """Streams a POST; returns (total seconds, seconds to the first data line matching a marker)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = json.dumps(body).encode()
    started = time.perf_counter()
    writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n" % (path.encode(), len(payload)) + payload)
    await writer.drain()
    first = None
    data = b""
    while chunk := await reader.read(65536):
        data += chunk
        if first is None and (b'"tool_calls"' in data or b'"content":"T' in data or b"output_text.delta" in data):
            first = time.perf_counter() - started
    writer.close()
    return time.perf_counter() - started, first, data


async def round_trip(port):
    messages = [{"role": "user", "content": ASK}]
    total1, first1, data = await post(port, "/v1/chat/completions",
                                      {"model": "gpt-5", "messages": messages, "tools": TOOLS, "stream": True})
    call_id = None
    for line in data.decode().splitlines():
        if line.startswith("data: {") and '"tool_calls":[' in line:
            chunk = json.loads(line[6:])
            for call in (chunk["choices"][0]["delta"].get("tool_calls") or []) if chunk.get("choices") else []:
                call_id = call.get("id") or call_id
    if call_id is None:
        raise SystemExit(f"no tool call in request 1: {data[-400:]!r}")
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call_id, "type": "function",
                      "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
                 {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"}]
    total2, first2, _ = await post(port, "/v1/chat/completions",
                                   {"model": "gpt-5", "messages": messages, "tools": TOOLS, "stream": True})
    return first1, first2, total1 + total2


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    stub, base_url = start_stub()
    home = tempfile.TemporaryDirectory(prefix="bench-codex-home-")
    proxy, port = start_proxy(real_worker_env(base_url, home.name), ready_timeout=60)
    try:
        await round_trip(port)  # warm-up
        results = [await round_trip(port) for _ in range(args.rounds)]
        print(f"tool-call round trips ({args.rounds}, one at a time, streaming), through codex-proxy:")
        for name, index in (("request 1 → first tool_calls chunk", 0), ("request 2 → first answer content", 1),
                            ("whole round trip", 2)):
            values = [r[index] for r in results]
            print(f"  {name:<38} p50 {pct(values, 50):7.1f} ms   p95 {pct(values, 95):7.1f} ms")
        body = {"model": "gpt-5", "messages": [{"role": "user", "content": "[[reply:one two three four]]"}]}
        responses = {"model": "gpt-5", "input": "[[reply:one two three four]]"}
        for name, path, payload in (("/v1/chat/completions", "/v1/chat/completions", body),
                                    ("/v1/responses", "/v1/responses", responses)):
            totals = []
            for _ in range(args.rounds):
                total, _, data = await post(port, path, payload)
                if b" 200 OK" not in data[:20]:
                    print(f"  {name}: {data[:120]!r}")
                    break
                totals.append(total)
            if totals:
                print(f"  {name:<38} p50 {pct(totals, 50):7.1f} ms   p95 {pct(totals, 95):7.1f} ms  (JSON)")
    finally:
        proxy.kill()
        proxy.wait()
        stub.kill()
        home.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
