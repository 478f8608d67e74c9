"""The app-server protocol of the pinned codex, as its own JSON Schema, and a validator of recorded
JSON-RPC traffic (tests/pylib/rpc_tap.py) against it.

`codex app-server generate-json-schema --out DIR` prints the schema of the installed version: the
unions ClientRequest, ClientNotification, ServerNotification and ServerRequest, and one
`<Method>Response.json` per request (v1/ for `initialize`, v2/ for the rest)."""
import json
import os
import subprocess
import tempfile

import jsonschema

from proxy_process import REAL_CODEX


def generate_schema(directory=None):
    """Runs the pinned codex's schema generator, with the experimental API codex-proxy opts into
    (dynamic tools, injected items, raw response events); returns the directory."""
    directory = directory or tempfile.mkdtemp(prefix="cxp-codex-schema-")
    subprocess.run([REAL_CODEX, "app-server", "generate-json-schema", "--out", directory, "--experimental"],
                   check=True, capture_output=True, timeout=120)
    return directory


# Answers to the worker's requests, whose schemas are named after the request, not the method.
SERVER_REQUEST_RESPONSES = {"item/tool/call": "DynamicToolCallResponse.json",
                            "item/tool/requestUserInput": "ToolRequestUserInputResponse.json"}


def response_file(method):
    """`thread/start` → v2/ThreadStartResponse.json, `thread/inject_items` →
    v2/ThreadInjectItemsResponse.json, `initialize` → v1/InitializeResponse.json."""
    if method in SERVER_REQUEST_RESPONSES:
        return SERVER_REQUEST_RESPONSES[method]
    parts = method.replace("_", "/").split("/")  # thread/inject_items → ThreadInjectItems
    name = "".join(part[:1].upper() + part[1:] for part in parts) + "Response.json"
    return os.path.join("v1" if method == "initialize" else "v2", name)


class ProtocolValidator:
    def __init__(self, schema_dir):
        self.dir = schema_dir
        self._validators = {}

    def _validator(self, relative):
        if relative not in self._validators:
            with open(os.path.join(self.dir, relative)) as f:
                schema = json.load(f)
            self._validators[relative] = jsonschema.Draft7Validator(schema)
        return self._validators[relative]

    def _check(self, relative, instance, where, problems):
        if not os.path.exists(os.path.join(self.dir, relative)):
            problems.append(f"{where}: no schema {relative} in this codex version")
            return
        for error in self._validator(relative).iter_errors(instance):
            path = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{where}: {relative} at '{path}': {error.message[:300]}")

    def validate(self, frames, sender, undocumented=()):
        """Validates the frames `sender` ("proxy" or "worker") wrote in a recorded exchange
        (from read_tap). Returns a list of problems, each naming the frame and the schema rule.
        Notifications in `undocumented` (methods the schema does not describe) are passed over."""
        problems = []
        ours = {}    # id → method of the proxy's requests
        theirs = {}  # id → method of the worker's requests
        for n, (direction, frame) in enumerate(frames):
            if "method" in frame and "id" in frame:
                (ours if direction == "to_worker" else theirs)[frame["id"]] = frame["method"]
        for n, (direction, frame) in enumerate(frames):
            if (direction == "to_worker") != (sender == "proxy"):
                continue
            where = f"frame {n} ({direction}: {json.dumps(frame)[:160]})"
            if not isinstance(frame, dict):
                problems.append(f"{where}: not a JSON object")
            elif "method" in frame and "id" in frame:
                union = "ClientRequest.json" if sender == "proxy" else "ServerRequest.json"
                self._check(union, frame, where, problems)
            elif "method" in frame and frame["method"] in undocumented:
                continue
            elif "method" in frame:
                union = "ClientNotification.json" if sender == "proxy" else "ServerNotification.json"
                self._check(union, frame, where, problems)
            elif "id" in frame and "result" in frame:
                method = (theirs if sender == "proxy" else ours).get(frame["id"])
                if method is None:
                    problems.append(f"{where}: answers an id nobody asked")
                else:
                    self._check(response_file(method), frame["result"], where, problems)
            elif "id" in frame and "error" in frame:
                self._check("JSONRPCErrorError.json", frame["error"], where, problems)
            else:
                problems.append(f"{where}: neither a request, a notification nor a response")
        return problems
