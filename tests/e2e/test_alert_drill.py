"""The alert drill: a real Prometheus (Debian's server, the one promtool comes with) scrapes real
codex-proxy processes and the controller and evaluates the shipped rules; the alerts must fire on
real faults and stay quiet through planned maintenance.

The rules are docs/alerts/codex-proxy.rules.yaml with every duration divided by TIME_SCALE (10 m
windows become 30 s, `for: 1m` becomes 3 s): the same expressions and thresholds, on a clock a test
can wait for. Scrapes and evaluations run every second. The targets carry the labels the operator's
ServiceMonitor gives them (namespace, codexproxy, pod).

Evidence — each alert's pending, firing and cleared times and the queries behind them — is written
to build/alert-drill.md (or $CXP_ALERT_DRILL_OUT); docs/runbooks/alert-drill.md says how to read it
and rerun the drill."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import yaml

from controller_harness import ControllerTestCase
from kube import SOURCE_DIR, wait_until
from prometheus_server import PrometheusServer, require_prometheus
from proxy_process import Proxy
from secret_volume import write_atomically

RULES = os.path.join(SOURCE_DIR, "docs/alerts/codex-proxy.rules.yaml")
TIME_SCALE = 20
ADMIN = "drill-admin-token-0123"
EVIDENCE = os.environ.get("CXP_ALERT_DRILL_OUT", os.path.join(SOURCE_DIR, "build/alert-drill.md"))


def seconds_of(duration):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w)", duration))


def scaled(duration):
    return f"{max(1, round(seconds_of(duration) / TIME_SCALE))}s"


def scaled_rules(text):
    """The shipped rules on a clock TIME_SCALE times faster: range selectors and `for` scaled."""
    rules = yaml.safe_load(text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\d+(?:ms|s|m|h|d|w))\]", lambda m: f"[{scaled(m.group(1))}]", rule["expr"])
            if "for" in rule:
                rule["for"] = scaled(rule["for"])
    return rules


class Prometheus(PrometheusServer):
    """Scrapes the given proxies (and the controller) every second and evaluates the scaled rules."""

    def __init__(self, folder, targets, controller_port=None, credentials_file=None, controller_token=None):
        with open(RULES) as f:
            self.rules = scaled_rules(f.read())
        with open(os.path.join(folder, "rules.yaml"), "w") as f:
            yaml.safe_dump(self.rules, f)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {"job_name": "codex-proxy",
                 "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": labels} for port, labels in targets]},
            ],
        }
        if credentials_file:
            # As the Prometheus Operator renders a ServiceMonitor's token: a file read at each scrape.
            config["scrape_configs"][0]["authorization"] = {"type": "Bearer", "credentials_file": credentials_file}
        if controller_port:
            # As the chart's ServiceMonitor scrapes the controller (--metrics-secure): HTTPS, its
            # self-signed certificate, a token of a ServiceAccount bound to the metrics-reader role.
            token_file = os.path.join(folder, "controller-token")
            with open(token_file, "w") as f:
                f.write(controller_token)
            config["scrape_configs"].append({"job_name": "codexproxy-controller", "scheme": "https",
                                             "tls_config": {"insecure_skip_verify": True},
                                             "authorization": {"type": "Bearer", "credentials_file": token_file},
                                             "static_configs": [{"targets": [f"127.0.0.1:{controller_port}"]}]})
        super().__init__(folder, config)

    def alerts(self, name):
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


class Traffic:
    """Chat completions at a steady rate against some proxies, in a thread, until stopped."""

    def __init__(self, proxies, per_second=20):
        self.proxies, self.interval = proxies, 1.0 / per_second
        self.statuses = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        body = json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": "drill"}]})
        i = 0
        while not self.stopping.is_set():
            proxy = self.proxies[i % len(self.proxies)]
            i += 1
            try:
                status = proxy.request("POST", "/v1/chat/completions", body=body,
                                       headers={"Content-Type": "application/json"}, timeout=10)[0]
            except OSError:
                status = 0
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.stopping.wait(self.interval)

    def stop(self):
        self.stopping.set()
        self.thread.join(15)
        return dict(self.statuses)


class AlertDrillTest(ControllerTestCase):
    def setUp(self):
        super().setUp()
        require_prometheus()
        self.folder = tempfile.mkdtemp(prefix="cxp-drill-")
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.evidence = []
        self.started = time.time()

    def proxy(self, **env):
        base = {"PROXY_ADMIN_TOKEN": ADMIN, "WORKER_BACKOFF_INITIAL_MS": "50", "WORKER_BACKOFF_MAX_MS": "100"}
        proxy = Proxy(env={**base, **env})
        self.addCleanup(proxy.close)
        proxy.wait_ready()
        return proxy

    def note(self, what, **facts):
        at = time.time() - self.started
        self.evidence.append((at, what, facts))

    def wait_alert(self, prometheus, name, state, labels, timeout, present=True):
        """Until alert `name` with `labels` is in `state` (or, present=False, gone); notes when."""
        def matches():
            found = [a for a in prometheus.alerts(name)
                     if all(a["labels"].get(k) == v for k, v in labels.items())]
            if present:
                return next((a for a in found if a["state"] == state), None)
            return not found
        alert = wait_until(matches, timeout, interval=0.5, message=f"{name} {labels} {state if present else 'cleared'}")
        self.note(f"{name} {state if present else 'cleared'}", labels=labels,
                  value=alert.get("value") if isinstance(alert, dict) else None)
        return alert

    def test_restart_storm_and_injected_5xx_fire_and_clear_maintenance_does_not_page(self):
        reader = self.metrics_reader_token()
        controller = self.start_controller(metrics_token=reader)
        demo = [self.proxy(), self.proxy()]
        faulty = self.proxy(FAKE_CODEX_TURN_FAIL="drill: the model is down")
        targets = [(p.ops_port, {"namespace": "drill", "codexproxy": "demo", "pod": f"demo-{i}"})
                   for i, p in enumerate(demo)]
        targets.append((faulty.ops_port, {"namespace": "drill", "codexproxy": "faulty", "pod": "faulty-0"}))
        prometheus = Prometheus(self.folder, targets, controller.metrics_port, controller_token=reader)
        self.addCleanup(prometheus.close)
        self.addCleanup(self.write_evidence, prometheus)  # also when a step fails: how far it got
        wait_until(lambda: len([t for t in prometheus.api("targets")["activeTargets"] if t["health"] == "up"]) == 4,
                   60, interval=0.5, message="every target up (3 proxies and the controller)")
        self.note("targets up", targets=4)

        # 1. A restart storm on one pod: CodexProxyWorkerRestarting fires for that pod, then clears.
        for crash in range(1, 6):
            pid = demo[0].wait_ready()["worker"]["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: demo[0].readyz()[1]["worker"]["restarts_total"] == crash, 10, message=f"crash {crash}")
        demo[0].wait_ready()
        self.note("5 worker crashes on demo-0")
        restart = {"alertname": "CodexProxyWorkerRestarting", "pod": "demo-0", "codexproxy": "demo"}
        self.wait_alert(prometheus, "CodexProxyWorkerRestarting", "firing", restart, 60)
        self.assertEqual([a["labels"]["pod"] for a in prometheus.alerts("CodexProxyWorkerRestarting")], ["demo-0"])
        self.wait_alert(prometheus, "CodexProxyWorkerRestarting", None, restart, 180, present=False)

        # 2. Planned maintenance on every demo pod under steady traffic: only 503s, never a 5xx page.
        for proxy in demo:
            status, _, body = proxy.request("POST", "/internal/maintenance", body=json.dumps({"enabled": True}),
                                            headers={"Authorization": f"Bearer {ADMIN}",
                                                     "Content-Type": "application/json"})
            self.assertEqual(status, 200, body)
        self.note("maintenance on for demo-0 and demo-1, traffic 20 req/s")
        traffic = Traffic(demo)
        five_xx = f'sum(rate(codex_http_requests_total{{codexproxy="demo",status_family="5xx"}}[{scaled("5m")}]))'
        wait_until(lambda: any(float(s["value"][1]) > 1 for s in prometheus.query(five_xx)), 60, interval=0.5,
                   message="Prometheus sees the maintenance 503s as 5xx")
        self.note("maintenance 503s seen", query=five_xx, value=prometheus.query(five_xx)[0]["value"][1])
        quiet_until = time.time() + 2 * seconds_of(scaled("5m")) + seconds_of(scaled("1m"))
        while time.time() < quiet_until:  # the whole 5xx window twice, and its `for`
            self.assertEqual(prometheus.alerts("CodexProxyHigh5xxRatio"), [], "maintenance paged")
            time.sleep(0.5)
        ratio = 'codex:v1_5xx_ratio_5m{codexproxy="demo"}'
        self.assertEqual(prometheus.query(ratio), [], "pods in maintenance are left out of the ratio")
        self.note("no CodexProxyHigh5xxRatio during maintenance", query=ratio, value="no series: every pod left out")
        statuses = traffic.stop()
        self.assertEqual(set(statuses), {503}, statuses)

        # 3. Real failures on another CodexProxy: its 5xx alert fires (for it alone), then clears.
        traffic = Traffic([faulty])
        failing = {"alertname": "CodexProxyHigh5xxRatio", "codexproxy": "faulty"}
        self.wait_alert(prometheus, "CodexProxyHigh5xxRatio", "pending", failing, 60)
        self.wait_alert(prometheus, "CodexProxyHigh5xxRatio", "firing", failing, 60)
        self.assertEqual({a["labels"]["codexproxy"] for a in prometheus.alerts("CodexProxyHigh5xxRatio")}, {"faulty"})
        statuses = traffic.stop()
        self.assertTrue(set(statuses) and all(500 <= s < 600 for s in statuses), statuses)
        self.wait_alert(prometheus, "CodexProxyHigh5xxRatio", None, failing, 120, present=False)

    def test_prometheus_keeps_scraping_through_a_rotation_of_the_metrics_token(self):
        # The token Secret, as the pod's volume (the kubelet's copy) and as Prometheus's file (the
        # Prometheus Operator's copy): the same Secret, each updated on its own schedule.
        pod_volume = os.path.join(self.folder, "pod-metrics-token")
        scraper_file = os.path.join(self.folder, "scraper-token")
        write_atomically(pod_volume, {"token": ("metrics-token-one", 0o440)})
        with open(scraper_file, "w") as f:
            f.write("metrics-token-one")
        proxy = self.proxy(PROXY_METRICS_TOKEN_FILE=os.path.join(pod_volume, "token"),
                           PROXY_SECRET_FILES_POLL_MS="200")
        prometheus = Prometheus(self.folder, [(proxy.ops_port, {"namespace": "drill", "codexproxy": "demo",
                                                            "pod": "demo-0"})], credentials_file=scraper_file)
        self.addCleanup(prometheus.close)
        up = 'up{job="codex-proxy"}'
        wait_until(lambda: [s["value"][1] for s in prometheus.query(up)] == ["1"], 60, interval=0.5,
                   message="the proxy scraped with the first token")
        started = time.time()
        # The Secret is rotated: the pod's copy changes first, the scraper's a few scrapes later.
        write_atomically(pod_volume, {"token": ("metrics-token-two", 0o440)})
        time.sleep(4)
        with open(scraper_file + ".new", "w") as f:
            f.write("metrics-token-two")
        os.replace(scraper_file + ".new", scraper_file)
        time.sleep(4)
        # Every scrape since the rotation began succeeded (the previous token's grace covered the
        # scraper's late copy), and the new token is the one in use.
        window = f"{int(time.time() - started) + 1}s"
        self.assertEqual([s["value"][1] for s in prometheus.query(f"min_over_time({up}[{window}])")], ["1"])
        self.assertGreaterEqual(float(prometheus.query(f"count_over_time({up}[{window}])")[0]["value"][1]), 6)
        self.assertEqual(proxy.request("GET", "/metrics", headers={"Authorization": "Bearer metrics-token-two"})[0], 200)
        self.assertEqual(proxy.readyz()[1]["worker"]["restarts_total"], 0)

    def write_evidence(self, prometheus):
        lines = ["# Alert drill evidence", "",
                 f"Run {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.started))}: "
                 f"docs/alerts/codex-proxy.rules.yaml with every duration divided by {TIME_SCALE}, "
                 "scrape and evaluation every 1 s (tests/e2e/test_alert_drill.py).", "",
                 "| t (s) | event | details |", "|---|---|---|"]
        for at, what, facts in self.evidence:
            lines.append(f"| {at:.1f} | {what} | {json.dumps(facts) if facts else ''} |")
        lines += ["", "Rules as evaluated:", "", "```yaml", yaml.safe_dump(prometheus.rules, width=200).rstrip(), "```", ""]
        os.makedirs(os.path.dirname(EVIDENCE), exist_ok=True)
        with open(EVIDENCE, "w") as f:
            f.write("\n".join(lines))
        print(f"alert drill evidence: {EVIDENCE}")


if __name__ == "__main__":
    unittest.main()
