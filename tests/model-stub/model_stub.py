#!/usr/bin/env python3
"""A scripted model server: the OpenAI Responses API (`POST /v1/responses`, SSE) on loopback.

It stands in for the OpenAI API so that the real `codex app-server` completes real turns offline.
Markers in the last user message script the answer (see tests/model-stub/README.md); every request
and every client disconnect is appended to a JSON-lines log so that tests assert what reached the
model.

As a program:   model_stub.py [--host 127.0.0.1] [--port 0] [--log FILE] [--api-key KEY]
                prints one JSON line {"event":"listening","port":N} on stdout, serves until killed.
As a module:    with ModelStub(log_path=..., api_key=...) as stub: stub.base_url, stub.requests()
"""
import argparse
import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strict_schema import SchemaError, check_strict, instance, is_instance  # noqa: E402

DEFAULT_REPLY = "Hello from the model stub."
MARKER = re.compile(r"\[\[(\w+)(?::(.*?))?\]\]", re.S)
MAX_BODY = 64 * 1024 * 1024


def parse_markers(text):
    """The markers of a text as (name, argument) pairs, in order."""
    return [(m.group(1), m.group(2)) for m in MARKER.finditer(text or "")]


def message_text(item):
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def messages_of(body, role):
    """The texts of a request's input messages of one role, in order (for tests)."""
    items = body.get("input") if isinstance(body, dict) else None
    return [message_text(i) for i in (items if isinstance(items, list) else [])
            if isinstance(i, dict) and i.get("role") == role and i.get("type", "message") == "message"]


def last_user_text(body):
    """The text of the last user message of a Responses request (codex sends `input` items)."""
    items = body.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            return message_text(item)
    return ""


def pending_tool_output(body):
    """The output of a function call when the request's last input item answers one, else None."""
    items = body.get("input")
    if isinstance(items, list) and items and isinstance(items[-1], dict) \
            and items[-1].get("type") == "function_call_output":
        output = items[-1].get("output")
        return output if isinstance(output, str) else json.dumps(output)
    return None


# The fields of a Responses request that the model reads: what input tokens are counted over.
MODEL_VISIBLE = ("instructions", "input", "tools", "text")


def prompt_bytes(body):
    """Bytes of what the model reads in a request: `instructions`, `input`, `tools` and `text`
    (the output format) as json.dumps writes them. The stub's input_tokens are these bytes / 4."""
    if not isinstance(body, dict):
        return 0
    return len(json.dumps({k: body[k] for k in MODEL_VISIBLE if body.get(k) is not None}))


def output_schema(body):
    """The `text.format` of a request when it asks for a JSON schema, else None."""
    text = body.get("text") if isinstance(body, dict) else None
    fmt = text.get("format") if isinstance(text, dict) else None
    return fmt if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None


def summary_requested(body):
    reasoning = body.get("reasoning") if isinstance(body, dict) else None
    return isinstance(reasoning, dict) and reasoning.get("summary") in ("auto", "concise", "detailed")


def chunks(text, size=8):
    """Splits JSON text into deltas of `size` characters (they cut through strings and escapes)."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [text]


def words(text):
    """Splits text into deltas that keep their leading spaces ("a b" → ["a", " b"])."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


class Script:
    """What one request asks the stub to do, from the markers of its last user message."""

    def __init__(self, body):
        text = last_user_text(body)
        self.reply = DEFAULT_REPLY
        self.delay_ms = 0
        self.fail = None          # (code, message) → response.failed
        self.status = None        # HTTP status to answer instead of a stream
        self.calls = []           # [(name, arguments json text)]
        self.disconnect = False   # close the connection mid-stream
        self.hang = False         # never answer
        self.garbage = False      # 200 with a body that is not SSE
        self.first_delay_ms = 0
        self.reply_set = False    # a [[reply:…]] marker (with calls: text before the calls)
        self.reasoning = None     # [[reason:TEXT]]: a reasoning item first (its summary when asked)
        self.structured = False   # the reply is JSON of the request's schema (deltas of 8 chars)
        tool_output = pending_tool_output(body)
        for name, arg in parse_markers(text):
            if name == "reply":
                self.reply = arg or ""
                self.reply_set = True
            elif name == "slow":
                self.delay_ms = int(arg or 100)
            elif name == "wait":
                self.first_delay_ms = int(arg or 1000)
            elif name == "fail":
                code, _, message = (arg or "server_error:the model failed").partition(":")
                self.fail = (code, message or "the model failed")
            elif name == "status":
                self.status = int(arg or 500)
            elif name == "call":
                tool, _, arguments = (arg or "").partition(":")
                self.calls.append((tool.strip(), arguments.strip() or "{}"))
            elif name == "disconnect":
                self.disconnect = True
            elif name == "hang":
                self.hang = True
            elif name == "garbage":
                self.garbage = True
            elif name == "reason":
                self.reasoning = arg or "Thinking it over."
        if tool_output is not None:
            # The follow-up request of a function call: answer with a text that quotes its result.
            self.calls = []
            self.reply = f"The tool said: {tool_output}"
            self.reply_set = True
        fmt = output_schema(body)
        if fmt is not None and not (self.calls and not self.reply_set):
            # Under a schema the answer is an instance of it: the scripted reply when it is one,
            # else a value made from the schema.
            try:
                scripted = json.loads(self.reply) if self.reply_set else None
            except ValueError:
                scripted = None
            schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {}
            value = scripted if self.reply_set and is_instance(scripted, schema) else instance(schema)
            self.reply = json.dumps(value)
            self.reply_set = True
            self.structured = True


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "model-stub/1"

    def log_message(self, fmt, *args):  # quiet: the JSON-lines log is the record
        pass

    # --- plumbing -----------------------------------------------------------------------------
    def _json(self, status, payload):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, kind, payload):
        payload = {"type": kind, "sequence_number": self._sequence, **payload}
        self._sequence += 1
        self._chunk(f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode())

    # --- routes -------------------------------------------------------------------------------
    def do_GET(self):
        stub = self.server.stub
        stub.record({"method": "GET", "path": self.path, "headers": self._headers()})
        if self.path.rstrip("/").endswith("/models"):
            return self._json(200, {"object": "list", "data": [], "models": []})
        self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def do_POST(self):
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._json(413, {"error": {"message": "body too large", "type": "invalid_request_error"}})
        raw = self.rfile.read(length) if length else self._read_chunked()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"unparsable": raw[:200].decode("utf-8", "replace")}
        index = stub.record({"method": "POST", "path": self.path, "headers": self._headers(), "body": body})
        if not self.path.rstrip("/").endswith("/responses"):
            return self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
        if stub.api_key and self.headers.get("Authorization") != f"Bearer {stub.api_key}":
            return self._json(401, {"error": {"message": "Incorrect API key provided to the model stub",
                                              "type": "invalid_request_error", "code": "invalid_api_key"}})
        fmt = output_schema(body)
        if fmt is not None and fmt.get("strict"):
            try:
                check_strict(fmt.get("schema"))
            except SchemaError as e:
                # What OpenAI answers a strict schema it cannot enforce.
                stub.record({"event": "schema_refused", "request": index, "message": e.message})
                return self._json(400, {"error": {"message": e.openai_message(fmt.get("name", "")),
                                                  "type": "invalid_request_error", "param": "text.format.schema",
                                                  "code": "invalid_json_schema"}})
        script = Script(body if isinstance(body, dict) else {})
        try:
            self._answer(index, body, script)
        except (BrokenPipeError, ConnectionResetError):
            stub.record({"event": "client_disconnected", "request": index})

    def _read_chunked(self):
        data = b""
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()
            if len(data) > MAX_BODY:
                return data

    def _headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def _reasoning(self, index, text, with_summary):
        """A reasoning item as OpenAI streams one: its summary (one part) only when the request asked
        for summaries (`reasoning.summary`), its encrypted content always."""
        item_id = f"rs_stub_{index}"
        at = 0
        self._event("response.output_item.added", {"output_index": at, "item": {
            "type": "reasoning", "id": item_id, "summary": []}})
        summary = []
        if with_summary:
            part = {"type": "summary_text", "text": ""}
            self._event("response.reasoning_summary_part.added", {"item_id": item_id, "output_index": at,
                                                                  "summary_index": 0, "part": part})
            for delta in words(text):
                self._event("response.reasoning_summary_text.delta", {"item_id": item_id, "output_index": at,
                                                                      "summary_index": 0, "delta": delta})
            self._event("response.reasoning_summary_text.done", {"item_id": item_id, "output_index": at,
                                                                 "summary_index": 0, "text": text})
            summary = [{"type": "summary_text", "text": text}]
            self._event("response.reasoning_summary_part.done", {"item_id": item_id, "output_index": at,
                                                                 "summary_index": 0, "part": summary[0]})
        item = {"type": "reasoning", "id": item_id, "summary": summary,
                "encrypted_content": f"stub-encrypted-{index}"}
        self._event("response.output_item.done", {"output_index": at, "item": item})
        return item

    def _wait_for_disconnect(self, index):
        """Holds the request open, answering nothing, until the client goes away."""
        self.connection.settimeout(0.2)
        while not self.server.stopping.is_set():
            try:
                if self.connection.recv(1, socket.MSG_PEEK) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        self.server.stub.record({"event": "client_disconnected", "request": index})
        self.close_connection = True

    def _answer(self, index, body, script):
        if script.status:
            messages = {401: ("Incorrect API key provided: sk-stub****", "invalid_api_key"),
                        429: ("Rate limit reached for the model stub", "rate_limit_exceeded")}
            message, code = messages.get(script.status, (f"The model stub answered {script.status}", "server_error"))
            return self._json(script.status, {"error": {"message": message, "type": "server_error", "code": code}})
        if script.hang:
            return self._wait_for_disconnect(index)
        if script.first_delay_ms:
            time.sleep(script.first_delay_ms / 1000)
        self.send_response(200)
        if script.garbage:
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", "24")
            self.end_headers()
            self.wfile.write(b"this is not an SSE body\n")
            return
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._sequence = 0
        response_id = f"resp_stub_{index}"
        model = body.get("model", "stub") if isinstance(body, dict) else "stub"
        base = {"id": response_id, "object": "response", "created_at": int(time.time()), "model": model}
        self._event("response.created", {"response": {**base, "status": "in_progress", "output": []}})
        if script.fail:
            code, message = script.fail
            self._event("response.failed", {"response": {**base, "status": "failed",
                                                         "error": {"code": code, "message": message}}})
            return self._chunk(b"")
        output = []
        sent = 0
        reasoning_tokens = 0
        if script.reasoning is not None:
            reasoning_tokens = len(words(script.reasoning))
            output.append(self._reasoning(index, script.reasoning, summary_requested(body)))
        if script.reply and (script.reply_set or not script.calls):
            item_id = f"msg_stub_{index}"
            at = len(output)
            self._event("response.output_item.added", {"output_index": at, "item": {
                "type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}})
            self._event("response.content_part.added", {"item_id": item_id, "output_index": at, "content_index": 0,
                                                        "part": {"type": "output_text", "text": "", "annotations": []}})
            deltas = chunks(script.reply) if script.structured else words(script.reply)
            for n, delta in enumerate(deltas):
                if script.disconnect and n >= max(1, len(deltas) // 2):
                    self.server.stub.record({"event": "disconnected_mid_stream", "request": index})
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._event("response.output_text.delta", {"item_id": item_id, "output_index": at,
                                                           "content_index": 0, "delta": delta})
                sent += 1
                if script.delay_ms:
                    time.sleep(script.delay_ms / 1000)
            part = {"type": "output_text", "text": script.reply, "annotations": []}
            self._event("response.output_text.done", {"item_id": item_id, "output_index": at, "content_index": 0,
                                                      "text": script.reply})
            self._event("response.content_part.done", {"item_id": item_id, "output_index": at, "content_index": 0,
                                                       "part": part})
            item = {"type": "message", "id": item_id, "role": "assistant", "status": "completed", "content": [part]}
            self._event("response.output_item.done", {"output_index": at, "item": item})
            output.append(item)
        if script.disconnect and sent == 0:
            self.server.stub.record({"event": "disconnected_mid_stream", "request": index})
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        for n, (name, arguments) in enumerate(script.calls):
            call = {"type": "function_call", "id": f"fc_stub_{index}_{n}", "call_id": f"call_stub_{index}_{n}",
                    "name": name, "arguments": arguments, "status": "completed"}
            position = len(output)
            self._event("response.output_item.added", {"output_index": position,
                                                       "item": {**call, "arguments": "", "status": "in_progress"}})
            self._event("response.function_call_arguments.delta", {"item_id": call["id"], "output_index": position,
                                                                   "delta": arguments})
            self._event("response.function_call_arguments.done", {"item_id": call["id"], "output_index": position,
                                                                  "arguments": arguments})
            self._event("response.output_item.done", {"output_index": position, "item": call})
            output.append(call)
            sent += 1
            if script.delay_ms:
                time.sleep(script.delay_ms / 1000)
        input_tokens = max(1, prompt_bytes(body) // 4)
        output_tokens = sent + reasoning_tokens  # as OpenAI counts: reasoning is output
        usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                 "total_tokens": input_tokens + output_tokens}
        self.server.stub.record({"event": "billed", "request": index, "usage": usage})
        self._event("response.completed", {"response": {**base, "status": "completed", "output": output,
                                                        "usage": usage}})
        self._chunk(b"")


class ModelStub:
    """The stub server on a thread of the calling process."""

    def __init__(self, host="127.0.0.1", port=0, log_path=None, api_key=None):
        self.log_path = log_path
        self.api_key = api_key
        self._lock = threading.Lock()
        self._count = 0
        self._records = []
        self.httpd = ThreadingHTTPServer((host, port), StubHandler)
        self.httpd.daemon_threads = True
        self.httpd.stub = self
        self.httpd.stopping = threading.Event()
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://{host}:{self.port}/v1"
        self._thread = None

    def record(self, entry):
        """Appends an entry to the log; returns the request number it was given."""
        with self._lock:
            if "event" not in entry:
                self._count += 1
                entry = {"request": self._count, **entry}
            entry = {"time": time.time(), **entry}
            self._records.append(entry)
            if self.log_path:
                with open(self.log_path, "a") as out:
                    out.write(json.dumps(entry) + "\n")
            return entry.get("request")

    def requests(self, path_suffix="/responses"):
        """The POST requests received so far (their JSON bodies with path and headers)."""
        with self._lock:
            return [r for r in self._records if r.get("method") == "POST" and r["path"].endswith(path_suffix)]

    def events(self, name):
        with self._lock:
            return [r for r in self._records if r.get("event") == name]

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.httpd.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", help="append every request as a JSON line to this file")
    parser.add_argument("--api-key", default=os.environ.get("MODEL_STUB_API_KEY"),
                        help="answer 401 unless requests carry `Authorization: Bearer KEY`")
    args = parser.parse_args()
    stub = ModelStub(args.host, args.port, args.log, args.api_key)
    print(json.dumps({"event": "listening", "port": stub.port, "base_url": stub.base_url}), flush=True)
    try:
        stub.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
