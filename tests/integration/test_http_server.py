"""The HTTP server's contract and the proxy's handling of bad input (env, worker output, requests)."""
import json
import os
import socket
import struct
import subprocess
import time
import unittest

from harness import PROXY, FAKE_WORKER, ProxyTestCase, wait_until


class StartupConfigTest(unittest.TestCase):
    def run_proxy(self, env):
        full = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "PROXY_OPS_PORT": "0", "CODEX_BIN": FAKE_WORKER,
                **env}
        return subprocess.run([PROXY], env=full, capture_output=True, timeout=10, text=True)

    def test_a_malformed_number_stops_startup_naming_the_variable(self):
        result = self.run_proxy({"WORKER_BACKOFF_MAX_MS": "abc"})
        self.assertEqual(result.returncode, 2)
        self.assertIn("WORKER_BACKOFF_MAX_MS", result.stderr)
        self.assertIn("'abc'", result.stderr)
        event = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(event["event"], "config_invalid")
        self.assertIn("WORKER_BACKOFF_MAX_MS", event["message"])

    def test_backoff_max_below_initial_stops_startup(self):
        result = self.run_proxy({"WORKER_BACKOFF_INITIAL_MS": "1000", "WORKER_BACKOFF_MAX_MS": "10"})
        self.assertEqual(result.returncode, 2)
        self.assertIn("WORKER_BACKOFF_MAX_MS", result.stderr)

    def test_a_bad_host_and_a_taken_port_stop_startup_with_the_address(self):
        result = self.run_proxy({"PROXY_HOST": "not-an-ip"})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("PROXY_HOST", result.stderr)
        for variable in ("PORT", "PROXY_OPS_PORT"):  # the API's port and the ops port
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                port = taken.getsockname()[1]
                result = self.run_proxy({variable: str(port), "PROXY_HOST": "127.0.0.1"})
            self.assertNotEqual(result.returncode, 0, variable)
            self.assertIn(f"127.0.0.1:{port}", result.stderr)

    def test_the_ops_port_must_differ_from_the_api_port(self):
        result = self.run_proxy({"PORT": "18080", "PROXY_OPS_PORT": "18080"})
        self.assertEqual(result.returncode, 2)
        self.assertIn("PROXY_OPS_PORT", result.stderr)
        self.assertIn("PORT (18080)", result.stderr)

    def test_config_file_is_read_and_env_overrides_it(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("worker:\n  backoff:\n    initialMs: 300\n    maxMs: 200\n")
        self.addCleanup(os.remove, f.name)
        full = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "CODEX_BIN": FAKE_WORKER}
        result = subprocess.run([PROXY, "--config", f.name], env=full, capture_output=True, timeout=10, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("WORKER_BACKOFF_MAX_MS", result.stderr)
        result = subprocess.run([PROXY, "--bogus"], env=full, capture_output=True, timeout=10, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--bogus", result.stderr)


class HttpContractTest(ProxyTestCase):
    def setUp(self):
        self.proxy = self.start_proxy()
        self.proxy.wait_ready()

    def test_the_api_port_serves_only_v1_and_the_ops_port_everything_else(self):
        # So that a NetworkPolicy can admit Prometheus and the kubelet to one port and callers to the other.
        self.assertNotEqual(self.proxy.port, self.proxy.ops_port)
        for path in ("/readyz", "/livez", "/healthz", "/metrics"):
            self.assertEqual(self.proxy.request("GET", path)[0], 200, path)
            self.assertEqual(self.proxy.request("GET", path, port=self.proxy.port)[0], 404, f"{path} on the API port")
        self.assertEqual(self.proxy.request("POST", "/internal/maintenance", body=b"{}", port=self.proxy.port)[0], 404)
        self.assertEqual(self.proxy.request("GET", "/v1/models")[0], 200)
        self.assertEqual(self.proxy.request("GET", "/v1/models", port=self.proxy.ops_port)[0], 404)
        listening = self.proxy.find_event("listening")
        self.assertEqual((listening["port"], listening["ops_port"]), (self.proxy.port, self.proxy.ops_port))

    def test_unknown_path_gets_the_openai_error_envelope_and_a_request_id(self):
        status, headers, body = self.proxy.request("GET", "/nope")
        self.assertEqual(status, 404)
        error = json.loads(body)["error"]
        self.assertEqual(set(error), {"message", "type", "code"})
        self.assertIn("/nope", error["message"])
        self.assertTrue(headers.get("X-Request-Id"))

    def test_a_path_that_is_not_utf8_gets_the_404_envelope_not_a_500(self):
        # Found by fuzzing: the envelope quotes the path, and raw 0xFF bytes made it throw.
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as s:
            s.sendall(b"GET /\xff\xfe%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 404"), head)
        self.assertEqual(json.loads(body)["error"]["code"], "not_found")
        self.assertFalse(self.proxy.find_event("handler_failed"))

    def test_wrong_method_gets_405_with_allow(self):
        status, headers, body = self.proxy.request("POST", "/readyz", body=b"{}")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET")
        self.assertEqual(json.loads(body)["error"]["code"], "method_not_allowed")

    def test_a_sane_client_request_id_is_honoured_and_a_hostile_one_replaced(self):
        _, headers, _ = self.proxy.request("GET", "/livez", headers={"X-Request-Id": "abc-123.x"})
        self.assertEqual(headers["X-Request-Id"], "abc-123.x")
        _, headers, _ = self.proxy.request("GET", "/livez", headers={"X-Request-Id": "../../etc/passwd"})
        self.assertNotIn("/", headers["X-Request-Id"])
        _, headers, _ = self.proxy.request("GET", "/livez", headers={"X-Request-Id": "a" * 500})
        self.assertLessEqual(len(headers["X-Request-Id"]), 128)

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.ops_port, timeout=5)
        self.addCleanup(conn.close)
        for path in ("/livez", "/readyz", "/healthz", "/readyz?verbose"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            self.assertEqual(response.status, 200, path)

    def test_oversized_body_gets_413_and_malformed_http_gets_400(self):
        status, _, body = self.proxy.request("POST", "/v1/chat/completions", body=b"x" * (17 * 1024 * 1024))
        self.assertEqual(status, 413)  # > 16 MiB
        self.assertIn("PROXY_MAX_BODY_BYTES", json.loads(body)["error"]["message"])
        status, _, body = self.proxy.request("POST", "/internal/maintenance", body=b"x" * (65 * 1024))
        self.assertEqual(status, 413)  # the ops port takes small requests only
        self.assertIn("ops port", json.loads(body)["error"]["message"])
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5) as s:
            s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            reply = s.recv(4096)
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:40])
        self.assertEqual(self.proxy.request("GET", "/livez")[0], 200)

    def test_healthz_sums_up_liveness_and_readiness(self):
        status, body = self.proxy.get_json("/healthz")
        self.assertEqual(status, 200)
        self.assertTrue(body["live"])
        self.assertTrue(body["ready"])
        self.assertEqual(body["worker"]["state"], "ready")

    def test_probes_answer_quickly_under_many_connections(self):
        sockets = [socket.create_connection(("127.0.0.1", self.proxy.port)) for _ in range(200)]  # the API port
        self.addCleanup(lambda: [s.close() for s in sockets])
        started = time.monotonic()
        self.assertEqual(self.proxy.request("GET", "/livez")[0], 200)
        self.assertLess(time.monotonic() - started, 1.0)


class FileDescriptorExhaustionTest(ProxyTestCase):
    def test_running_out_of_file_descriptors_neither_spins_nor_kills_the_server(self):
        proxy = self.start_proxy(max_open_files=64)
        proxy.wait_ready()
        sockets = []
        self.addCleanup(lambda: [s.close() for s in sockets])
        for _ in range(100):
            sockets.append(socket.create_connection(("127.0.0.1", proxy.port), timeout=5))
        time.sleep(0.3)
        before = proxy.cpu_seconds()
        time.sleep(1.0)
        used = proxy.cpu_seconds() - before
        self.assertLess(used, 0.5, f"the accept loop spun: {used:.2f} CPU seconds in 1 s")
        self.assertTrue(proxy.find_event("accept_failed"))
        for s in sockets:
            s.close()
        sockets.clear()
        wait_until(lambda: _livez_ok(proxy), 10, interval=0.1, message="/livez after the fds were freed")


class ConnectionLeakTest(ProxyTestCase):
    """Connections end when their clients end them, whatever the answer was: a refusal answered at
    once races the client's close against our own watch of the socket."""

    def hammer(self, proxy, seconds=3.0, clients=20, stream=False):
        import http.client
        import threading
        answered = []  # list.append is atomic across threads
        stop = time.monotonic() + seconds
        body = json.dumps({"model": "gpt-5", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})

        def client():
            while time.monotonic() < stop:
                conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
                conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                conn.close()  # keep-alive was offered: the proxy waits for a next request, then sees EOF
                answered.append(response.status)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return {status: answered.count(status) for status in set(answered)}

    def assert_fds_return(self, proxy, baseline, statuses):
        # A leaked connection would stay in CLOSE_WAIT until the 60 s keep-alive idle timeout.
        try:
            wait_until(lambda: _open_fds(proxy) <= baseline, 10, interval=0.2)
        except AssertionError:
            self.fail(f"codex-proxy holds {_open_fds(proxy)} sockets ({_close_wait(proxy)} connections in "
                      f"CLOSE_WAIT), {baseline} before {statuses}")

    def test_refusals_answered_at_once_leave_no_connection_behind(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_HANDSHAKE_FAIL": "hang"})
        wait_until(lambda: proxy.find_event("listening"), 10)
        baseline = _open_fds(proxy)
        statuses = self.hammer(proxy)
        self.assertEqual(set(statuses), {503}, statuses)
        self.assertGreater(statuses[503], 500)
        self.assertEqual(proxy.request("GET", "/livez")[0], 200)
        self.assert_fds_return(proxy, baseline, statuses)

    def test_answers_and_streams_leave_no_connection_behind(self):
        proxy = self.start_proxy()
        proxy.wait_ready()
        baseline = _open_fds(proxy)
        statuses = self.hammer(proxy, seconds=2.0, clients=10, stream=False)
        statuses_stream = self.hammer(proxy, seconds=2.0, clients=10, stream=True)
        self.assertEqual(set(statuses) | set(statuses_stream), {200}, (statuses, statuses_stream))
        self.assert_fds_return(proxy, baseline, (statuses, statuses_stream))


def _open_fds(proxy):
    """The proxy's open sockets (its connections and listener). Pipes are left out: the worker's
    come and go as the supervisor restarts it, which is not what these tests measure."""
    fd_dir = f"/proc/{proxy.process.pid}/fd"
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            count += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
        except FileNotFoundError:
            pass
    return count


def _close_wait(proxy):
    try:
        out = subprocess.run(["ss", "-tanp", "state", "close-wait"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "?"
    return sum(1 for line in out.splitlines() if f"pid={proxy.process.pid}," in line)


def _livez_ok(proxy):
    try:
        return proxy.request("GET", "/livez", timeout=1)[0] == 200
    except OSError:
        return False


class ClientGoneOnWriteTest(ProxyTestCase):
    def test_a_client_whose_reset_is_seen_by_a_write_is_gone_for_the_turn_too(self):
        # Found by the sanitized run: a client that resets while a write is pending is seen by the
        # write, not by the read that watches for it; the turn must hear it all the same (before,
        # it held its stream and worker slot until the turn ended — never, for a hung turn).
        # Here the watching read is stopped on purpose: 70 KiB pipelined behind the request.
        proxy = self.start_proxy(env={"FAKE_CODEX_HANG_TURNS": "1", "PROXY_SSE_KEEPALIVE_MS": "200"})
        proxy.wait_ready()
        body = json.dumps({"stream": True, "messages": [{"role": "user", "content": "x"}]}).encode()
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body + b"x" * (70 * 1024))
        s.recv(4096)  # the stream's head: the turn runs
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset
        wait_until(lambda: proxy.find_event("client_disconnected"), 20, interval=0.05,
                   message="the turn to hear that its client is gone")
        status, _, metrics = proxy.request("GET", "/metrics")
        self.assertIn(b"\ncodex_streams_active 0\n", metrics)


class WorkerGarbageTest(ProxyTestCase):
    def test_garbage_and_oversized_worker_lines_are_skipped_and_stderr_is_redacted_and_bounded(self):
        proxy = self.start_proxy(env={"FAKE_CODEX_GARBAGE": "1", "PROXY_API_KEY": "hunter2hunter2"})
        body = proxy.wait_ready(timeout=15)
        self.assertEqual(body["worker"]["restarts_total"], 0)
        bad = proxy.events("worker_bad_line")
        reasons = " ".join(e["reason"] for e in bad)
        self.assertIn("not valid JSON", reasons)
        self.assertIn("skipped", reasons)  # the 17 MiB line
        wait_until(lambda: len(proxy.events("worker_stderr")) >= 10, 5, message="stderr log lines")
        time.sleep(0.2)
        stderr_lines = proxy.events("worker_stderr")
        self.assertLess(len(stderr_lines), 200, "stderr logging is not rate-limited")
        raw = proxy.raw_log()
        self.assertNotIn("sk-fakesecret0123456789", raw)
        self.assertNotIn("hunter2hunter2", raw)
        self.assertNotIn("\x1b[", raw)
        self.assertNotIn("\\u001b", raw)
        self.assertTrue(any("[REDACTED]" in e["line"] for e in stderr_lines))
        long_lines = [e["line"] for e in stderr_lines if e["line"].startswith("long line")]
        self.assertEqual(len(long_lines), 1)
        self.assertLessEqual(len(long_lines[0]), 2048 + 1)  # truncated, with an ellipsis


if __name__ == "__main__":
    unittest.main(verbosity=2)
