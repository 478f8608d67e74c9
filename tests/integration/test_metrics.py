"""/metrics: the series, bounded labels, agreement with /readyz, and access control."""
import http.client
import json
import os
import random
import re
import signal
import string
import tempfile
import unittest

from harness import SOURCE_DIR, ProxyTestCase, wait_until

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        labels = dict(LABEL.findall(match.group(2) or ""))
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def value(samples, name, **labels):
    found = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    return sum(found) if found else None


class MetricsTest(ProxyTestCase):
    def scrape(self, proxy, headers=None):
        status, _, body = proxy.request("GET", "/metrics", headers=headers)
        self.assertEqual(status, 200, body)
        return parse_metrics(body.decode())

    def test_restart_counter_equals_readyz_restarts_total_after_crashes(self):
        proxy = self.start_proxy(env={"WORKER_BACKOFF_INITIAL_MS": "20", "WORKER_BACKOFF_MAX_MS": "40"})
        for crash in range(1, 4):
            pid = proxy.wait_ready()["worker"]["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: proxy.readyz()[1]["worker"]["restarts_total"] == crash, 3, message=f"crash {crash}")
        proxy.wait_ready()
        samples = self.scrape(proxy)
        self.assertEqual(value(samples, "codex_worker_restarts_total"), proxy.readyz()[1]["worker"]["restarts_total"])
        self.assertEqual(value(samples, "codex_worker_restarts_total"), 3)
        self.assertEqual(value(samples, "codex_worker_ready"), 1)

    def test_random_paths_and_models_leave_every_label_with_a_small_fixed_set(self):
        proxy = self.start_proxy()
        proxy.wait_ready()
        rng = random.Random(7)
        for i in range(1000):
            junk = "".join(rng.choice(string.ascii_letters + "/-_.%") for _ in range(rng.randint(1, 40)))
            if i % 2:
                proxy.request(rng.choice(["GET", "POST", "DELETE", "PATCH"]), "/" + junk)
            else:
                body = json.dumps({"model": junk, "messages": [{"role": "user", "content": "x"}]})
                proxy.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        samples = self.scrape(proxy)
        seen = {}
        for name, labels, _ in samples:
            if name.startswith("codex_http_"):
                for key, val in labels.items():
                    seen.setdefault(key, set()).add(val)
        self.assertLessEqual(seen["route"], {"/v1/chat/completions", "/v1/models", "/livez", "/readyz", "/healthz",
                                             "/metrics", "/internal/maintenance", "other"})
        self.assertLessEqual(seen["method"], {"GET", "POST", "other"})
        self.assertLessEqual(seen["status_family"], {"1xx", "2xx", "3xx", "4xx", "5xx", "other"})
        self.assertLessEqual(seen["model"], {"gpt-5", "other", "none"})
        self.assertIn("other", seen["model"])
        self.assertLessEqual(len(seen.get("le", set())), 15)
        self.assertEqual(value(samples, "codex_http_requests_total", route="other"), 500)

    def test_maintenance_and_stream_gauges_follow_the_state(self):
        proxy = self.start_proxy(env={"PROXY_ADMIN_TOKEN": "admin-token-xyz", "FAKE_CODEX_HANG_TURNS": "1"})
        proxy.wait_ready()
        self.assertEqual(value(self.scrape(proxy), "codex_maintenance_mode"), 0)
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("POST", "/v1/chat/completions", headers={"Content-Type": "application/json"},
                     body=json.dumps({"stream": True, "messages": [{"role": "user", "content": "x"}]}))
        wait_until(lambda: value(self.scrape(proxy), "codex_streams_active") == 1, 20, message="one open stream")
        conn.close()
        wait_until(lambda: value(self.scrape(proxy), "codex_streams_active") == 0, 20, message="no open stream")
        proxy.request("POST", "/internal/maintenance", body=json.dumps({"enabled": True}),
                      headers={"Authorization": "Bearer admin-token-xyz", "Content-Type": "application/json"})
        self.assertEqual(value(self.scrape(proxy), "codex_maintenance_mode"), 1)
        # The requests maintenance refuses are counted apart, so the 5xx alert can leave them out.
        self.assertEqual(value(self.scrape(proxy), "codex_maintenance_refused_total"), 0)
        for _ in range(3):
            status, _, _ = proxy.request("POST", "/v1/chat/completions", headers={"Content-Type": "application/json"},
                                         body=json.dumps({"messages": [{"role": "user", "content": "x"}]}))
            self.assertEqual(status, 503)
        samples = self.scrape(proxy)
        self.assertEqual(value(samples, "codex_maintenance_refused_total"), 3)
        self.assertEqual(value(samples, "codex_http_requests_total", route="/v1/chat/completions", status_family="5xx"), 3)

    def test_the_load_signal_slots_queue_waits_and_refusals_by_reason(self):
        proxy = self.start_proxy(env={"WORKER_MAX_CONCURRENCY": "1", "PROXY_QUEUE_MAX": "1",
                                      "PROXY_QUEUE_TIMEOUT_MS": "1500", "FAKE_CODEX_HANG_TURNS": "all",
                                      "PROXY_ADMIN_TOKEN": "admin-token-load"})
        proxy.wait_ready()
        samples = self.scrape(proxy)
        self.assertEqual(value(samples, "codex_turn_slots"), 1)
        self.assertEqual(value(samples, "codex_turns_in_flight"), 0)
        for reason in ("maintenance", "rate_limit_exceeded", "queue_full", "queue_timeout", "worker_not_ready"):
            self.assertEqual(value(samples, "codex_admission_refused_total", reason=reason), 0, reason)
        body = json.dumps({"messages": [{"role": "user", "content": "x"}]})
        headers = {"Content-Type": "application/json"}
        # One turn holds the only slot (it hangs), the next waits, the third finds the queue full.
        holding = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
        self.addCleanup(holding.close)
        holding.request("POST", "/v1/chat/completions", body=body, headers=headers)
        wait_until(lambda: value(self.scrape(proxy), "codex_turns_in_flight") == 1, 10, message="a turn in flight")
        waiting = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
        self.addCleanup(waiting.close)
        waiting.request("POST", "/v1/chat/completions", body=body, headers=headers)
        wait_until(lambda: value(self.scrape(proxy), "codex_queue_depth") == 1, 10, message="a request queued")
        self.assertEqual(proxy.readyz()[1]["capacity"], {"in_flight": 1, "slots": 1, "queued": 1, "queue_max": 1})
        status, _, raw = proxy.request("POST", "/v1/chat/completions", body=body, headers=headers)
        self.assertEqual((status, json.loads(raw)["error"]["code"]), (429, "queue_full"))
        response = waiting.getresponse()  # its wait runs out
        self.assertEqual((response.status, json.loads(response.read())["error"]["code"]), (429, "queue_timeout"))
        proxy.request("POST", "/internal/maintenance", body=json.dumps({"enabled": True}),
                      headers={"Authorization": "Bearer admin-token-load", "Content-Type": "application/json"})
        self.assertEqual(proxy.request("POST", "/v1/chat/completions", body=body, headers=headers)[0], 503)
        samples = self.scrape(proxy)
        self.assertEqual(value(samples, "codex_queue_depth"), 0)
        self.assertEqual(value(samples, "codex_turns_in_flight"), 1)
        refused = {l["reason"]: v for n, l, v in samples if n == "codex_admission_refused_total"}
        self.assertEqual(refused, {"maintenance": 1, "rate_limit_exceeded": 0, "queue_full": 1, "queue_timeout": 1,
                                   "worker_not_ready": 0})
        # Two waits observed: none for the first turn, the timeout's for the second (the refused
        # at once are not waits).
        self.assertEqual(value(samples, "codex_queue_wait_ms_count"), 2)
        self.assertGreaterEqual(value(samples, "codex_queue_wait_ms_sum"), 1500)
        self.assertEqual(value(samples, "codex_queue_wait_ms_bucket", le="1"), 1)
        holding.close()  # the client leaves: its slot frees
        wait_until(lambda: value(self.scrape(proxy), "codex_turns_in_flight") == 0, 10, message="the slot freed")

    def test_metrics_token_and_disabling(self):
        proxy = self.start_proxy(env={"PROXY_METRICS_TOKEN": "scrape-token-1"})
        self.assertEqual(proxy.request("GET", "/metrics")[0], 401)
        self.assertEqual(proxy.request("GET", "/metrics", headers={"Authorization": "Bearer nope"})[0], 403)
        self.scrape(proxy, headers={"Authorization": "Bearer scrape-token-1"})
        off = self.start_proxy(env={"PROXY_ENABLE_METRICS": "false"})
        self.assertEqual(off.request("GET", "/metrics")[0], 404)
        exposed = self.start_proxy(env={"PROXY_HOST": "0.0.0.0"})
        settings = {l["setting"] for n, l, v in parse_metrics(exposed.request("GET", "/metrics")[2].decode())
                    if n == "codex_insecure_config"}
        self.assertEqual(settings, {"PROXY_API_KEY", "PROXY_ADMIN_TOKEN", "PROXY_METRICS_TOKEN"})

    def test_every_metric_named_in_the_docs_exists_in_a_live_scrape(self):
        # A key with a limit, from a file: the per-key series exist once a request used them.
        folder = tempfile.TemporaryDirectory(prefix="cxp-metrics-keys-")
        self.addCleanup(folder.cleanup)
        keys = os.path.join(folder.name, "keys.yaml")
        with open(keys, "w") as f:
            f.write("- {name: scraper-test, key: sk-metrics-test-0001, limits: {requestsPerMinute: 1}}\n")
        proxy = self.start_proxy(env={"PROXY_API_KEYS_FILE": keys})
        proxy.wait_ready()
        proxy.request("GET", "/livez")
        # A field the proxy ignores: its counter exists once a request set one; a second request
        # passes the key's limit.
        for _ in range(2):
            proxy.request("POST", "/v1/chat/completions",
                          headers={"Content-Type": "application/json", "Authorization": "Bearer sk-metrics-test-0001"},
                          body=json.dumps({"messages": [{"role": "user", "content": "x"}], "temperature": 0.2}))
        names = {n for n, _, _ in self.scrape(proxy)}
        names |= {n.rsplit("_", 1)[0] for n in names if n.endswith(("_bucket", "_sum", "_count"))}
        with open(os.path.join(SOURCE_DIR, "docs/metrics-and-alerts.md")) as doc:
            documented = set(re.findall(r"`(codex_[a-z_]+)", doc.read()))
        self.assertTrue(documented)
        self.assertEqual(documented - names, set(), "documented but not exported")
        self.assertEqual({n for n in names if n.startswith("codex_") and not n.endswith(("_bucket", "_sum", "_count"))}
                         - documented, set(), "exported but not documented")
        # Every metric named anywhere in docs/ (runbooks, rules, dashboard) exists too.
        mentioned = set()
        for folder, _, files in os.walk(os.path.join(SOURCE_DIR, "docs")):
            for name in files:
                if name.endswith((".md", ".yaml", ".json")):
                    with open(os.path.join(folder, name)) as f:
                        mentioned |= set(re.findall(r"\b(codex_[a-z_]+[a-z])\b", f.read()))
        # Not metrics: the name codex gives every output schema (api.md, structured outputs) and
        # the /healthz field and build_info label with the worker's version.
        mentioned -= {"codex_output_schema", "codex_version"}
        self.assertEqual(mentioned - names, set(), "named in docs/ but not exported")


class SmokeScriptTest(ProxyTestCase):
    def test_smoke_script_passes_on_a_healthy_proxy_and_fails_clearly_otherwise(self):
        import subprocess
        proxy = self.start_proxy(env={"PROXY_API_KEY": "sk-smoke-0123456789", "PROXY_METRICS_TOKEN": "m-token-1"})
        proxy.wait_ready()
        script = os.path.join(SOURCE_DIR, "scripts/smoke.sh")
        env = {**os.environ, "PROXY_API_KEY": "sk-smoke-0123456789", "PROXY_METRICS_TOKEN": "m-token-1"}
        ok = subprocess.run([script, f"http://127.0.0.1:{proxy.port}", f"http://127.0.0.1:{proxy.ops_port}"], env=env, capture_output=True,
                            text=True, timeout=60)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("restart count agrees", ok.stdout)
        env.pop("PROXY_METRICS_TOKEN")
        bad = subprocess.run([script, f"http://127.0.0.1:{proxy.port}", f"http://127.0.0.1:{proxy.ops_port}"], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("FAIL  /metrics has no codex_worker_restarts_total", bad.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
