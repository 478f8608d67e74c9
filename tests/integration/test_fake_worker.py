"""codex-fake-worker speaks the app-server protocol, strict where the real server is strict."""
import json
import os
import subprocess
import tempfile
import threading
import queue
import unittest

from harness import FAKE_WORKER


class FakeWorker:
    def __init__(self, env=None):
        full = {"PATH": os.environ.get("PATH", ""), **(env or {})}
        self.process = subprocess.Popen([FAKE_WORKER, "app-server", "-c", "model=x"], env=full,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.messages = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 1

    def _read(self):
        for line in self.process.stdout:
            self.messages.put(json.loads(line))
        self.messages.put(None)

    def send(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def request(self, method, params=None):
        request_id = self.next_id
        self.next_id += 1
        self.send({"id": request_id, "method": method, "params": params or {}})
        return request_id

    def next(self, timeout=5):
        return self.messages.get(timeout=timeout)

    def until(self, predicate, timeout=5):
        seen = []
        while True:
            message = self.next(timeout)
            if message is None:
                raise AssertionError(f"worker exited; seen {seen}")
            seen.append(message)
            if predicate(message):
                return message, seen

    def handshake(self):
        request_id = self.request("initialize", {"clientInfo": {"name": "t", "version": "1"}})
        reply = self.next()
        assert reply["id"] == request_id and "result" in reply, reply
        self.send({"method": "initialized"})

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)


class FakeWorkerProtocolTest(unittest.TestCase):
    def start(self, env=None):
        worker = FakeWorker(env)
        self.addCleanup(worker.close)
        return worker

    def test_requests_before_the_handshake_get_32600(self):
        w = self.start()
        w.request("thread/start", {"cwd": "/"})
        self.assertEqual(w.next()["error"]["code"], -32600)
        w.request("initialize", {"clientInfo": {"name": "t", "version": "1"}})
        self.assertIn("result", w.next())
        w.request("thread/start", {"cwd": "/"})  # initialize answered, `initialized` not yet sent
        self.assertEqual(w.next()["error"]["code"], -32600)
        w.send({"method": "initialized"})
        w.request("initialize", {"clientInfo": {"name": "t", "version": "1"}})
        self.assertEqual(w.next()["error"]["message"], "Already initialized")

    def test_a_turn_streams_deltas_usage_and_completion(self):
        w = self.start({"FAKE_CODEX_REPLY": "one two three"})
        w.handshake()
        tid = w.request("thread/start", {"cwd": "/", "approvalPolicy": "never", "sandbox": "read-only",
                                         "ephemeral": True})
        reply, _ = w.until(lambda m: m.get("id") == tid)
        thread_id = reply["result"]["thread"]["id"]
        turn_req = w.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]})
        done, seen = w.until(lambda m: m.get("method") == "turn/completed")
        turn_reply = next(m for m in seen if m.get("id") == turn_req)
        turn_id = turn_reply["result"]["turn"]["id"]
        deltas = [m["params"]["delta"] for m in seen if m.get("method") == "item/agentMessage/delta"]
        self.assertEqual("".join(deltas), "one two three")
        self.assertTrue(all(m["params"]["turnId"] == turn_id for m in seen
                            if m.get("method") == "item/agentMessage/delta"))
        usage = next(m for m in seen if m.get("method") == "thread/tokenUsage/updated")
        self.assertEqual(usage["params"]["tokenUsage"]["last"]["outputTokens"], 3)
        self.assertEqual(done["params"]["turn"]["status"], "completed")
        self.assertNotIn("jsonrpc", done)

    def test_interrupt_ends_a_hanging_turn(self):
        with tempfile.NamedTemporaryFile(delete=False) as log:
            pass
        self.addCleanup(os.remove, log.name)
        w = self.start({"FAKE_CODEX_HANG_TURNS": "1", "FAKE_CODEX_LOG": log.name})
        w.handshake()
        w.request("thread/start", {"cwd": "/"})
        thread_id = w.until(lambda m: "result" in m)[0]["result"]["thread"]["id"]
        w.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "x"}]})
        turn_id = w.until(lambda m: "result" in m)[0]["result"]["turn"]["id"]
        w.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        done, _ = w.until(lambda m: m.get("method") == "turn/completed")
        self.assertEqual(done["params"]["turn"]["status"], "interrupted")
        with open(log.name) as f:
            self.assertIn("turn/interrupt", f.read().split())
        # The next turn is not hung.
        w.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "y"}]})
        done, _ = w.until(lambda m: m.get("method") == "turn/completed")
        self.assertEqual(done["params"]["turn"]["status"], "completed")

    def test_crash_after_turns_exits_mid_stream_with_the_scripted_code(self):
        w = self.start({"FAKE_CODEX_CRASH_AFTER_TURNS": "1", "FAKE_CODEX_EXIT_CODE": "7",
                        "FAKE_CODEX_REPLY": "a b c d e f"})
        w.handshake()
        w.request("thread/start", {"cwd": "/"})
        thread_id = w.until(lambda m: "result" in m)[0]["result"]["thread"]["id"]
        w.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "x"}]})
        w.until(lambda m: m.get("method") == "turn/completed")
        w.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "x"}]})
        seen = []
        while (m := w.next()) is not None:
            seen.append(m)
        self.assertTrue(any(m.get("method") == "item/agentMessage/delta" for m in seen))
        self.assertFalse(any(m.get("method") == "turn/completed" for m in seen))
        self.assertEqual(w.process.wait(timeout=5), 7)

    def test_unknown_methods_and_bad_json_get_errors(self):
        w = self.start()
        w.handshake()
        w.request("no/such", {})
        self.assertEqual(w.next()["error"]["code"], -32601)
        w.process.stdin.write("{broken\n")
        w.process.stdin.flush()
        reply = w.next()
        self.assertEqual(reply["error"]["code"], -32700)
        self.assertIsNone(reply["id"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
