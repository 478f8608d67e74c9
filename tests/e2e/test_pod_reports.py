"""Proxy pods report their supervisor state and apply live settings (issues 7 and 18).

Each pod keeps a heartbeat Lease named after itself carrying its report; the controller copies the
reports into the CodexProxy's status. Real codex-proxy processes play the pods kwok runs, each with
a ServiceAccount token bound to its pod object, as the kubelet's projected token is."""
import datetime
import json
import os
import re
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
        return {"READY": line[1], "DESIRED": int(line[2]), "CURRENT": int(line[3]), "MAINTENANCE": line[4],
                "RESTARTS": int(line[5]), "STATUS": line[6]}

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
                                    "ServiceMonitor", "Autoscaling")})
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

    def lease(self, pod):
        return self.get("lease", pod, check=False)

    def test_scaling_down_removes_the_gone_pods_entry_and_its_heartbeat_lease(self):
        self.apply_proxy("shrink", replicas=3)
        fleet = self.fleet("shrink")
        fleet.wait_pods(3)
        wait_until(lambda: self.columns("shrink")["READY"] == "3/3", 30, interval=0.2, message="READY 3/3")
        pods = sorted(fleet.proxies)
        for pod in pods:
            lease = self.lease(pod)
            owner, = lease["metadata"]["ownerReferences"]
            self.assertEqual((owner["kind"], owner["name"]), ("Pod", pod))
            self.assertEqual(owner["uid"], self.get("pod", pod)["metadata"]["uid"])
            self.assertEqual(lease["spec"]["holderIdentity"], pod)
        kubectl("scale", "cxp", "shrink", "-n", self.namespace, "--replicas=1")
        remaining = wait_until(lambda: (lambda p: p if len(p) == 1 else None)(fleet.running_pods()), 30,
                               interval=0.2, message="one pod left")
        gone_at = time.monotonic()
        fleet.sync()  # the kubelet's part: SIGTERM to the removed pods' processes
        wait_until(lambda: [e["name"] for e in self.get("cxp", "shrink")["status"].get("pods", [])] == list(remaining),
                   10, interval=0.2, message="only the remaining pod's entry")
        self.assertLess(time.monotonic() - gone_at, 10 + 1)
        wait_until(lambda: self.columns("shrink")["READY"] == "1/1", 10, interval=0.2, message="READY 1/1")
        # the garbage collector deletes the gone pods' Leases (owned by their pods)
        for pod in pods:
            if pod not in remaining:
                wait_until(lambda: self.lease(pod) is None, 60, interval=0.5, message=f"{pod}'s Lease deleted")
        self.assertIsNotNone(self.lease(list(remaining)[0]))

    def test_entries_an_older_version_s_pods_wrote_themselves_are_removed(self):
        self.apply_proxy("upgraded", replicas=1)
        fleet = self.fleet("upgraded")
        (pod, _), = fleet.wait_pods(1).items()
        wait_until(lambda: self.entry("upgraded", pod), 30, interval=0.2, message="the pod's entry")
        # what a pod of the previous version did: server-side apply of its own entry, its own field manager
        old = {"apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
               "metadata": {"name": "upgraded", "namespace": self.namespace},
               "status": {"pods": [{"name": "upgraded-old-pod", "ready": True, "workerState": "ready"}]}}
        kubectl("apply", "--server-side", "--subresource=status", "--field-manager=codex-proxy-upgraded-old-pod",
                "-f", "-", input=json.dumps(old))
        wait_until(lambda: [e["name"] for e in self.get("cxp", "upgraded")["status"].get("pods", [])] == [pod],
                   15, interval=0.2, message="only the live pod's entry")
        self.assertEqual(self.columns("upgraded")["READY"], "1/1")

    def test_an_expired_heartbeat_marks_the_entry_stale_and_a_restarted_pod_resumes(self):
        self.apply_proxy("beat", replicas=2)
        fleet = self.fleet("beat", worker_env={"PROXY_HEARTBEAT_S": "1"})  # a 3 s Lease
        proxies = fleet.wait_pods(2)
        wait_until(lambda: self.columns("beat")["READY"] == "2/2", 30, interval=0.2, message="READY 2/2")
        pod, proxy = sorted(proxies.items())[0]
        self.assertEqual(self.lease(pod)["spec"]["leaseDurationSeconds"], 3)
        proxy.signal(signal.SIGSTOP)  # a hung pod: it serves nothing and renews nothing
        self.addCleanup(lambda: proxy.process.poll() is None and proxy.signal(signal.SIGCONT))
        time.sleep(0.5)  # a renewal sent before the stop has landed: the Lease's last renewTime
        last_renewal = datetime.datetime.fromisoformat(
            self.lease(pod)["spec"]["renewTime"].replace("Z", "+00:00")).timestamp()
        entry = wait_until(lambda: (lambda e: e if e and e.get("stale") else None)(self.entry("beat", pod)), 15,
                           interval=0.2, message="the hung pod's entry stale")
        # not before the Lease expired: 3 s after the controller saw the last renewal, which was
        # after the pod stamped it (one clock here; 0.1 s for the stamp's rounding)
        self.assertGreater(time.time(), last_renewal + 3 - 0.1, "stale before the Lease expired")
        self.assertFalse(entry["ready"])
        self.assertEqual(self.columns("beat")["READY"], "1/2")
        self.assertIn(f"no fresh heartbeat from {pod}", self.condition("beat", "Available")["message"])
        # the kubelet restarts the container: the same pod, a new process, the same Lease renewed
        renewed = self.lease(pod)["spec"]["renewTime"]
        proxy.process.kill()
        proxy.process.wait()
        fleet.stop_pod(pod)
        fleet.wait_pods(2)
        wait_until(lambda: self.columns("beat")["READY"] == "2/2", 20, interval=0.2, message="READY 2/2 again")
        entry = self.entry("beat", pod)
        self.assertNotIn("stale", entry)
        self.assertTrue(entry["ready"])
        self.assertGreater(self.lease(pod)["spec"]["renewTime"], renewed)

    def test_steady_state_writes_nothing_to_the_codexproxy_while_heartbeats_go_on(self):
        self.apply_proxy("calm", replicas=5)
        fleet = self.fleet("calm", worker_env={"PROXY_HEARTBEAT_S": "1"})
        fleet.wait_pods(5)
        wait_until(lambda: self.columns("calm")["READY"] == "5/5" and
                   self.condition("calm", "Progressing")["status"] == "False", 30, interval=0.2,
                   message="READY 5/5, settled")
        time.sleep(2)  # let the last status write land
        before = self.get("cxp", "calm")["metadata"]["resourceVersion"]
        renewals = {pod: self.lease(pod)["spec"]["renewTime"] for pod in fleet.proxies}
        writes = self.controller.metric("codexproxy_controller_object_writes_total", resource="codexproxies/status")
        time.sleep(30)
        # 5 pods renewed their Leases every second; the CodexProxy was not written once
        self.assertEqual(self.get("cxp", "calm")["metadata"]["resourceVersion"], before)
        self.assertEqual(self.controller.metric("codexproxy_controller_object_writes_total",
                                                resource="codexproxies/status"), writes)
        for pod, renew in renewals.items():
            self.assertGreater(self.lease(pod)["spec"]["renewTime"], renew, f"{pod} renewed its heartbeat")
        self.assertEqual(self.columns("calm")["READY"], "5/5")

    def as_pod(self, kubeconfig, *args, input=None):
        """A request with a pod's credentials: (HTTP status of the API's answer, stderr)."""
        result = kubectl(*args, "-n", self.namespace, "-v=6", kubeconfig=kubeconfig, check=False, input=input)
        # kubectl logs each response as `PATCH https://... 403 Forbidden` or, since 1.32,
        # `"Response" verb="PATCH" url="https://..." status="403 Forbidden"`
        codes = re.findall(r'(?:GET|PATCH|POST|PUT) https://\S+ (\d{3}) |verb="(?:GET|PATCH|POST|PUT)" url="[^"]*" status="(\d{3})',
                           result.stderr)
        return (int("".join(codes[-1])) if codes else None), result.stderr

    def test_a_pods_credentials_write_only_its_own_heartbeat_lease(self):
        self.apply_proxy("guarded", replicas=2)
        self.apply_proxy("other")
        fleet = self.fleet("guarded")
        proxies = fleet.wait_pods(2)
        mine, theirs = sorted(proxies)
        wait_until(lambda: self.lease(mine) and self.lease(theirs), 10, interval=0.2, message="both Leases")
        token = os.path.join(fleet.pod_dir(mine), "pod.kubeconfig")  # bound to pod `mine`
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        renew = json.dumps({"spec": {"renewTime": now}})
        # its own heartbeat: what the pod does every PROXY_HEARTBEAT_S
        code, _ = self.as_pod(token, "patch", "lease", mine, "--type", "merge", "-p", renew)
        self.assertEqual(code, 200)
        # another pod's heartbeat or report: 403 from the admission policy, naming both
        for patch in (renew, json.dumps({"metadata": {"annotations": {"codexproxy.io/report": '{"ready":true}'}}})):
            code, stderr = self.as_pod(token, "patch", "lease", theirs, "--type", "merge", "-p", patch)
            self.assertEqual(code, 403, stderr)
            self.assertIn(f"pod {mine} of CodexProxy guarded may write only its own heartbeat Lease", stderr)
        # a Lease of another name, e.g. a leader election's
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
                 "spec": {"holderIdentity": mine}}
        code, stderr = self.as_pod(token, "create", "-f", "-", input=json.dumps(lease))
        self.assertEqual(code, 403, stderr)
        # its own Lease held by, or owned by, someone else
        code, stderr = self.as_pod(token, "patch", "lease", mine, "--type", "merge", "-p",
                                   json.dumps({"spec": {"holderIdentity": theirs}}))
        self.assertEqual(code, 403, stderr)
        self.assertIn("held by itself", stderr)
        # the status itself: no condition, no readyReplicas, no entry (403 from RBAC)
        for patch in ({"status": {"readyReplicas": 2}},
                      {"status": {"conditions": [{"type": "Available", "status": "True", "reason": "Forged",
                                                  "message": "", "lastTransitionTime": now[:19] + "Z"}]}},
                      {"status": {"pods": [{"name": theirs, "ready": True}]}}):
            code, stderr = self.as_pod(token, "patch", "cxp", "guarded", "--subresource=status", "--type", "merge",
                                       "-p", json.dumps(patch))
            self.assertEqual(code, 403, stderr)
        # the ServiceAccount's token not bound to a pod may not write even a pod-named Lease
        code, stderr = self.as_pod(fleet.kubeconfig, "patch", "lease", mine, "--type", "merge", "-p", renew)
        self.assertEqual(code, 403, stderr)
        self.assertIn("only with a token bound to its pod", stderr)
        # nothing forged reached the status; both pods still count
        wait_until(lambda: self.columns("guarded")["READY"] == "2/2", 10, interval=0.2, message="READY 2/2")

    def test_a_pods_service_account_reaches_only_its_own_codexproxy(self):
        self.apply_proxy("mine")
        self.apply_proxy("other")
        wait_until(lambda: self.get("configmap", "other-settings", check=False), 30, interval=0.2, message="other's ConfigMap")
        fleet = self.fleet("mine")
        as_pod = {"kubeconfig": fleet.kubeconfig, "check": False}
        patch = json.dumps({"status": {"pods": [{"name": "intruder", "ready": True}]}})
        for proxy in ("other", "mine"):  # the status is the controller's alone
            denied = kubectl("patch", "cxp", proxy, "-n", self.namespace, "--subresource=status", "--type", "merge",
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
        # what it may do: read its own settings
        self.assertEqual(kubectl("get", "configmap", "mine-settings", "-n", self.namespace, **as_pod).returncode, 0)

if __name__ == "__main__":
    unittest.main()
