"""Proxy pods report their supervisor state into the CodexProxy and apply live settings (issue 7).

Real codex-proxy processes play the pods kwok runs, with the pods' ServiceAccount credentials."""
import json
import os
import signal
import subprocess
import time
import unittest

from controller_harness import ControllerTestCase
from kube import kubectl, kubectl_json, wait_until
from pod_fleet import PodFleet


class PodReportTest(ControllerTestCase):
    def setUp(self):
        super().setUp()
        self.controller = self.start_controller()

    def fleet(self, name, **kwargs):
        fleet = PodFleet(self.namespace, name, **kwargs)
        self.addCleanup(fleet.close)
        return fleet

    def columns(self, name):
        line = kubectl("get", "cxp", name, "-n", self.namespace, "--no-headers").stdout.split()
        return {"READY": line[1], "MAINTENANCE": line[2], "RESTARTS": int(line[3]), "STATUS": line[4]}

    def entry(self, name, pod):
        for item in self.get("cxp", name).get("status", {}).get("pods", []):
            if item["name"] == pod:
                return item
        return None

    def test_ready_counts_workers_that_finished_their_handshake_not_before(self):
        self.apply_proxy("slow", replicas=2)
        fleet = self.fleet("slow", worker_env={"FAKE_CODEX_STARTUP_DELAY_MS": "3000"})
        proxies = fleet.wait_pods(2)
        # while the workers start up, the pods report themselves and are not ready
        entries = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(
            self.get("cxp", "slow").get("status", {}).get("pods", [])), 10, interval=0.1, message="2 entries")
        self.assertTrue(all(not e["ready"] for e in entries), entries)
        self.assertTrue(all(e["workerState"] in ("starting", "handshaking") for e in entries), entries)
        self.assertEqual(self.columns("slow")["READY"], "0/2")
        wait_until(lambda: self.columns("slow")["READY"] == "2/2", 20, interval=0.2, message="READY 2/2")
        for proxy in proxies.values():
            self.assertEqual(proxy.readyz()[0], 200)  # reported ready only once /readyz says so
        columns = self.columns("slow")
        self.assertEqual(columns["STATUS"], "Available")
        self.assertEqual(columns["RESTARTS"], 0)

    def test_a_worker_crash_shows_in_the_status_within_2s_and_ready_recovers(self):
        self.apply_proxy("crashy", replicas=2, worker={"backoff": {"initialMs": 2500, "maxMs": 5000}})
        fleet = self.fleet("crashy")
        proxies = fleet.wait_pods(2)
        wait_until(lambda: self.columns("crashy")["READY"] == "2/2", 30, interval=0.2, message="READY 2/2")
        pod, proxy = sorted(proxies.items())[0]
        worker_pid = proxy.readyz()[1]["worker"]["pid"]
        killed = time.monotonic()
        os.kill(worker_pid, signal.SIGKILL)
        entry = wait_until(lambda: (lambda e: e if e and e["restartsTotal"] >= 1 else None)(self.entry("crashy", pod)),
                           2, interval=0.05, message="the restart in the pod's entry")
        self.assertLess(time.monotonic() - killed, 2.0)
        self.assertEqual(entry["workerState"], "backoff")
        self.assertFalse(entry["ready"])
        columns = wait_until(lambda: (lambda c: c if c["READY"] == "1/2" else None)(self.columns("crashy")), 3,
                             interval=0.05, message="READY 1/2")
        self.assertGreaterEqual(columns["RESTARTS"], 1)
        degraded = self.condition("crashy", "Degraded")
        self.assertEqual(degraded["reason"], "WorkerBackoff")
        self.assertIn(pod, degraded["message"])
        wait_until(lambda: self.columns("crashy")["READY"] == "2/2", 15, interval=0.2, message="READY back to 2/2")
        self.assertEqual(self.columns("crashy")["RESTARTS"], 1)
        self.assertEqual(self.condition("crashy", "Degraded")["status"], "False")

    def test_maintenance_by_patch_reaches_every_pod_within_2s_without_restarts(self):
        self.apply_proxy("maint", replicas=2)
        fleet = self.fleet("maint")
        proxies = fleet.wait_pods(2)
        wait_until(lambda: self.columns("maint")["READY"] == "2/2", 30, interval=0.2, message="READY 2/2")
        pids = {name: p.process.pid for name, p in proxies.items()}
        pod_uids = sorted(p["metadata"]["uid"] for p in fleet.running_pods().values())
        for proxy in proxies.values():
            self.assertEqual(proxy.request("GET", "/v1/models")[0], 200)
        patched = time.monotonic()
        kubectl("patch", "cxp", "maint", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"maintenance": {"enabled": True, "retryAfterSeconds": 42}}}))
        for proxy in proxies.values():
            wait_until(lambda: proxy.request("GET", "/v1/models")[0] == 503, 2 - (time.monotonic() - patched),
                       interval=0.02, message="503 on every pod")
        self.assertLess(time.monotonic() - patched, 2.0)
        for proxy in proxies.values():
            status, headers, body = proxy.request("POST", "/v1/chat/completions",
                                                  body=json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}),
                                                  headers={"Content-Type": "application/json"})
            self.assertEqual(status, 503)
            self.assertEqual(headers.get("Retry-After"), "42")
            self.assertTrue(json.loads(body)["error"]["retryable"])
            self.assertEqual(proxy.readyz()[0], 200, "maintenance must not fail readiness")
        wait_until(lambda: self.columns("maint")["MAINTENANCE"] == "True", 10, interval=0.2, message="MAINTENANCE True")
        wait_until(lambda: self.condition("maint", "Maintenance")["message"] == "in force on 2 of 2 pods", 10,
                   interval=0.2, message="both pods report maintenance")
        # nothing restarted: same pods, same processes, no worker restarts
        self.assertEqual(sorted(p["metadata"]["uid"] for p in fleet.running_pods().values()), pod_uids)
        self.assertEqual({name: p.process.pid for name, p in fleet.sync().items()}, pids)
        self.assertEqual(self.columns("maint")["RESTARTS"], 0)
        # every pod applied the new settings generation, then Progressing settles
        generation = int(self.get("configmap", "maint-settings")["data"]["settingsGeneration"])
        wait_until(lambda: all(e["settingsGeneration"] == generation for e in self.get("cxp", "maint")["status"]["pods"]),
                   10, interval=0.2, message="settings generation applied by every pod")
        wait_until(lambda: self.condition("maint", "Progressing")["status"] == "False", 10, interval=0.2,
                   message="Progressing False")
        # every condition was computed for the spec that enabled maintenance
        proxy_object = self.get("cxp", "maint")
        self.assertEqual({c["type"]: c["observedGeneration"] for c in proxy_object["status"]["conditions"]},
                         {t: proxy_object["metadata"]["generation"]
                          for t in ("Available", "Progressing", "Degraded", "Maintenance", "InsecureConfig",
                                    "ServiceMonitor")})
        kubectl("patch", "cxp", "maint", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"maintenance": {"enabled": False}}}))
        for proxy in proxies.values():
            wait_until(lambda: proxy.request("GET", "/v1/models")[0] == 200, 5, interval=0.02, message="service back")
        wait_until(lambda: self.columns("maint")["MAINTENANCE"] == "False", 10, interval=0.2, message="MAINTENANCE False")

    def test_enabling_the_trace_buffer_by_patch_makes_pods_write_traces_without_restart(self):
        self.apply_proxy("traced", replicas=1)
        fleet = self.fleet("traced")
        (pod, proxy), = fleet.wait_pods(1).items()
        proxy.wait_ready()
        pid = proxy.process.pid
        request = json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]})
        headers = {"Content-Type": "application/json", "X-Request-Id": "before-trace"}
        self.assertEqual(proxy.request("POST", "/v1/chat/completions", body=request, headers=headers)[0], 200)
        self.assertFalse(os.path.isdir(fleet.trace_dir(pod)) and os.listdir(fleet.trace_dir(pod)))
        kubectl("patch", "cxp", "traced", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"traceBuffer": {"enabled": True, "maxFiles": 5}}}))
        wait_until(lambda: proxy.find_event("trace_settings_applied"), 5, interval=0.05, message="trace settings applied")
        headers["X-Request-Id"] = "after-trace"
        self.assertEqual(proxy.request("POST", "/v1/chat/completions", body=request, headers=headers)[0], 200)
        files = os.listdir(fleet.trace_dir(pod))
        self.assertEqual(len([f for f in files if f.endswith("-after-trace.json")]), 1, files)
        self.assertEqual(proxy.process.pid, pid)
        self.assertIsNone(proxy.process.poll())

    def test_scaling_down_removes_the_gone_pods_entry_within_10s(self):
        self.apply_proxy("shrink", replicas=2)
        fleet = self.fleet("shrink")
        fleet.wait_pods(2)
        wait_until(lambda: self.columns("shrink")["READY"] == "2/2", 30, interval=0.2, message="READY 2/2")
        kubectl("scale", "cxp", "shrink", "-n", self.namespace, "--replicas=1")
        remaining = wait_until(lambda: (lambda p: p if len(p) == 1 else None)(fleet.running_pods()), 30,
                               interval=0.2, message="one pod left")
        gone_at = time.monotonic()
        fleet.sync()  # the kubelet's part: SIGTERM to the removed pod's process
        wait_until(lambda: [e["name"] for e in self.get("cxp", "shrink")["status"].get("pods", [])] == list(remaining),
                   10, interval=0.2, message="only the remaining pod's entry")
        self.assertLess(time.monotonic() - gone_at, 10 + 1)
        wait_until(lambda: self.columns("shrink")["READY"] == "1/1", 10, interval=0.2, message="READY 1/1")

    def test_a_pods_service_account_reaches_only_its_own_codexproxy(self):
        self.apply_proxy("mine")
        self.apply_proxy("other")
        wait_until(lambda: self.get("configmap", "other-settings", check=False), 30, interval=0.2, message="other's ConfigMap")
        fleet = self.fleet("mine")
        as_pod = {"kubeconfig": fleet.kubeconfig, "check": False}
        patch = json.dumps({"status": {"pods": [{"name": "intruder", "ready": True}]}})
        denied = kubectl("patch", "cxp", "other", "-n", self.namespace, "--subresource=status", "--type", "merge",
                         "-p", patch, **as_pod)
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn("forbidden", denied.stderr.lower())
        denied = kubectl("get", "configmap", "other-settings", "-n", self.namespace, **as_pod)
        self.assertIn("forbidden", denied.stderr.lower())
        denied = kubectl("get", "configmaps", "-n", self.namespace, **as_pod)
        self.assertIn("forbidden", denied.stderr.lower())
        denied = kubectl("patch", "cxp", "mine", "-n", self.namespace, "--type", "merge",
                         "-p", json.dumps({"spec": {"replicas": 5}}), **as_pod)
        self.assertIn("forbidden", denied.stderr.lower())
        # what it may do: read its own settings, write its own status
        self.assertEqual(kubectl("get", "configmap", "mine-settings", "-n", self.namespace, **as_pod).returncode, 0)
        allowed = kubectl("patch", "cxp", "mine", "-n", self.namespace, "--subresource=status", "--type", "json",
                          "-p", json.dumps([{"op": "test", "path": "/metadata/name", "value": "mine"}]), **as_pod)
        self.assertEqual(allowed.returncode, 0, allowed.stderr)


if __name__ == "__main__":
    unittest.main()
