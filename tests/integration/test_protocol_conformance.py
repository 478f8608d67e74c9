"""Protocol conformance against the pinned codex's own JSON Schema (`codex app-server
generate-json-schema`): every frame codex-proxy sends its worker, and every frame codex-fake-worker
emits, validates. A tap (tests/pylib/rpc_tap.py) records the traffic of real requests: answered,
streamed, failed by the model, timed out and interrupted, abandoned by the client."""
import json
import os
import socket
import tempfile
import time
import unittest

from harness import FAKE_WORKER, REAL_CODEX, ProxyTestCase, wait_until
from codex_schema import ProtocolValidator, generate_schema  # noqa: E402  (tests/pylib)
from rpc_tap import read_tap, tap_wrapper  # noqa: E402

SCHEMA_DIR = None


def setUpModule():
    global SCHEMA_DIR
    SCHEMA_DIR = tempfile.mkdtemp(prefix="cxp-codex-schema-")
    generate_schema(SCHEMA_DIR)


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
RAW_EVENTS = ("rawResponseItem/completed", "rawResponse/completed")


def post(proxy, content, stream=False, timeout=30, **extra):
    body = json.dumps({"messages": [{"role": "system", "content": "be brief"},
                                    {"role": "user", "content": content}], "stream": stream, **extra})
    return proxy.request("POST", "/v1/chat/completions", body=body,
                         headers={"Content-Type": "application/json"}, timeout=timeout)


def abandon(proxy, content, until):
    """Sends a streaming request and leaves once the answer started and `until()` holds."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        body = json.dumps({"messages": [{"role": "user", "content": content}], "stream": True}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.recv(4096)
        wait_until(until, 10, message="the abandoned turn to reach the model")


class ConformanceTest(ProxyTestCase):
    def tapped(self, worker):
        work = tempfile.TemporaryDirectory(prefix="cxp-tap-")
        self.addCleanup(work.cleanup)
        log = os.path.join(work.name, "rpc.jsonl")
        return tap_wrapper(work.name, log, worker), log

    def assert_conforms(self, log, sender, minimum_frames, undocumented=()):
        frames = read_tap(log)
        sent = [f for d, f in frames if (d == "to_worker") == (sender == "proxy")]
        self.assertGreaterEqual(len(sent), minimum_frames, f"too little {sender} traffic recorded")
        problems = ProtocolValidator(SCHEMA_DIR).validate(frames, sender, undocumented)
        self.assertEqual(problems, [], "\n".join(problems[:20]))
        return frames

    def test_every_frame_the_proxy_sends_the_real_worker_validates(self):
        wrapper, log = self.tapped(REAL_CODEX)
        proxy = self.start_real_proxy(env={"CODEX_BIN": wrapper, "WORKER_REQUEST_TIMEOUT_MS": "1500"})
        self.assertEqual(post(proxy, "[[reply:one two]]")[0], 200)
        self.assertEqual(post(proxy, "[[reply:one two]]", stream=True)[0], 200)
        self.assertEqual(post(proxy, "[[fail:server_error:broken]]")[0], 502)
        self.assertEqual(post(proxy, "[[hang]]")[0], 504)
        abandon(proxy, "[[hang]]", until=lambda: len(self.model.requests()) == 5)
        # Function calls (answered as not run), a conversation injected as items, request_user_input.
        status, _, raw = post(proxy, '[[call:get_weather:{"city":"Paris"}]]', tools=TOOLS)
        self.assertEqual(status, 200, raw)
        call = json.loads(raw)["choices"][0]["message"]["tool_calls"][0]
        history = json.dumps({"messages": [{"role": "user", "content": "weather?"},
                                           {"role": "assistant", "content": None, "tool_calls": [call]},
                                           {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}],
                              "tools": TOOLS})
        self.assertEqual(proxy.request("POST", "/v1/chat/completions", body=history,
                                       headers={"Content-Type": "application/json"}, timeout=30)[0], 200)
        self.assertEqual(post(proxy, '[[call:request_user_input:{"questions":[]}]]')[0], 200)
        # The turn's parameters: an output schema, effort, summary, an image (and the reasoning
        # notifications they bring back).
        png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
               "hQGAhKmMIQAAAABJRU5ErkJggg==")
        schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                  "additionalProperties": False}
        parameters = {"input": [{"role": "user", "content": [
                          {"type": "input_text", "text": "[[reason:Hmm.]] look"},
                          {"type": "input_image", "image_url": png, "detail": "high"}]}],
                      "reasoning": {"effort": "low", "summary": "auto"},
                      "text": {"format": {"type": "json_schema", "name": "a", "schema": schema}}}
        self.assertEqual(proxy.request("POST", "/v1/responses", body=json.dumps(parameters),
                                       headers={"Content-Type": "application/json"}, timeout=30)[0], 200)
        wait_until(lambda: len(self.model.events("client_disconnected")) >= 2, 10, message="both turns interrupted")
        frames = self.assert_conforms(log, "proxy", minimum_frames=20)
        answered = [f for d, f in frames if d == "to_worker" and "id" in f and "method" not in f]
        self.assertTrue(answered, "the proxy answered the worker's requests (tool calls, user input)")
        methods = [f.get("method") for d, f in frames if d == "to_worker"]
        for method in ("initialize", "initialized", "thread/start", "turn/start", "turn/interrupt",
                       "thread/inject_items", "thread/unsubscribe"):
            self.assertIn(method, methods)
        [turn] = [f["params"] for d, f in frames if d == "to_worker" and f.get("method") == "turn/start"
                  and "outputSchema" in f.get("params", {})]
        self.assertEqual((turn["effort"], turn["summary"], turn["input"][1]["type"]), ("low", "auto", "image"))
        # Every thread the proxy started it let go of at the end of its request (else the worker
        # keeps each one loaded for its whole life).
        started = {f["id"] for d, f in frames if d == "to_worker" and f.get("method") == "thread/start"}
        threads = {f["result"]["thread"]["id"] for d, f in frames
                   if d == "from_worker" and f.get("id") in started and "result" in f}

        def unsubscribed():
            return {f["params"]["threadId"] for d, f in read_tap(log)
                    if d == "to_worker" and f.get("method") == "thread/unsubscribe"}
        wait_until(lambda: unsubscribed() >= threads, 10, message="every thread unsubscribed")
        self.assertEqual(len(threads), len(started))
        # The handshake comes first, and nothing is sent before `initialize` is answered.
        self.assertEqual(methods[:2], ["initialize", "initialized"])
        # The real worker's own frames validate too (a check of the validator itself) — but for the
        # raw response events (thread/start experimentalRawEvents), which its schema does not
        # describe and the proxy relies on to know when a response with function calls is over.
        # Should a codex upgrade drop them, this says so (the proxy then waits tool_call_settle).
        self.assert_conforms(log, "worker", minimum_frames=20, undocumented=RAW_EVENTS)
        seen = {f.get("method") for d, f in frames if d == "from_worker"}
        self.assertLessEqual(set(RAW_EVENTS), seen)

    def test_every_frame_the_fake_worker_emits_validates(self):
        for script in ({}, {"FAKE_CODEX_RETRY_ERRORS": "2"}, {"FAKE_CODEX_TURN_FAIL": "the model is on fire"}):
            with self.subTest(script=script):
                wrapper, log = self.tapped(FAKE_WORKER)
                proxy = self.start_proxy(codex_bin=wrapper, env={"FAKE_CODEX_REPLY": "a b c",
                                                                  "WORKER_REQUEST_TIMEOUT_MS": "1000", **script})
                proxy.wait_ready()
                status = post(proxy, "hello")[0]
                self.assertEqual(status, 502 if "FAKE_CODEX_TURN_FAIL" in script else 200)
                post(proxy, "hello", stream=True)
                proxy.close()
                self.assert_conforms(log, "worker", minimum_frames=10)
                self.assert_conforms(log, "proxy", minimum_frames=5)

    def test_the_fake_plays_the_real_servers_other_notifications_which_the_proxy_tolerates(self):
        wrapper, log = self.tapped(FAKE_WORKER)
        proxy = self.start_proxy(codex_bin=wrapper, env={"FAKE_CODEX_REPLY": "fine", "FAKE_CODEX_RETRY_ERRORS": "1"})
        proxy.wait_ready()
        status, _, raw = post(proxy, "hello")
        self.assertEqual(status, 200, raw)  # an `error` with willRetry is not the turn's end
        self.assertEqual(json.loads(raw)["choices"][0]["message"]["content"], "fine")
        methods = {f.get("method") for d, f in read_tap(log) if d == "from_worker"}
        self.assertLessEqual({"warning", "thread/status/changed", "error", "turn/started", "item/started"}, methods)

    def test_a_failed_turn_of_the_fake_is_a_502_model_error(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_TURN_FAIL": "the model is on fire"})
        proxy.wait_ready()
        status, _, raw = post(proxy, "hello")
        self.assertEqual(status, 502)
        error = json.loads(raw)["error"]
        self.assertEqual(error["code"], "model_error")
        self.assertIn("the model is on fire", error["message"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
