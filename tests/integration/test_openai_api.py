"""The OpenAI-compatible API over raw HTTP (the SDK tests are in node), with the real
`codex app-server` as the worker and the scripted model (tests/model-stub) in place of the OpenAI
API: markers such as [[reply:…]] in the prompt script what the model answers, and the stub's request
log shows what reached the model. codex-fake-worker plays only worker faults the real one cannot
show (a slow start, a crash mid-turn, a turn/start answered late)."""
import http.client
import json
import os
import signal
import socket
import tempfile
import time
import unittest

from harness import MODEL_KEY, REAL_CODEX, ProxyTestCase, last_user_text, message_text, messages_of, wait_until
from rpc_tap import read_tap, tap_wrapper  # noqa: E402  (tests/pylib)


def chat_body(content="hi", **extra):
    return json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": content}], **extra})


def post(proxy, body, headers=None, timeout=30):
    return proxy.request("POST", "/v1/chat/completions", body=body,
                         headers={"Content-Type": "application/json", **(headers or {})}, timeout=timeout)


def sse_events(raw):
    events = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                events.append(line[6:])
    return events


def assert_stream_ends_with_error(test, body, code):
    """An SSE body that ends with an error event naming `code` (retryable), then [DONE]."""
    events = sse_events(body)
    test.assertEqual(events[-1], "[DONE]")
    error = json.loads(events[-2])["error"]
    test.assertEqual(error["code"], code)
    test.assertTrue(error["retryable"])


def streamed_text(body):
    return "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in sse_events(body)[:-1] if json.loads(e).get("choices"))


class ChatCompletionTest(ProxyTestCase):
    def test_non_streaming_completion_with_usage_and_request_id(self):
        proxy = self.start_real_proxy()
        status, headers, body = post(proxy, chat_body("say it [[reply:four words of reply]]"),
                                     headers={"X-Request-Id": "client-id-1"})
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["X-Request-Id"], "client-id-1")
        completion = json.loads(body)
        self.assertEqual(completion["object"], "chat.completion")
        self.assertEqual(completion["id"], "chatcmpl-client-id-1")
        self.assertEqual(completion["choices"][0]["message"],
                         {"role": "assistant", "content": "four words of reply", "refusal": None})
        self.assertEqual(completion["choices"][0]["finish_reason"], "stop")
        self.assertEqual(completion["usage"]["completion_tokens"], 4)  # the model's output_tokens
        self.assertGreater(completion["usage"]["prompt_tokens"], 0)
        # The worker asked the configured provider with the model key and the served model.
        [request] = self.model.requests()
        self.assertEqual(request["headers"]["authorization"], f"Bearer {MODEL_KEY}")
        self.assertEqual(request["body"]["model"], "gpt-5")
        self.assertTrue(request["body"]["stream"])
        logged = proxy.find_event("request_completed")
        self.assertEqual(logged["request_id"], "client-id-1")
        self.assertEqual(logged["finish_reason"], "stop")
        self.assertNotIn("four words of reply", proxy.raw_log())  # never bodies
        self.assertNotIn(MODEL_KEY, proxy.raw_log())

    def test_streaming_sends_role_deltas_finish_usage_and_done(self):
        proxy = self.start_real_proxy()
        status, headers, body = post(proxy, chat_body("[[reply:a b c]]", stream=True,
                                                      stream_options={"include_usage": True}))
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/event-stream"))
        events = sse_events(body)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        self.assertEqual(streamed_text(body), "a b c")
        self.assertGreaterEqual(len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]), 1)
        finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        self.assertEqual(finish[-1]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 3)

    def test_silent_streams_get_keepalive_comments(self):
        proxy = self.start_real_proxy(env={"PROXY_SSE_KEEPALIVE_MS": "200"})
        status, _, body = post(proxy, chat_body("[[slow:700]][[reply:slow reply]]", stream=True))
        self.assertEqual(status, 200)
        self.assertIn(b": keepalive\n\n", body)
        self.assertTrue(body.endswith(b"data: [DONE]\n\n"))
        self.assertEqual(streamed_text(body), "slow reply")

    def test_the_conversation_and_instructions_reach_the_model_as_native_items(self):
        proxy = self.start_real_proxy()
        messages = [{"role": "system", "content": "be brief"}, {"role": "developer", "content": "answer in English"},
                    {"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_7", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
                    {"role": "tool", "tool_call_id": "call_7", "content": "sunny"},
                    {"role": "user", "content": [{"type": "text", "text": "three"}]}]
        status, _, body = post(proxy, json.dumps({"messages": messages}))
        self.assertEqual(status, 200, body)
        [request] = self.model.requests()
        # system + developer → the thread's base instructions: codex's first developer message.
        self.assertEqual(messages_of(request["body"], "developer")[0], "be brief\n\nanswer in English")
        # The conversation as the model's own items, not as prose.
        items = [i for i in request["body"]["input"]
                 if i.get("type") in ("function_call", "function_call_output")
                 or (i.get("type") == "message" and i.get("role") in ("user", "assistant")
                     and not message_text(i).startswith("<"))]
        self.assertEqual([(i["type"], i.get("role")) for i in items],
                         [("message", "user"), ("message", "assistant"), ("function_call", None),
                          ("function_call_output", None), ("message", "user")])
        self.assertEqual([message_text(i) for i in items if i["type"] == "message"], ["one", "two", "three"])
        self.assertEqual((items[2]["call_id"], items[2]["name"], items[2]["arguments"]),
                         ("call_7", "get_weather", '{"city":"Oslo"}'))
        self.assertEqual((items[3]["call_id"], items[3]["output"]), ("call_7", "sunny"))
        self.assertEqual(json.loads(body)["choices"][0]["message"]["content"], "Hello from the model stub.")

    def test_models_lists_the_configured_model_and_aliases_which_requests_may_use(self):
        proxy = self.start_real_proxy(env={"CODEX_MODEL": "gpt-5-codex", "PROXY_MODEL_ALIASES": "gpt-4o, codex ,"})
        status, body = proxy.get_json("/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "list")
        self.assertEqual([m["id"] for m in body["data"]], ["gpt-5-codex", "gpt-4o", "codex"])
        status, _, raw = post(proxy, chat_body(model="gpt-4o"))
        self.assertEqual(status, 200, raw)
        self.assertEqual(json.loads(raw)["model"], "gpt-4o")
        self.assertEqual(self.model.requests()[-1]["body"]["model"], "gpt-5-codex")  # what the worker runs
        status, _, _ = post(proxy, chat_body(model="gpt-5"))
        self.assertEqual(status, 404)


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "current weather",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "get_time", "description": "local time",
                                            "parameters": {"type": "object", "properties": {}}}}]
CALL = '[[call:get_weather:{"city":"Paris"}]]'


class ToolCallTest(ProxyTestCase):
    """The caller's functions are the model's own function tools (codex dynamic tools); its calls
    come back as OpenAI tool_calls and the turn ends there, without asking the model again."""

    def offered(self, request):
        return {t["name"]: t for t in request["body"]["tools"] if t.get("type") == "function"}

    def test_a_function_call_becomes_tool_calls_with_finish_reason_tool_calls(self):
        proxy = self.start_real_proxy()
        status, _, raw = post(proxy, chat_body(f"weather in Paris? {CALL}", tools=TOOLS))
        self.assertEqual(status, 200, raw)
        choice = json.loads(raw)["choices"][0]
        self.assertEqual(choice["finish_reason"], "tool_calls")
        self.assertIsNone(choice["message"]["content"])
        [call] = choice["message"]["tool_calls"]
        self.assertEqual(call["type"], "function")
        self.assertEqual(call["function"]["name"], "get_weather")
        self.assertEqual(json.loads(call["function"]["arguments"]), {"city": "Paris"})
        self.assertTrue(call["id"])
        # The model was offered the functions as real tools, with their schemas; and it was asked
        # once: the call was not answered with a made-up output.
        [request] = self.model.requests()
        offered = self.offered(request)
        self.assertEqual(offered["get_weather"]["parameters"]["properties"], {"city": {"type": "string"}})
        self.assertIn("get_time", offered)
        self.assertEqual(proxy.readyz()[1]["worker"]["restarts_total"], 0)

    def test_streamed_tool_calls_come_as_openai_streams_them(self):
        proxy = self.start_real_proxy()
        status, _, body = post(proxy, chat_body(f"Let me look. [[reply:Checking.]]{CALL}", tools=TOOLS, stream=True))
        self.assertEqual(status, 200)
        chunks = [json.loads(e) for e in sse_events(body)[:-1]]
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        self.assertEqual(content, "Checking.")
        deltas = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        self.assertEqual(deltas[0]["function"]["name"], "get_weather")
        self.assertTrue(deltas[0]["id"])
        arguments = "".join(d["function"].get("arguments", "") for d in deltas)
        self.assertEqual(json.loads(arguments), {"city": "Paris"})
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(len(self.model.requests()), 1)

    def test_parallel_calls_in_one_response_are_one_message(self):
        proxy = self.start_real_proxy()
        status, _, raw = post(proxy, chat_body(f"{CALL}[[call:get_time:{{}}]]", tools=TOOLS))
        self.assertEqual(status, 200, raw)
        calls = json.loads(raw)["choices"][0]["message"]["tool_calls"]
        self.assertEqual([c["function"]["name"] for c in calls], ["get_weather", "get_time"])
        self.assertEqual(len({c["id"] for c in calls}), 2)
        status, _, raw = post(proxy, chat_body(f"{CALL}[[call:get_time:{{}}]]", tools=TOOLS, parallel_tool_calls=False))
        self.assertEqual([c["function"]["name"] for c in json.loads(raw)["choices"][0]["message"]["tool_calls"]],
                         ["get_weather"])

    def test_the_round_trip_gives_the_model_its_call_and_the_result(self):
        proxy = self.start_real_proxy()
        messages = [{"role": "user", "content": f"weather? {CALL}"}]
        _, _, raw = post(proxy, json.dumps({"messages": messages, "tools": TOOLS}))
        message = json.loads(raw)["choices"][0]["message"]
        call = message["tool_calls"][0]
        messages += [message, {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21 C"}]
        status, _, raw = post(proxy, json.dumps({"messages": messages, "tools": TOOLS}))
        self.assertEqual(status, 200, raw)
        answer = json.loads(raw)["choices"][0]
        self.assertEqual(answer["finish_reason"], "stop")
        self.assertEqual(answer["message"]["content"], "The tool said: sunny, 21 C")
        items = self.model.requests()[-1]["body"]["input"]
        self.assertEqual([(i["type"], i["call_id"]) for i in items if "call_id" in i],
                         [("function_call", call["id"]), ("function_call_output", call["id"])])

    def test_tool_choice_none_offers_nothing_and_a_named_function_only_itself(self):
        proxy = self.start_real_proxy()
        post(proxy, chat_body("hi", tools=TOOLS, tool_choice="none"))
        self.assertEqual(set(self.offered(self.model.requests()[-1])), set())
        post(proxy, chat_body("hi", tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_time"}}))
        request = self.model.requests()[-1]
        self.assertEqual(set(self.offered(request)), {"get_time"})
        self.assertTrue(any("must call the function `get_time`" in t for t in messages_of(request["body"], "developer")))
        post(proxy, chat_body("hi", tools=TOOLS, tool_choice="required"))
        self.assertTrue(any("must call at least one" in t
                            for t in messages_of(self.model.requests()[-1]["body"], "developer")))

    def test_a_call_to_an_undeclared_function_never_reaches_the_client(self):
        proxy = self.start_real_proxy()
        status, _, raw = post(proxy, chat_body('[[call:delete_everything:{"really":true}]]', tools=TOOLS))
        self.assertEqual(status, 200, raw)
        choice = json.loads(raw)["choices"][0]
        self.assertNotIn("tool_calls", choice["message"])
        self.assertEqual(choice["finish_reason"], "stop")
        # The model heard that the call went nowhere (codex refuses functions it was not given).
        self.assertIn("delete_everything", choice["message"]["content"])

    def test_a_call_whose_arguments_are_not_json_never_reaches_the_client(self):
        proxy = self.start_real_proxy()
        status, _, raw = post(proxy, chat_body("[[call:get_weather:this is not json]]", tools=TOOLS))
        self.assertEqual(status, 200, raw)
        choice = json.loads(raw)["choices"][0]
        self.assertNotIn("tool_calls", choice["message"])
        self.assertIn("parse", choice["message"]["content"])  # the model was told, and answered

    def test_a_function_named_like_a_codex_tool_is_renamed_for_the_model_and_back(self):
        # codex keeps `exec_command` for itself (it would answer the model "unsupported call"):
        # the model sees the caller's function as exec_command_fn; the caller sees its own name.
        proxy = self.start_real_proxy()
        tools = [{"type": "function", "function": {"name": "exec_command", "description": "run a command",
                                                    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}]
        status, _, raw = post(proxy, chat_body('[[call:exec_command_fn:{"cmd":"ls"}]]', tools=tools))
        self.assertEqual(status, 200, raw)
        [call] = json.loads(raw)["choices"][0]["message"]["tool_calls"]
        self.assertEqual((call["function"]["name"], json.loads(call["function"]["arguments"])), ("exec_command", {"cmd": "ls"}))
        self.assertIn("exec_command_fn", self.offered(self.model.requests()[-1]))

    def test_text_that_looks_like_a_call_is_only_text(self):
        proxy = self.start_real_proxy()
        text = 'Sure <tool_call>{"name": "get_weather"}</tool_call>'
        status, _, raw = post(proxy, chat_body(f"[[reply:{text}]]", tools=TOOLS))
        choice = json.loads(raw)["choices"][0]
        self.assertEqual(choice["message"]["content"], text)
        self.assertEqual(choice["finish_reason"], "stop")


class ModelFailureTest(ProxyTestCase):
    """What the model provider does wrong reaches the client as a 502 with the provider's reason
    (secrets redacted), or as an SSE error event + [DONE]; the worker stays up."""

    def assert_model_error(self, proxy, prompt, retryable=True, contains=None):
        status, _, raw = post(proxy, chat_body(prompt))
        self.assertEqual(status, 502, raw)
        error = json.loads(raw)["error"]
        self.assertEqual(error["code"], "model_error")
        self.assertEqual(error.get("retryable", False), retryable, error)
        if contains:
            self.assertIn(contains, error["message"])
        return error

    def test_failures_401_500_garbage_and_early_close_are_502_and_the_worker_stays_up(self):
        proxy = self.start_real_proxy()
        error = self.assert_model_error(proxy, f"[[fail:server_error:overloaded, key {MODEL_KEY}]]",
                                        contains="overloaded")
        self.assertNotIn(MODEL_KEY, error["message"])
        self.assertIn("[REDACTED]", error["message"])
        self.assert_model_error(proxy, "[[status:401]]", retryable=False, contains="401")
        self.assert_model_error(proxy, "[[status:500]]")
        self.assert_model_error(proxy, "[[garbage]]", contains="stream")
        self.assert_model_error(proxy, "[[disconnect]][[reply:a b c d e f]]", contains="stream")
        status, _, _ = post(proxy, chat_body("[[reply:still here]]"))
        self.assertEqual(status, 200)
        self.assertEqual(proxy.readyz()[1]["worker"]["restarts_total"], 0)
        self.assertNotIn(MODEL_KEY, proxy.raw_log())

    def test_a_model_failure_mid_stream_is_an_error_event_then_done(self):
        proxy = self.start_real_proxy()
        status, _, body = post(proxy, chat_body("[[disconnect]][[slow:20]][[reply:one two three four]]", stream=True))
        self.assertEqual(status, 200)
        assert_stream_ends_with_error(self, body, "model_error")

    def test_a_model_that_never_answers_gives_504_and_the_turn_is_interrupted(self):
        # A tap records the JSON-RPC both ways: the 504 must come from a turn that started and
        # reached the model, and the interrupt must name that turn (a turn/start never answered
        # would also end in a 504, but with no turn to interrupt).
        work = tempfile.TemporaryDirectory(prefix="cxp-tap-")
        self.addCleanup(work.cleanup)
        log = os.path.join(work.name, "rpc.jsonl")
        proxy = self.start_real_proxy(env={"WORKER_REQUEST_TIMEOUT_MS": "1500",
                                           "CODEX_BIN": tap_wrapper(work.name, log, REAL_CODEX)})
        started = time.monotonic()
        status, _, raw = post(proxy, chat_body("[[hang]]"))
        self.assertEqual(status, 504, raw)
        self.assertGreater(time.monotonic() - started, 1.4)
        self.assertEqual(json.loads(raw)["error"]["code"], "timeout")
        self.assertEqual([last_user_text(r["body"]) for r in self.model.requests()], ["[[hang]]"])
        frames = read_tap(log)
        starts = [f["id"] for d, f in frames if d == "to_worker" and f.get("method") == "turn/start"]
        self.assertEqual(len(starts), 1)
        turn_ids = [f["result"]["turn"]["id"] for d, f in frames
                    if d == "from_worker" and f.get("id") == starts[0] and "result" in f]
        self.assertEqual(len(turn_ids), 1, "the worker answered turn/start with a turn")
        wait_until(lambda: [f for d, f in read_tap(log) if d == "to_worker" and f.get("method") == "turn/interrupt"],
                   10, message="turn/interrupt")
        interrupts = [f["params"]["turnId"] for d, f in read_tap(log)
                      if d == "to_worker" and f.get("method") == "turn/interrupt"]
        self.assertEqual(interrupts, turn_ids)
        # turn/interrupt made the worker drop its request to the model.
        wait_until(lambda: self.model.events("client_disconnected"), 10, message="the model request to be dropped")
        status, _, _ = post(proxy, chat_body())
        self.assertEqual(status, 200)
        self.assertEqual(proxy.readyz()[1]["worker"]["restarts_total"], 0)


class BadRequestTest(ProxyTestCase):
    def setUp(self):
        self.proxy = self.start_real_proxy()

    def assert_error(self, status, body, param=None, contains=None, headers=None):
        got, _, raw = post(self.proxy, body, headers=headers)
        self.assertEqual(got, status, raw)
        error = json.loads(raw)["error"]
        self.assertTrue(error["message"])
        self.assertIn("type", error)
        if param is not None:
            self.assertEqual(error["param"], param)
        if contains:
            self.assertIn(contains, error["message"])
        return error

    def test_client_mistakes_get_4xx_envelopes_naming_the_field(self):
        self.assert_error(400, "{not json", contains="not valid JSON")
        self.assert_error(400, "[1]", contains="JSON object")
        self.assert_error(400, json.dumps({"messages": "hi"}), param="messages")
        self.assert_error(400, json.dumps({"messages": []}), param="messages")
        self.assert_error(400, json.dumps({"messages": [{"role": "wizard", "content": "x"}]}), param="messages[0].role")
        self.assert_error(400, json.dumps({"messages": [{"role": "user", "content": 5}]}), param="messages[0].content")
        self.assert_error(400, json.dumps({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
                          param="messages[0].content[0].type")
        self.assert_error(400, chat_body(n=2), param="n")
        self.assert_error(400, chat_body(stream="yes"), param="stream")
        self.assert_error(400, chat_body(model=7), param="model")
        self.assert_error(404, chat_body(model="no-such-model"), param="model", contains="no-such-model")
        self.assert_error(400, chat_body(tools=[{"type": "function", "function": {"name": "bad name"}}]),
                          param="tools[0].function.name")
        ok, _, _ = post(self.proxy, chat_body(temperature=0.2, user="x", unknown_field={"a": 1}))
        self.assertEqual(ok, 200)
        self.assertEqual(len(self.model.requests()), 1)  # refused requests never reach the model
        # Ingress and early egress are logged with the request id; bodies never are.
        received = self.proxy.events("request_received")
        refused = self.proxy.events("request_refused")
        self.assertEqual(len(received), 13)  # 12 mistakes + 1 good request
        self.assertEqual(len(refused), 12)
        self.assertLessEqual({r["request_id"] for r in refused}, {r["request_id"] for r in received})
        self.assertIn(404, {r["status"] for r in refused})

    def test_wrong_content_type_and_oversized_body(self):
        status, _, raw = self.proxy.request("POST", "/v1/chat/completions", body=chat_body(),
                                            headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        self.assertIn("application/json", json.loads(raw)["error"]["message"])
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 20000000\r\n\r\n" + b"x" * 1000)
            reply = s.recv(65536)
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:60])


class AuthAndMaintenanceTest(ProxyTestCase):
    def test_api_key_is_required_on_v1_but_not_on_probes(self):
        proxy = self.start_real_proxy(env={"PROXY_API_KEY": "sk-test-key-123456"})
        status, _, raw = post(proxy, chat_body())
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(raw)["error"]["code"], "invalid_api_key")
        status, _, _ = post(proxy, chat_body(), headers={"Authorization": "Bearer sk-test-key-123457"})
        self.assertEqual(status, 401)
        status, _, _ = post(proxy, chat_body(), headers={"Authorization": "Bearer sk-test-key-123456"})
        self.assertEqual(status, 200)
        self.assertEqual(proxy.request("GET", "/v1/models")[0], 401)
        self.assertEqual(proxy.request("GET", "/readyz")[0], 200)
        self.assertNotIn("sk-test-key-123456", proxy.raw_log())
        # The proxy's key is the proxy's: the model gets its own key, never the clients'.
        self.assertEqual([r["headers"]["authorization"] for r in self.model.requests()], [f"Bearer {MODEL_KEY}"])

    def test_maintenance_answers_503_with_retry_after_while_probes_stay_200(self):
        proxy = self.start_real_proxy(env={"PROXY_MAINTENANCE_MODE": "true", "PROXY_MAINTENANCE_RETRY_AFTER_S": "30"})
        self.assertTrue(proxy.readyz()[1]["maintenance"])
        status, headers, raw = post(proxy, chat_body())
        self.assertEqual(status, 503)
        self.assertEqual(headers["Retry-After"], "30")
        error = json.loads(raw)["error"]
        self.assertTrue(error["retryable"])
        self.assertEqual(error["code"], "maintenance")
        self.assertEqual(self.model.requests(), [])


class MaintenanceEndpointTest(ProxyTestCase):
    def admin(self, proxy, method, body=None, token="admin-secret-1234"):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return proxy.request(method, "/internal/maintenance", body=body and json.dumps(body), headers=headers)

    def test_toggling_maintenance_answers_503_then_restores_service_and_probes_stay_200(self):
        proxy = self.start_real_proxy(env={"PROXY_ADMIN_TOKEN": "admin-secret-1234"})
        self.assertEqual(self.admin(proxy, "GET")[0], 200)
        status, _, raw = self.admin(proxy, "POST", {"enabled": True, "retry_after_s": 45})
        self.assertEqual(status, 200, raw)
        self.assertEqual(json.loads(raw), {"enabled": True, "retry_after_s": 45})
        status, headers, raw = post(proxy, chat_body())
        self.assertEqual(status, 503)
        self.assertEqual(headers["Retry-After"], "45")
        self.assertTrue(json.loads(raw)["error"]["retryable"])
        status, ready = proxy.readyz()
        self.assertEqual(status, 200)
        self.assertTrue(ready["maintenance"])
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)
        self.assertEqual(self.admin(proxy, "POST", {"enabled": False})[0], 200)
        self.assertEqual(post(proxy, chat_body())[0], 200)
        self.assertFalse(proxy.readyz()[1]["maintenance"])
        toggles = proxy.events("maintenance_toggled")
        self.assertEqual([t["maintenance_mode"] for t in toggles], [True, False])
        self.assertNotIn("admin-secret-1234", proxy.raw_log())

    def test_admin_auth_and_bad_bodies(self):
        proxy = self.start_proxy(env={"PROXY_ADMIN_TOKEN": "admin-secret-1234"})
        self.assertEqual(self.admin(proxy, "GET", token=None)[0], 401)
        self.assertEqual(self.admin(proxy, "GET", token="admin-secret-1235")[0], 403)
        self.assertEqual(self.admin(proxy, "POST", {"enabled": "yes"})[0], 400)
        self.assertEqual(self.admin(proxy, "POST", {"enabled": True, "retry_after_s": -1})[0], 400)

    def test_without_an_admin_token_the_endpoint_is_404_and_a_warning_is_logged(self):
        proxy = self.start_proxy()
        self.assertEqual(self.admin(proxy, "GET")[0], 404)
        warnings = proxy.events("insecure_config")
        self.assertEqual(len(warnings), 1, "one warning at start, naming every open setting")
        self.assertEqual(warnings[0]["settings"], ["PROXY_API_KEY", "PROXY_ADMIN_TOKEN"])
        self.assertIn("/v1/* accept any caller", warnings[0]["message"])


class WorkerTroubleTest(ProxyTestCase):
    def test_worker_not_ready_gives_503_retryable(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_STARTUP_DELAY_MS": "3000"})  # a slow start: the fake
        status, headers, raw = post(proxy, chat_body())
        self.assertEqual(status, 503)
        self.assertIn("Retry-After", headers)
        error = json.loads(raw)["error"]
        self.assertTrue(error["retryable"])
        self.assertEqual(error["code"], "worker_not_ready")

    def test_full_queue_gives_429_with_retry_after(self):
        proxy = self.start_real_proxy(env={"WORKER_MAX_CONCURRENCY": "1", "PROXY_QUEUE_MAX": "0",
                                           "WORKER_REQUEST_TIMEOUT_MS": "5000"})
        hung = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        self.addCleanup(hung.close)
        hung.request("POST", "/v1/chat/completions", body=chat_body("[[hang]]"),
                     headers={"Content-Type": "application/json"})
        wait_until(lambda: self.model.requests(), 10, message="the first turn to reach the model")
        status, headers, raw = post(proxy, chat_body())
        self.assertEqual(status, 429)
        self.assertEqual(headers["Retry-After"], "1")
        self.assertEqual(json.loads(raw)["error"]["code"], "queue_full")

    def test_client_disconnect_interrupts_the_turn_and_frees_the_slot(self):
        proxy = self.start_real_proxy(env={"WORKER_MAX_CONCURRENCY": "1", "PROXY_QUEUE_MAX": "0"})
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            body = chat_body("[[hang]]", stream=True).encode()
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            self.assertIn(b"200 OK", s.recv(4096))
            wait_until(lambda: self.model.requests(), 10, message="the turn to reach the model")
        # The worker was told to interrupt: it dropped its request to the model.
        wait_until(lambda: self.model.events("client_disconnected"), 10, message="the model request to be dropped")
        self.assertTrue(proxy.find_event("client_disconnected"))
        status, _, _ = post(proxy, chat_body("[[reply:next]]"))  # the slot was freed
        self.assertEqual(status, 200)

    def test_a_client_gone_before_turn_start_is_answered_still_interrupts_the_turn(self):
        # The window between turn/start and its answer is milliseconds on the real worker: the fake
        # widens it.
        with tempfile.NamedTemporaryFile(delete=False) as log:
            pass
        self.addCleanup(os.remove, log.name)
        proxy = self.start_proxy(env={"FAKE_CODEX_TURN_START_DELAY_MS": "800", "FAKE_CODEX_HANG_TURNS": "all",
                                      "FAKE_CODEX_LOG": log.name})
        proxy.wait_ready()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            body = chat_body(stream=True).encode()
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            wait_until(lambda: "turn/start" in _read(log.name).split(), 5, message="turn/start")
        wait_until(lambda: "turn/interrupt" in _read(log.name).split(), 5, message="turn/interrupt")
        self.assertTrue(proxy.find_event("late_turn_interrupted"))

    def test_worker_crash_mid_stream_sends_an_error_event_then_done(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_CRASH_AFTER_TURNS": "0", "FAKE_CODEX_REPLY": "a b c d e f",
                                      "FAKE_CODEX_TOKEN_DELAY_MS": "20", **{"WORKER_BACKOFF_INITIAL_MS": "50"}})
        proxy.wait_ready()
        status, _, body = post(proxy, chat_body(stream=True))
        self.assertEqual(status, 200)
        assert_stream_ends_with_error(self, body, "worker_unavailable")
        proxy.wait_ready()
        status, _, raw = post(proxy, chat_body())
        self.assertEqual(status, 502, raw)  # crashes again mid-turn (every turn does), JSON this time
        self.assertEqual(json.loads(raw)["error"]["code"], "worker_unavailable")

    def test_after_the_real_worker_is_killed_it_restarts_and_the_next_request_works(self):
        proxy = self.start_real_proxy(env={"WORKER_BACKOFF_INITIAL_MS": "50"})
        pid = proxy.readyz()[1]["worker"]["pid"]
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: proxy.readyz()[1]["worker"]["restarts_total"] == 1 and proxy.readyz()[0] == 200,
                   60, interval=0.05, message="the worker back after its restart")
        self.assertNotEqual(proxy.readyz()[1]["worker"]["pid"], pid)
        status, _, raw = post(proxy, chat_body("[[reply:back again]]"))
        self.assertEqual(status, 200, raw)
        self.assertEqual(json.loads(raw)["choices"][0]["message"]["content"], "back again")

    def test_sigterm_lets_an_in_flight_stream_finish(self):
        proxy = self.start_real_proxy(env={"WORKER_SHUTDOWN_GRACE_MS": "10000"})
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("POST", "/v1/chat/completions",
                     body=chat_body("[[slow:100]][[reply:w1 w2 w3 w4 w5 w6 w7 w8 w9 w10]]", stream=True),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        wait_until(lambda: self.model.requests(), 10, message="the turn to reach the model")
        proxy.signal(signal.SIGTERM)
        body = response.read()
        self.assertTrue(body.endswith(b"data: [DONE]\n\n"))
        self.assertEqual(streamed_text(body), "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10")
        self.assertEqual(proxy.wait_exit(timeout=20), 0)


def _read(path):
    with open(path) as f:
        return f.read()


if __name__ == "__main__":
    unittest.main(verbosity=2)
