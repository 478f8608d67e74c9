#!/usr/bin/env python3
"""What the model receives, and what structured outputs cost (not a test).

  python3 bench/bench_faithful.py [--turns 40]

The real `codex app-server` against the scripted model (tests/model-stub, its own process, logging
every request). For a two-word prompt, with and without a one-word system message, prints the
bytes of the Responses API request the model got, the bytes of what the model reads in it
(`instructions`, `input`, `tools`, `text`) and the input tokens the model stub bills (those bytes
/ 4):
  before — codex's defaults, as codex-proxy drove it until issue 26: no baseInstructions without
           a system message, permissions and environment messages, the request_user_input tool;
  after  — through codex-proxy as it is now.
Then the latency of a plain turn and of a structured-output turn (json_schema, and json_object)
through the proxy, one at a time.
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "model-stub"))
from bench_proxy import DirectWorker, pct, proxy_load, start_proxy  # noqa: E402
from bench_real_worker import worker_command  # noqa: E402
from model_stub import prompt_bytes  # noqa: E402
from real_worker import real_worker_env, start_stub_process  # noqa: E402

PROMPT = "Say hello."
SYSTEM = "Brief."
SCHEMA = {"type": "object", "properties": {"greeting": {"type": "string"}, "words": {"type": "integer"}},
          "required": ["greeting", "words"], "additionalProperties": False}
# What codex-proxy now passes so that codex adds nothing of its own (proxy/worker/codex_options.cpp).
FAITHFUL = ("include_permissions_instructions=", "include_environment_context=",
            "tools.experimental_request_user_input=", "model_reasoning_summary=")


def last_request(log_path):
    with open(log_path) as log:
        return [json.loads(line) for line in log if '"path": "/v1/responses"' in line][-1]["body"]


def show(label, body):
    visible = prompt_bytes(body)
    print(f"  {label:<44} request {len(json.dumps(body)):6d} B   model reads {visible:6d} B   "
          f"input tokens {max(1, visible // 4):5d}")


def without_faithful_defaults(command):
    """The worker's command line less the settings codex-proxy now adds (codex's defaults)."""
    out = []
    skip = False
    for i, arg in enumerate(command):
        if skip:
            skip = False
            continue
        if arg == "-c" and i + 1 < len(command) and command[i + 1].startswith(FAITHFUL):
            skip = True
            continue
        out.append(arg)
    return out


async def before(command, env, log_path):
    worker = DirectWorker(env, command=command)
    await worker.start()
    try:
        await worker.turn(PROMPT)
        show("before: no system message", last_request(log_path))
        thread = (await worker.call("thread/start", {"cwd": "/", "approvalPolicy": "never", "sandbox": "read-only",
                                                     "ephemeral": True, "model": "gpt-5",
                                                     "baseInstructions": SYSTEM}))["thread"]["id"]
        await worker.turn(PROMPT, thread=thread)
        show("before: system message", last_request(log_path))
    finally:
        await worker.stop()  # closes its stdin: the app server and its child exit


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=40)
    args = parser.parse_args()
    log = tempfile.NamedTemporaryFile(prefix="bench-model-", suffix=".jsonl", delete=False)
    stub, base_url = start_stub_process(log_path=log.name)
    home = tempfile.TemporaryDirectory(prefix="bench-codex-home-")
    env = {**real_worker_env(base_url, home.name), "CODEX_HOME": home.name}
    proxy, port = start_proxy(env, ready_timeout=60)
    try:
        print(f"what the model receives for {PROMPT!r} (system message {SYSTEM!r}); tokens = bytes / 4, "
              "as the model stub bills them")
        # A CODEX_HOME of its own: two app servers must not share one.
        direct_home = tempfile.TemporaryDirectory(prefix="bench-codex-home-")
        await before(without_faithful_defaults(worker_command(proxy)),
                     {**os.environ, **env, "CODEX_HOME": direct_home.name, "HOME": direct_home.name}, log.name)
        plain = {"model": "gpt-5", "messages": [{"role": "user", "content": PROMPT}]}
        await proxy_load(port, 1, 1, plain)
        show("after: no system message", last_request(log.name))
        await proxy_load(port, 1, 1, {**plain, "messages": [{"role": "system", "content": SYSTEM}, *plain["messages"]]})
        show("after: system message", last_request(log.name))

        print(f"\nlatency through the proxy, {args.turns} turns one at a time (the model answers at once)")
        shapes = [("plain turn", plain),
                  ("json_schema turn", {**plain, "response_format": {
                      "type": "json_schema", "json_schema": {"name": "g", "schema": SCHEMA, "strict": True}}}),
                  ("json_object turn", {**plain, "messages": [{"role": "user", "content": "Say hello in JSON."}],
                                        "response_format": {"type": "json_object"}})]
        for label, body in shapes:
            for stream in (False, True):
                latencies, _, _ = await proxy_load(port, args.turns, 1, {**body, "stream": stream})
                print(f"  {label + (' (SSE)' if stream else ''):<28} p50 {pct(latencies, 50):7.1f} ms   "
                      f"p95 {pct(latencies, 95):7.1f} ms")
    finally:
        proxy.kill()
        proxy.wait()
        stub.kill()
        stub.wait()
        os.unlink(log.name)


if __name__ == "__main__":
    asyncio.run(main())
