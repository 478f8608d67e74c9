"""The control plane failing under the operator: kube-apiserver and etcd restarted while 20 pods
report and CodexProxies are created and patched, the leading controller SIGKILLed in the churn,
and a watch whose resourceVersion was compacted away (410 Gone). Afterwards every CodexProxy is
reconciled, no object is duplicated, every pod's entry is current, and the pods' failed reports
during the outages stayed few (jittered backoff, not a retry storm)."""
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

from controller_harness import CLUSTER_SH, ControllerTestCase
from kube import kubectl, kubectl_json, wait_until
from pod_fleet import PodFleet

PODS = 20


def report_counts(proxy):
    """codex_status_reports_total of one pod: {"written": n, "failed": n}."""
    _, _, body = proxy.request("GET", "/metrics")
    found = dict(re.findall(r'^codex_status_reports_total\{result="(\w+)"\} (\d+)', body.decode(), re.M))
    return {k: int(v) for k, v in found.items()}


def cluster(*args):
    subprocess.run([CLUSTER_SH, *args], check=True, capture_output=True, timeout=180)


class Churn(threading.Thread):
    """Creates CodexProxies churn-<i> and flips maintenance on `fleet` and on them until stopped;
    records what it last asked for (requests refused during an outage are retried)."""

    def __init__(self, test):
        super().__init__(daemon=True)
        self.test, self.created, self.maintenance = test, [], {}
        self.stopping = threading.Event()
        self.errors = 0

    def attempt(self, action):
        while not self.stopping.is_set():
            try:
                action()
                return True
            except (AssertionError, subprocess.TimeoutExpired):
                self.errors += 1
                time.sleep(0.5)
        return False

    def run(self):
        index = 0
        while not self.stopping.is_set():
            name = f"churn-{index}"
            if self.attempt(lambda: self.test.apply_proxy(name, replicas=1)):
                self.created.append(name)
            for target in ("fleet", *self.created[-3:]):
                enabled = not self.maintenance.get(target, False)
                patch = json.dumps({"spec": {"maintenance": {"enabled": enabled}}})
                if self.attempt(lambda: kubectl("patch", "cxp", target, "-n", self.test.namespace, "--type",
                                                "merge", "-p", patch, timeout=20)):
                    self.maintenance[target] = enabled
            index += 1
            self.stopping.wait(0.5)

    def stop(self):
        self.stopping.set()
        self.join(120)


class ControlPlaneChaosTest(ControllerTestCase):
    def leader(self, controllers):
        return wait_until(lambda: next((c for c in controllers if c.metric("leader_election_master_status") == 1),
                                       None), 60, interval=0.2, message="a leader")

    def test_apiserver_and_etcd_restarts_and_a_leader_kill_during_churn_with_20_reporting_pods(self):
        controllers = [self.start_controller(leader_elect=True), self.start_controller(leader_elect=True)]
        leader = self.leader(controllers)
        self.apply_proxy("fleet", replicas=PODS)
        fleet = PodFleet(self.namespace, "fleet")
        self.addCleanup(fleet.close)
        proxies = fleet.wait_pods(PODS, timeout=180)
        wait_until(lambda: sum(e.get("ready", False) for e in self.get("cxp", "fleet").get("status", {}).get("pods", []))
                   == PODS, 120, interval=0.5, message=f"{PODS} ready entries")
        before = {name: report_counts(p) for name, p in proxies.items()}
        churn = Churn(self)
        churn.start()
        try:
            time.sleep(2)  # churn under a healthy plane first
            outage_started = time.monotonic()
            cluster("restart-apiserver", "3")
            cluster("restart-etcd", "3")
            wait_until(lambda: kubectl("get", "--raw", "/readyz", check=False).returncode == 0, 60, interval=0.5,
                       message="the API server ready after etcd's restart")
            outage_seconds = time.monotonic() - outage_started
            os.kill(leader.process.pid, signal.SIGKILL)
            killed = time.monotonic()
            survivor = next(c for c in controllers if c is not leader)
            wait_until(lambda: survivor.metric("leader_election_master_status") == 1, 60, interval=0.2,
                       message="the standby to take over")
            takeover = time.monotonic() - killed
            created_before_takeover = len(churn.created)
            wait_until(lambda: len(churn.created) >= created_before_takeover + 2, 60, interval=0.2,
                       message="churn under the new leader")
        finally:
            churn.stop()

        # Every CodexProxy reconciled by the new leader: its generation observed, one Deployment each.
        names = ["fleet", *churn.created]

        def all_reconciled():
            items = {p["metadata"]["name"]: p for p in kubectl_json("get", "cxp", "-n", self.namespace)["items"]}
            return all(items[n].get("status", {}).get("observedGeneration") == items[n]["metadata"]["generation"]
                       for n in names if n in items) and set(names) <= set(items)
        churn_stopped = time.monotonic()
        wait_until(all_reconciled, 120, interval=1, message="every CodexProxy's generation observed")
        reconciled_after = time.monotonic() - churn_stopped
        deployments = kubectl_json("get", "deployments", "-n", self.namespace)["items"]
        self.assertEqual(sorted(d["metadata"]["name"] for d in deployments), sorted(names), "no duplicates, none missing")
        for deployment in deployments:
            owners = deployment["metadata"].get("ownerReferences", [])
            self.assertEqual([o["name"] for o in owners], [deployment["metadata"]["name"]])
        for name in names:
            configmaps = [c for c in kubectl_json("get", "configmaps", "-n", self.namespace)["items"]
                          if c["metadata"]["name"] == f"{name}-settings"]
            self.assertEqual(len(configmaps), 1)
            wanted = "true" if churn.maintenance.get(name, False) else "false"
            wait_until(lambda: self.get("configmap", f"{name}-settings")["data"]["maintenance.enabled"] == wanted, 60,
                       interval=0.5, message=f"{name}'s settings to hold its last maintenance patch")

        # Every pod's entry current: the last settings applied, ready, maintenance as last patched.
        generation = int(self.get("configmap", "fleet-settings")["data"]["settingsGeneration"])
        wanted = churn.maintenance.get("fleet", False)

        def entries_current():
            entries = self.get("cxp", "fleet").get("status", {}).get("pods", [])
            return len(entries) == PODS and all(e["settingsGeneration"] == generation and e["ready"]
                                                and e["maintenance"] == wanted for e in entries)
        wait_until(entries_current, 120, interval=0.5, message="every pod's entry current")
        current_after = time.monotonic() - churn_stopped
        self.assertEqual(sorted(e["name"] for e in self.get("cxp", "fleet")["status"]["pods"]), sorted(proxies))

        # The pods' failed reports during the outages: each retried with a jittered backoff from 250 ms
        # (doubling to 30 s), a handful per pod, not one per event or per millisecond.
        failed = {name: report_counts(p).get("failed", 0) - before[name].get("failed", 0) for name, p in proxies.items()}
        print(f"\n{len(names)} CodexProxies, {PODS} pods; outages {outage_seconds:.0f} s (API server down 3 s, "
              f"etcd down 3 s, each with its restart); after the churn stopped: all reconciled in "
              f"{reconciled_after:.1f} s, every pod's entry current in {current_after:.1f} s; the standby "
              f"took over in {takeover:.1f} s; failed reports per pod: {sorted(failed.values())} "
              f"(written {sum(report_counts(p).get('written', 0) - before[n].get('written', 0) for n, p in proxies.items())} in all)")
        bound = 4 + int(outage_seconds / 2)  # generous: 250 ms doubling reaches a few per outage
        self.assertLessEqual(max(failed.values()), bound, failed)
        for name, proxy in proxies.items():
            self.assertIsNone(proxy.process.poll(), f"pod {name} died")


class WatchExpiryTest(ControllerTestCase):
    def test_a_watch_whose_resource_version_was_compacted_relists_and_misses_nothing(self):
        controller = self.start_controller()
        self.apply_proxy("kept")
        wait_until(lambda: self.get("deployment", "kept", check=False), 30, interval=0.2, message="reconciled")
        # Freeze the controller, change things behind its back, compact etcd past its resourceVersion
        # and restart the API server (its watch cache starts anew): the watch resumes with a
        # resourceVersion that no longer exists.
        controller.process.send_signal(signal.SIGSTOP)
        try:
            self.apply_proxy("created-while-away")
            kubectl("patch", "cxp", "kept", "-n", self.namespace, "--type", "merge",
                    "-p", json.dumps({"spec": {"maintenance": {"enabled": True}}}))
            for index in range(20):  # history to compact
                kubectl("annotate", "cxp", "kept", "-n", self.namespace, f"churn=c{index}", "--overwrite")
            cluster("compact-etcd")
            cluster("restart-apiserver", "0")
        finally:
            controller.process.send_signal(signal.SIGCONT)
        wait_until(lambda: controller.events("watch_expired_relisting"), 60, interval=0.2,
                   message="the watch to expire (410) and the informer to relist")
        wait_until(lambda: self.get("deployment", "created-while-away", check=False), 60, interval=0.5,
                   message="the CodexProxy created while the controller was away")
        wait_until(lambda: self.get("configmap", "kept-settings")["data"]["maintenance.enabled"] == "true", 60,
                   interval=0.5, message="the patch made while the controller was away")
        self.assertEqual(sorted(d["metadata"]["name"] for d in kubectl_json("get", "deployments", "-n",
                                                                           self.namespace)["items"]),
                         ["created-while-away", "kept"])


if __name__ == "__main__":
    unittest.main()
