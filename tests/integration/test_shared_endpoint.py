"""One endpoint shared by many callers: named keys from a file the proxy re-reads (swapped the way the
kubelet swaps a Secret volume), each key's limits with OpenAI's headers, its models, and its tokens
counted as the model billed them — with the real codex app-server and the scripted model; the
fairness of the limits under load with codex-fake-worker."""
import json
import os
import re
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import SOURCE_DIR, Proxy, ProxyTestCase, RealWorker, REAL_READY_TIMEOUT, wait_until
from secret_volume import write_atomically

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "python", "site-packages"))
import openai  # noqa: E402

KEY_A = "sk-team-a-4f1b2c3d4e5f60718293"
KEY_B = "sk-team-b-0a9b8c7d6e5f40312213"
KEY_C = "sk-team-c-77aa66bb55cc44dd3322"


def keys_yaml(*entries):
    return "keys:\n" + "".join(f"- {json.dumps(e)}\n" for e in entries)


def scrape(proxy, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, body = proxy.request("GET", "/metrics", headers=headers)
    return status, body.decode()


def metric(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class SharedEndpointTest(unittest.TestCase):
    """One real proxy whose keys live in a Secret-like volume the test rewrites."""

    @classmethod
    def setUpClass(cls):
        cls.worker = RealWorker()
        cls.volumes = tempfile.TemporaryDirectory(prefix="cxp-secret-volumes-")
        cls.keys_dir = os.path.join(cls.volumes.name, "api-keys")
        cls.metrics_dir = os.path.join(cls.volumes.name, "metrics-token")
        cls.admin_dir = os.path.join(cls.volumes.name, "admin-token")
        cls.write_keys(keys_yaml({"name": "team-a", "key": KEY_A},
                                 {"name": "team-b", "key": KEY_B, "models": ["gpt-5"],
                                  "limits": {"requestsPerMinute": 3}}))
        write_atomically(cls.metrics_dir, {"token": ("metrics-token-1\n", 0o440)})
        write_atomically(cls.admin_dir, {"token": ("admin-token-1", 0o440)})
        cls.proxy = Proxy(env=cls.worker.env(
            PROXY_API_KEYS_FILE=os.path.join(cls.keys_dir, "keys.yaml"),
            PROXY_METRICS_TOKEN_FILE=os.path.join(cls.metrics_dir, "token"),
            PROXY_ADMIN_TOKEN_FILE=os.path.join(cls.admin_dir, "token"),
            PROXY_MODEL_ALIASES="fast",
            PROXY_SECRET_FILES_POLL_MS="200", PROXY_TOKEN_ROTATION_GRACE_S="3"), codex_bin=None)
        cls.proxy.wait_ready(timeout=REAL_READY_TIMEOUT)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()
        cls.worker.close()
        cls.volumes.cleanup()

    @classmethod
    def write_keys(cls, text):
        write_atomically(cls.keys_dir, {"keys.yaml": (text, 0o440)})

    def chat(self, key, content="hi", **extra):
        body = {"messages": [{"role": "user", "content": content}], **extra}
        status, headers, raw = self.proxy.request(
            "POST", "/v1/chat/completions", body=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}, timeout=60)
        return status, headers, json.loads(raw)

    def test_tokens_are_counted_per_key_as_the_model_billed_them_every_model_call_of_a_turn(self):
        _, before = scrape(self.proxy, "metrics-token-1")
        billed_before = len(self.worker.stub.events("billed"))
        # Two model calls in one turn: an undeclared function, refused by codex, then the answer.
        status, _, body = self.chat(KEY_A, "[[call:nope:{}]]")
        self.assertEqual(status, 200, body)
        calls = [e["usage"] for e in self.worker.stub.events("billed")[billed_before:]]
        self.assertEqual(len(calls), 2, "the turn called the model twice")
        usage = body["usage"]
        self.assertEqual(usage["prompt_tokens"], sum(c["input_tokens"] for c in calls))
        self.assertEqual(usage["completion_tokens"], sum(c["output_tokens"] for c in calls))
        self.assertEqual(usage["total_tokens"], sum(c["total_tokens"] for c in calls))
        _, after = scrape(self.proxy, "metrics-token-1")
        for kind, field in (("input", "input_tokens"), ("output", "output_tokens")):
            self.assertEqual(metric(after, "codex_tokens_total", key="team-a", model="gpt-5", type=kind)
                             - metric(before, "codex_tokens_total", key="team-a", model="gpt-5", type=kind),
                             sum(c[field] for c in calls), kind)
        self.assertGreater(metric(after, "codex_http_requests_total", key="team-a", route="/v1/chat/completions"), 0)
        request_id = body["id"].removeprefix("chatcmpl-")
        line = wait_until(lambda: next((l for l in self.proxy.events("request_completed")
                                        if l["request_id"] == request_id), None), 5, message="the request's log line")
        self.assertEqual(line["key"], "team-a")
        self.assertEqual(line["usage"]["input_tokens"], usage["prompt_tokens"])
        self.assertNotIn(KEY_A, self.proxy.raw_log())

    def test_a_keys_limit_is_a_429_with_openais_headers_and_never_touches_another_key(self):
        statuses = []
        for _ in range(4):
            status, headers, body = self.chat(KEY_B, "[[reply:ok]]")
            statuses.append(status)
            self.assertEqual(headers["x-ratelimit-limit-requests"], "3")
            self.assertIn("x-ratelimit-remaining-requests", headers)
            self.assertRegex(headers["x-ratelimit-reset-requests"], r"^\d")
        self.assertEqual(statuses, [200, 200, 200, 429])
        self.assertEqual((body["error"]["code"], body["error"]["type"]), ("rate_limit_exceeded", "requests"))
        self.assertGreaterEqual(int(headers["Retry-After"]), 1)
        # team-a has no limits: it is served, and carries no rate-limit headers.
        status, headers, _ = self.chat(KEY_A, "[[reply:ok]]")
        self.assertEqual(status, 200)
        self.assertNotIn("x-ratelimit-limit-requests", headers)
        _, text = scrape(self.proxy, "metrics-token-1")
        self.assertGreaterEqual(metric(text, "codex_ratelimit_refused_total", key="team-b", limit="requests"), 1)

    def test_a_model_the_key_may_not_use_gets_openais_error_and_models_lists_its_own(self):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{self.proxy.port}/v1", api_key=KEY_B, max_retries=0)
        self.assertEqual([m.id for m in client.models.list()], ["gpt-5"])
        with self.assertRaises(openai.NotFoundError) as refused:
            client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(refused.exception.code, "model_not_found")
        everything = openai.OpenAI(base_url=f"http://127.0.0.1:{self.proxy.port}/v1", api_key=KEY_A, max_retries=0)
        self.assertEqual([m.id for m in everything.models.list()], ["gpt-5", "fast"])
        with self.assertRaises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{self.proxy.port}/v1", api_key="sk-nobody-000000000",
                          max_retries=0).models.list()

    def test_keys_rotate_under_traffic_without_a_restart_and_no_401_for_a_key_in_force(self):
        pid = self.proxy.readyz()[1]["worker"]["pid"]
        stop = threading.Event()
        unexpected = []

        def traffic():
            while not stop.is_set():
                status, _, raw = self.proxy.request("GET", "/v1/models", headers={"Authorization": f"Bearer {KEY_A}"})
                if status != 200:
                    unexpected.append((status, raw[:200]))
                time.sleep(0.01)

        runner = threading.Thread(target=traffic)
        runner.start()
        try:
            # A second key comes in; then the first key rotates out... but team-a stays in force
            # throughout, so its traffic never sees a 401.
            self.write_keys(keys_yaml({"name": "team-a", "key": KEY_A}, {"name": "team-c", "key": KEY_C},
                                      {"name": "team-b", "key": KEY_B, "models": ["gpt-5"],
                                       "limits": {"requestsPerMinute": 3}}))
            wait_until(lambda: self.chat(KEY_C, "[[reply:in]]")[0] == 200, 10, message="the new key to work")
            self.write_keys(keys_yaml({"name": "team-a", "key": KEY_A}, {"name": "team-c", "key": KEY_C}))
            wait_until(lambda: self.chat(KEY_B, "[[reply:out]]")[0] == 401, 10, message="the removed key to fail")
            # A broken file: the last good keys stay; the problem names the line.
            self.write_keys("keys:\n- name: team-a\n  key: " + KEY_A + "\n- name: team-a\n  key: " + KEY_C + "\n")
            event = wait_until(lambda: next((l for l in self.proxy.events("secret_file_invalid")), None), 10,
                               message="the bad content reported")
            self.assertIn("line 4: a second key named 'team-a'", event["message"])
            self.assertEqual(self.chat(KEY_C, "[[reply:still]]")[0], 200)
            _, text = scrape(self.proxy, "metrics-token-1")
            self.assertEqual(metric(text, "codex_secret_file_valid", setting="PROXY_API_KEYS_FILE"), 0)
        finally:
            stop.set()
            runner.join()
            self.write_keys(keys_yaml({"name": "team-a", "key": KEY_A},
                                      {"name": "team-b", "key": KEY_B, "models": ["gpt-5"],
                                       "limits": {"requestsPerMinute": 3}}))
        self.assertEqual(unexpected, [])
        self.assertEqual(self.proxy.readyz()[1]["worker"]["pid"], pid, "nothing restarted")
        self.assertNotIn(KEY_C, self.proxy.raw_log())

    def test_the_metrics_and_admin_tokens_rotate_from_their_files(self):
        self.assertEqual(scrape(self.proxy, "metrics-token-1")[0], 200)
        write_atomically(self.metrics_dir, {"token": ("metrics-token-2", 0o440)})
        wait_until(lambda: scrape(self.proxy, "metrics-token-2")[0] == 200, 10, message="the new metrics token")
        # The previous token is still good for the rotation's grace (3 s here), then refused.
        self.assertEqual(scrape(self.proxy, "metrics-token-1")[0], 200)
        wait_until(lambda: scrape(self.proxy, "metrics-token-1")[0] == 403, 10, message="the old token's grace over")
        write_atomically(self.admin_dir, {"token": ("admin-token-2", 0o440)})

        def maintenance(token):
            return self.proxy.request("GET", "/internal/maintenance", headers={"Authorization": f"Bearer {token}"})[0]
        wait_until(lambda: maintenance("admin-token-2") == 200, 10, message="the new admin token")
        wait_until(lambda: maintenance("admin-token-1") == 403, 10, message="the old admin token's grace over")
        write_atomically(self.metrics_dir, {"token": ("metrics-token-1", 0o440)})
        wait_until(lambda: scrape(self.proxy, "metrics-token-1")[0] == 200, 10, message="the token back")


class FairnessTest(ProxyTestCase):
    def test_two_hundred_clients_over_five_keys_each_key_within_its_limit_and_the_unlimited_one_served(self):
        # codex-fake-worker answers in ~50 ms: the limits, not the worker, decide here.
        folder = tempfile.TemporaryDirectory(prefix="cxp-fair-")
        self.addCleanup(folder.cleanup)
        limits = {"k1": {"requestsPerMinute": 30}, "k2": {"requestsPerMinute": 60},
                  "k3": {"concurrentTurns": 2}, "k4": {"tokensPerMinute": 200}, "k5": {}}
        keys = {name: f"sk-fair-{name}-000000000000" for name in limits}
        path = os.path.join(folder.name, "keys.json")
        with open(path, "w") as f:
            json.dump([{"name": n, "key": keys[n], "limits": limits[n]} for n in limits], f)
        proxy = self.start_proxy(env={"PROXY_API_KEYS_FILE": path, "WORKER_MAX_CONCURRENCY": "32",
                                      "PROXY_QUEUE_MAX": "400", "FAKE_CODEX_TOKEN_DELAY_MS": "10"})
        proxy.wait_ready()
        results = {name: [] for name in limits}
        in_flight = {name: 0 for name in limits}
        peak = {name: 0 for name in limits}
        lock = threading.Lock()

        def client(index):
            name = f"k{index % 5 + 1}"
            for _ in range(3):
                with lock:
                    in_flight[name] += 1
                    peak[name] = max(peak[name], in_flight[name])
                started = time.monotonic()
                status, _, _ = proxy.request("POST", "/v1/chat/completions",
                                             body=json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {keys[name]}"}, timeout=60)
                with lock:
                    in_flight[name] -= 1
                    results[name].append((status, time.monotonic() - started))

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=200) as pool:
            list(pool.map(client, range(200)))
        minutes = (time.monotonic() - started) / 60  # what the buckets refilled meanwhile
        ok = {name: sum(1 for s, _ in r if s == 200) for name, r in results.items()}
        refused = {name: sum(1 for s, _ in r if s == 429) for name, r in results.items()}
        for name in limits:
            self.assertEqual(ok[name] + refused[name], 120, (name, results[name][:5]))
        # Requests: a full bucket, plus what it refilled while the test ran.
        self.assertLessEqual(ok["k1"], 30 + 30 * minutes + 1)
        self.assertLessEqual(ok["k2"], 60 + 60 * minutes + 1)
        self.assertGreater(ok["k1"], 0)
        self.assertGreater(refused["k1"], 0)
        # Tokens are charged when a turn ends, and a request is admitted while the minute is not
        # used up: a key overshoots by at most the turns it has in flight.
        _, text = scrape(proxy)
        used = metric(text, "codex_tokens_total", key="k4", type="input") + \
            metric(text, "codex_tokens_total", key="k4", type="output")
        per_turn = used / max(1, ok["k4"])
        self.assertLessEqual(used, 200 + 200 * minutes + peak["k4"] * per_turn + 1)
        self.assertGreater(refused["k4"], 0)
        self.assertGreater(refused["k3"], 0)
        # The unlimited key: every request served, none refused, in its own time.
        self.assertEqual((ok["k5"], refused["k5"]), (120, 0))
        latencies = sorted(t for _, t in results["k5"])
        self.assertLess(latencies[int(len(latencies) * 0.95)], 10, "the unlimited key kept its latency")
        self.assertEqual(metric(text, "codex_ratelimit_refused_total", key="k5"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
