"""The trace buffer: one redacted file per request, atomic, pruned by count and TTL, never failing
the request; and `codex-proxy trace <id>`."""
import base64
import json
import os
import subprocess
import time
import unittest

from harness import PROXY, ProxyTestCase, wait_until

SECRET_KEY = "sk-proxy-key-0123456789abcdef"
SECRET_IN_PROMPT = "sk-live-ABCDEFGH12345678"


def chat(proxy, request_id, content="hello"):
    body = json.dumps({"messages": [{"role": "user", "content": content}]})
    return proxy.request("POST", "/v1/chat/completions", body=body,
                         headers={"Content-Type": "application/json", "X-Request-Id": request_id,
                                  "Authorization": f"Bearer {SECRET_KEY}"})


def metric(proxy, name, **labels):
    _, _, body = proxy.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.split()[-1])
    return None


class TraceBufferTest(ProxyTestCase):
    def start(self, **env):
        proxy = self.start_proxy(env={"PROXY_TRACE_BUFFER": "true", "PROXY_API_KEY": SECRET_KEY, **env})
        proxy.wait_ready()
        self.trace_dir = os.path.join(proxy.workdir.name, env.get("PROXY_TRACE_DIR", ".codex-api/trace-buffer"))
        return proxy

    def files(self):
        if not os.path.isdir(self.trace_dir):
            return []
        return sorted(f for f in os.listdir(self.trace_dir) if not f.startswith("."))

    def test_an_images_data_is_not_traced_only_its_type_and_size(self):
        proxy = self.start()
        data = base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(3000)).decode()
        body = json.dumps({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is it?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]}]})
        status, _, raw = proxy.request("POST", "/v1/chat/completions", body=body, headers={
            "Content-Type": "application/json", "X-Request-Id": "img-1", "Authorization": f"Bearer {SECRET_KEY}"})
        self.assertEqual(status, 200, raw)
        [name] = wait_until(self.files, 5, message="a trace file")
        with open(os.path.join(self.trace_dir, name)) as f:
            trace = f.read()
        self.assertNotIn(data[:200], trace)
        self.assertIn(f"data:image/png;base64,[{len(data)} bytes not traced]", trace)
        self.assertIn("what is it?", trace)

    def test_one_redacted_file_per_request_with_its_frames_and_the_trace_helper_prints_it(self):
        proxy = self.start()
        status, _, _ = chat(proxy, "trace-req-1", content=f"my key is {SECRET_IN_PROMPT}")
        self.assertEqual(status, 200)
        files = wait_until(self.files, 5, message="a trace file")
        self.assertEqual(len(files), 1)
        self.assertTrue(files[0].endswith("-trace-req-1.json"), files[0])
        # prompts and answers: readable by the pod's user only
        self.assertEqual(os.stat(os.path.join(self.trace_dir, files[0])).st_mode & 0o777, 0o600)
        with open(os.path.join(self.trace_dir, files[0])) as f:
            raw = f.read()
        document = json.loads(raw)
        methods = [frame["frame"].get("method") for frame in document["frames"]]
        for expected in ("thread/start", "turn/start", "item/agentMessage/delta", "turn/completed"):
            self.assertIn(expected, methods)
        self.assertNotIn(SECRET_IN_PROMPT, raw)
        self.assertNotIn(SECRET_KEY, raw)
        self.assertIn("[REDACTED]", raw)
        printed = subprocess.run([PROXY, "trace", "trace-req-1", "--dir", self.trace_dir],
                                 capture_output=True, text=True, timeout=10)
        self.assertEqual(printed.returncode, 0, printed.stderr)
        self.assertEqual(json.loads(printed.stdout)["request_id"], "trace-req-1")
        missing = subprocess.run([PROXY, "trace", "nope", "--dir", self.trace_dir],
                                 capture_output=True, text=True, timeout=10)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no trace for request 'nope'", missing.stderr)

    def test_pruned_by_count_and_by_ttl_and_counted(self):
        proxy = self.start(PROXY_TRACE_MAX_FILES="3", PROXY_TRACE_TTL_S="2")
        for i in range(5):
            self.assertEqual(chat(proxy, f"count-{i}")[0], 200)
        # The trace is written before the answer goes out: no waiting needed.
        self.assertEqual(sorted(f.split("-", 1)[1] for f in self.files()),
                         ["count-2.json", "count-3.json", "count-4.json"])
        self.assertEqual(metric(proxy, "codex_trace_buffer_pruned_total", reason="count"), 2)
        self.assertEqual(metric(proxy, "codex_trace_buffer_files"), 3)
        time.sleep(2.5)  # let the kept files outlive the 2 s TTL (the prune runs after each write)
        self.assertEqual(chat(proxy, "fresh")[0], 200)
        wait_until(lambda: self.files() and all("fresh" in f for f in self.files()), 5, message="TTL prune")
        self.assertEqual(metric(proxy, "codex_trace_buffer_pruned_total", reason="ttl"), 3)
        self.assertTrue(any(e["reason"] == "ttl" for e in proxy.events("trace_pruned")))

    def test_a_hostile_request_id_cannot_escape_the_directory(self):
        proxy = self.start()
        self.assertEqual(chat(proxy, "../../../tmp/evil")[0], 200)  # replaced: not a sane id
        self.assertEqual(chat(proxy, "..hidden")[0], 200)  # sane as a header, sanitised as a file name
        files = wait_until(lambda: len(self.files()) == 2 and self.files(), 5, message="2 files")
        for name in files:
            self.assertNotIn("/", name)
            self.assertFalse(name.startswith("."))
        self.assertTrue(any(name.endswith("-_.hidden.json") for name in files), files)

    def test_an_unwritable_directory_is_logged_and_never_fails_the_request(self):
        proxy = self.start_proxy(env={"PROXY_TRACE_BUFFER": "true", "PROXY_TRACE_DIR": "/proc/no-such-dir"})
        proxy.wait_ready()
        status, _, _ = chat(proxy, "unwritable")
        self.assertEqual(status, 200)
        wait_until(lambda: proxy.find_event("trace_write_failed"), 5, message="trace_write_failed")
        self.assertEqual(metric(proxy, "codex_trace_buffer_write_errors_total"), 1)

    def test_off_by_default(self):
        proxy = self.start_proxy()
        proxy.wait_ready()
        self.assertEqual(chat(proxy, "off")[0], 200)
        self.assertFalse(os.path.exists(os.path.join(proxy.workdir.name, ".codex-api")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
