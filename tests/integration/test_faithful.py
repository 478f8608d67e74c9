"""What reaches the model is what the caller sent: the real codex app-server behind codex-proxy,
the scripted model recording every request it gets. No codex prompt, structured outputs (raw HTTP
and the official Python client's helpers), reasoning effort and summaries, images, stop sequences,
and the fields codex cannot honour (reported or refused). One proxy serves the whole module."""
import json
import os
import sys
import unittest

from harness import SOURCE_DIR, Proxy, RealWorker, REAL_READY_TIMEOUT, wait_until

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "python", "site-packages"))
import openai  # noqa: E402  (tests/python/requirements.txt, installed by scripts/setup.sh)
import pydantic  # noqa: E402
from model_stub import prompt_bytes  # noqa: E402
from strict_schema import check_strict, is_instance  # noqa: E402

PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
       "hQGAhKmMIQAAAABJRU5ErkJggg==")
# Text of codex's own that must never reach the model (its base prompt, permissions and
# environment messages, its request_user_input tool).
CODEX_TEXT = ("coding agent", "Codex CLI", "<permissions", "<environment_context>", "request_user_input",
              "approval_policy", "sandbox_mode")
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"},
                                            "sky": {"enum": ["clear", "cloudy"]}},
           "required": ["city", "celsius", "sky"], "additionalProperties": False}


class Weather(pydantic.BaseModel):
    city: str
    celsius: float
    note: str | None


def sse_data(raw):
    """The JSON payloads of a chat stream (without [DONE])."""
    return [json.loads(line[6:]) for line in raw.decode().splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def typed_events(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def streamed_text(raw):
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in sse_data(raw) if c.get("choices"))


class FaithfulTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.worker = RealWorker()
        cls.proxy = Proxy(env=cls.worker.env(), codex_bin=None)
        cls.proxy.wait_ready(timeout=REAL_READY_TIMEOUT)
        cls.client = openai.OpenAI(base_url=f"http://127.0.0.1:{cls.proxy.port}/v1", api_key="unused",
                                   max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()
        cls.worker.close()

    def post(self, path, body, proxy=None):
        status, _, raw = (proxy or self.proxy).request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=60)
        return status, raw

    def chat(self, body, proxy=None):
        return self.post("/v1/chat/completions", body, proxy)

    def model_got(self):
        """The body of the latest request the model received."""
        return self.worker.stub.requests()[-1]["body"]

    def requests_so_far(self):
        return len(self.worker.stub.requests())

    # --- only the caller's words -----------------------------------------------------------------
    def test_a_short_prompt_reaches_the_model_alone_without_any_codex_text(self):
        status, raw = self.chat({"messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(status, 200, raw)
        body = self.model_got()
        self.assertEqual([(i["role"], i["content"]) for i in body["input"]],
                         [("user", [{"type": "input_text", "text": "hi"}])])
        self.assertIsNone(body.get("instructions"))
        self.assertEqual(body.get("tools", []), [])
        self.assertNotIn("summary", body.get("reasoning", {}))
        for text in CODEX_TEXT:
            self.assertNotIn(text, json.dumps({k: body.get(k) for k in ("instructions", "input", "tools")}))
        self.assertLessEqual(prompt_bytes(body), 200)  # 21,000 bytes of codex text before
        self.assertLessEqual(json.loads(raw)["usage"]["prompt_tokens"], 50)  # as the stub counts: bytes / 4

        status, raw = self.chat({"messages": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "hi"}]})
        self.assertEqual(status, 200, raw)
        body = self.model_got()
        self.assertEqual([(i["role"], i["content"][0]["text"]) for i in body["input"]],
                         [("developer", "Be brief."), ("user", "hi")])
        self.assertLessEqual(prompt_bytes(body), 350)

        status, raw = self.post("/v1/responses", {"instructions": "Be brief.", "input": "hi"})
        self.assertEqual(status, 200, raw)
        self.assertEqual([i["role"] for i in self.model_got()["input"]], ["developer", "user"])

    def test_default_instructions_apply_only_when_the_caller_sends_none(self):
        proxy = Proxy(env=self.worker.env(WORKER_DEFAULT_INSTRUCTIONS="You are a helpful assistant."),
                      codex_bin=None)
        self.addCleanup(proxy.close)
        proxy.wait_ready(timeout=REAL_READY_TIMEOUT)
        self.assertEqual(self.chat({"messages": [{"role": "user", "content": "hi"}]}, proxy)[0], 200)
        self.assertEqual([(i["role"], i["content"][0]["text"]) for i in self.model_got()["input"]],
                         [("developer", "You are a helpful assistant."), ("user", "hi")])
        self.assertEqual(self.chat({"messages": [{"role": "developer", "content": "Mine."},
                                                 {"role": "user", "content": "hi"}]}, proxy)[0], 200)
        self.assertEqual([i["content"][0]["text"] for i in self.model_got()["input"]], ["Mine.", "hi"])

    # --- structured outputs ----------------------------------------------------------------------
    def test_a_json_schema_reaches_the_model_strict_and_the_json_comes_back_as_the_content(self):
        format_ = {"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER, "strict": True,
                                                          "description": "Weather of a city"}}
        for stream in (False, True):
            status, raw = self.chat({"messages": [{"role": "user", "content": "weather in Oslo"}],
                                     "response_format": format_, "stream": stream})
            self.assertEqual(status, 200, raw)
            sent = self.model_got()["text"]["format"]
            self.assertEqual((sent["type"], sent["strict"]), ("json_schema", True))
            self.assertEqual(sent["schema"], {**WEATHER, "description": "Weather of a city"})
            content = streamed_text(raw) if stream else json.loads(raw)["choices"][0]["message"]["content"]
            self.assertTrue(is_instance(json.loads(content), WEATHER), content)
            if not stream:
                self.assertIsNone(json.loads(raw)["choices"][0]["message"]["refusal"])

        # The Responses API's text.format, and a non-strict schema that strict mode can enforce.
        status, raw = self.post("/v1/responses", {"input": "weather", "text": {"format": {
            "type": "json_schema", "name": "weather", "schema": WEATHER, "strict": False}}})
        self.assertEqual(status, 200, raw)
        response = json.loads(raw)
        self.assertTrue(is_instance(json.loads(response["output"][0]["content"][0]["text"]), WEATHER))
        self.assertEqual(response["text"]["format"]["name"], "weather")
        self.assertEqual(self.model_got()["text"]["format"]["strict"], True)

        # text: no constraint.
        self.assertEqual(self.chat({"messages": [{"role": "user", "content": "hi"}],
                                    "response_format": {"type": "text"}})[0], 200)
        self.assertIsNone(self.model_got().get("text"))

    def test_a_schema_strict_mode_cannot_enforce_is_refused_before_the_model_sees_it(self):
        optional = {**WEATHER, "required": ["city"]}
        before = self.requests_so_far()
        status, raw = self.chat({"messages": [{"role": "user", "content": "x"}], "response_format": {
            "type": "json_schema", "json_schema": {"name": "w", "schema": optional}}})
        self.assertEqual(status, 400, raw)
        error = json.loads(raw)["error"]
        self.assertEqual(error["param"], "response_format.json_schema.schema")
        self.assertIn("is not in \"required\"", error["message"])
        for bad, param in [({"type": "json_schema", "json_schema": {"name": "w", "schema": "nope"}},
                            "response_format.json_schema.schema"),
                           ({"type": "json_schema", "json_schema": {"schema": WEATHER}},
                            "response_format.json_schema.name"),
                           ({"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "array"}}},
                            "response_format.json_schema.schema"),
                           ({"type": "xml"}, "response_format.type")]:
            status, raw = self.chat({"messages": [{"role": "user", "content": "x"}], "response_format": bad})
            self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, param), raw)
        self.assertEqual(self.requests_so_far(), before)
        # What the proxy accepted, the model stub (checking as OpenAI's strict mode does) accepted.
        check_strict(WEATHER)

    def test_json_object_is_honoured_through_a_strict_wrapper_and_needs_the_word_json(self):
        status, raw = self.chat({"messages": [{"role": "user", "content": "an object please"}],
                                 "response_format": {"type": "json_object"}})
        self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, "messages"))
        inner = {"a": [1, "é \"quoted\""], "b": {"c": None}}
        ask = "Answer in JSON [[reply:" + json.dumps({"json": json.dumps(inner)}) + "]]"
        for stream in (False, True):
            status, raw = self.chat({"messages": [{"role": "user", "content": ask}],
                                     "response_format": {"type": "json_object"}, "stream": stream})
            self.assertEqual(status, 200, raw)
            content = streamed_text(raw) if stream else json.loads(raw)["choices"][0]["message"]["content"]
            self.assertEqual(json.loads(content), inner)
            sent = self.model_got()["text"]["format"]
            self.assertEqual((sent["strict"], list(sent["schema"]["properties"])), (True, ["json"]))
        status, raw = self.post("/v1/responses", {"input": ask, "text": {"format": {"type": "json_object"}}})
        self.assertEqual(json.loads(json.loads(raw)["output"][0]["content"][0]["text"]), inner)

    def test_the_official_python_clients_parse_helpers_get_typed_answers(self):
        messages = [{"role": "user", "content": "weather in Oslo"}]
        parsed = self.client.chat.completions.parse(model="gpt-5", messages=messages, response_format=Weather)
        self.assertIsInstance(parsed.choices[0].message.parsed, Weather)
        with self.client.chat.completions.stream(model="gpt-5", messages=messages, response_format=Weather) as s:
            for _ in s:
                pass
            self.assertIsInstance(s.get_final_completion().choices[0].message.parsed, Weather)
        self.assertIsInstance(self.client.responses.parse(model="gpt-5", input="weather",
                                                          text_format=Weather).output_parsed, Weather)
        with self.client.responses.stream(model="gpt-5", input="weather", text_format=Weather) as s:
            for _ in s:
                pass
            self.assertIsInstance(s.get_final_response().output_parsed, Weather)
        # The model got the client's own schema (Optional → nullable, as strict mode wants it).
        schema = self.model_got()["text"]["format"]["schema"]
        self.assertEqual(schema["properties"]["note"]["anyOf"], [{"type": "string"}, {"type": "null"}])

    # --- reasoning -------------------------------------------------------------------------------
    def test_effort_and_summary_reach_the_model_and_summaries_come_back_as_reasoning_items(self):
        status, raw = self.chat({"messages": [{"role": "user", "content": "[[reason:Think twice.]] [[reply:ok]]"}],
                                 "reasoning_effort": "high"})
        self.assertEqual(status, 200, raw)
        self.assertEqual(self.model_got()["reasoning"], {"effort": "high"})
        self.assertEqual(json.loads(raw)["usage"]["completion_tokens_details"]["reasoning_tokens"], 2)

        ask = {"input": "[[reason:Let me think it over.]] [[reply:Done.]]",
               "reasoning": {"effort": "minimal", "summary": "detailed"}}
        status, raw = self.post("/v1/responses", ask)
        self.assertEqual(status, 200, raw)
        self.assertEqual(self.model_got()["reasoning"], {"effort": "minimal", "summary": "detailed"})
        response = json.loads(raw)
        self.assertEqual([item["type"] for item in response["output"]], ["reasoning", "message"])
        self.assertEqual(response["output"][0]["summary"],
                         [{"type": "summary_text", "text": "Let me think it over."}])
        self.assertEqual(response["usage"]["output_tokens_details"]["reasoning_tokens"], 5)
        self.assertEqual(response["reasoning"], {"effort": "minimal", "summary": "detailed"})

        status, raw = self.post("/v1/responses", {**ask, "stream": True})
        events = typed_events(raw)
        deltas = "".join(e["delta"] for t, e in events if t == "response.reasoning_summary_text.delta")
        self.assertEqual(deltas, "Let me think it over.")
        kinds = [t for t, _ in events]
        self.assertLess(kinds.index("response.reasoning_summary_part.added"),
                        kinds.index("response.reasoning_summary_text.done"))
        self.assertLess(kinds.index("response.reasoning_summary_part.done"), kinds.index("response.output_text.delta"))
        self.assertEqual(events[-1][1]["response"]["output"][0]["type"], "reasoning")

        for body, param in [({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "ultra"},
                             "reasoning_effort")]:
            status, raw = self.chat(body)
            self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, param))
        for body, param in [({"input": "x", "reasoning": {"effort": "max"}}, "reasoning.effort"),
                            ({"input": "x", "reasoning": {"summary": "verbose"}}, "reasoning.summary")]:
            status, raw = self.post("/v1/responses", body)
            self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, param))

    # --- images ----------------------------------------------------------------------------------
    def test_images_reach_the_model_in_order_with_their_detail(self):
        status, raw = self.chat({"messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
            {"role": "assistant", "content": "A dot."},
            {"role": "user", "content": [{"type": "text", "text": "and these?"},
                                         {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
                                         {"type": "text", "text": "then"},
                                         {"type": "image_url", "image_url": {"url": PNG}}]}]})
        self.assertEqual(status, 200, raw)
        first, answer, last = self.model_got()["input"]
        self.assertEqual(first["content"], [{"type": "input_image", "image_url": PNG, "detail": "auto"}])
        self.assertEqual(answer["role"], "assistant")
        self.assertEqual([(p["type"], p.get("text"), p.get("detail")) for p in last["content"]],
                         [("input_text", "and these?", None), ("input_image", None, "high"),
                          ("input_text", "then", None), ("input_image", None, "auto")])
        self.assertEqual(last["content"][1]["image_url"], PNG)

        status, raw = self.post("/v1/responses", {"input": [{"role": "user", "content": [
            {"type": "input_text", "text": "what?"}, {"type": "input_image", "image_url": PNG, "detail": "high"}]}]})
        self.assertEqual(status, 200, raw)
        self.assertEqual(self.model_got()["input"][-1]["content"][1]["detail"], "high")

    def test_images_the_worker_cannot_take_are_refused_naming_the_part(self):
        before = self.requests_so_far()
        at = "messages[0].content[0]"
        for part, param, says in [
                ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}, at + ".image_url.url",
                 "data URL"),
                ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}}, at + ".image_url.url",
                 "base64"),
                ({"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8gd29ybGQh"}},
                 at + ".image_url.url", "not a png"),
                ({"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}, at + ".image_url.detail", "low"),
                ({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}, at + ".type", "audio"),
                ({"type": "file", "file": {"file_id": "file-1"}}, at + ".type", "files")]:
            status, raw = self.chat({"messages": [{"role": "user", "content": [part]}]})
            error = json.loads(raw)["error"]
            self.assertEqual((status, error["param"]), (400, param), raw)
            self.assertIn(says, error["message"])
        many = [{"type": "image_url", "image_url": {"url": PNG}}] * 17
        status, raw = self.chat({"messages": [{"role": "user", "content": many}]})
        self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, "messages[0].content[16].image_url.url"))
        self.assertEqual(self.requests_so_far(), before)

    # --- stop sequences --------------------------------------------------------------------------
    def test_stop_cuts_the_answer_at_the_first_match_across_deltas_and_ends_the_models_response(self):
        ask = "[[slow:100]] [[reply:one two three four five six seven eight]]"
        for stream in (False, True):
            status, raw = self.chat({"messages": [{"role": "user", "content": ask}], "stop": ["zzz", "ree fo"],
                                     "stream": stream})
            self.assertEqual(status, 200, raw)
            if stream:
                chunks = sse_data(raw)
                self.assertEqual(streamed_text(raw), "one two th")
                self.assertEqual([c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1], "stop")
            else:
                choice = json.loads(raw)["choices"][0]
                self.assertEqual((choice["message"]["content"], choice["finish_reason"]), ("one two th", "stop"))
            # The turn was interrupted: codex dropped the model's stream before its end.
            index = self.worker.stub.requests()[-1]["request"]
            wait_until(lambda: any(e["request"] == index for e in self.worker.stub.events("client_disconnected")),
                       10, message="the model's response to be cut off")
        status, raw = self.chat({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]})
        self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, "stop"))

    # --- fields codex cannot honour --------------------------------------------------------------
    def test_ignored_fields_are_named_in_the_log_and_counted_and_refused_ones_name_themselves(self):
        status, raw = self.chat({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
                                 "max_tokens": 50, "seed": 1, "store": False, "user": "u-1"})
        self.assertEqual(status, 200, raw)
        request_id = json.loads(raw)["id"].removeprefix("chatcmpl-")
        line = wait_until(lambda: next((l for l in self.proxy.events("request_completed")
                                        if l["request_id"] == request_id), None), 5, message="the request's log line")
        self.assertEqual(line["params_ignored"], ["max_tokens", "temperature", "seed", "user"])
        scrape = self.proxy.request("GET", "/metrics")[2].decode()
        self.assertRegex(scrape, r'codex_params_ignored_total\{param="temperature"\} [1-9]')
        self.assertNotIn('param="store"', scrape)  # store: false asks for nothing
        for body, param in [({"logprobs": True}, "logprobs"), ({"n": 2}, "n"), ({"audio": {"voice": "alloy"}}, "audio"),
                            ({"functions": [{"name": "f"}]}, "functions")]:
            status, raw = self.chat({"messages": [{"role": "user", "content": "hi"}], **body})
            self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, param), raw)
        for body, param in [({"background": True}, "background"), ({"prompt": {"id": "p"}}, "prompt")]:
            status, raw = self.post("/v1/responses", {"input": "hi", **body})
            self.assertEqual((status, json.loads(raw)["error"]["param"]), (400, param), raw)


if __name__ == "__main__":
    unittest.main(verbosity=2)
