"""Upgrading the operator with Helm on the real node (CTest images.test_upgrade).

From the chart as released before (0.1.0, tests/images/charts: its CRD in crds/, which Helm never
upgrades; one replica) to the working tree (the CRD a template, two replicas with leader election),
then a rollout of the working tree's own install, then an uninstall. Checked through the API
server's audit log (scripts/cluster/audit-policy.yaml): during each upgrade the controllers' Lease
changes hands at most once, and no object is written by a replica that did not hold it. The
operator's namespace enforces Pod Security "restricted".
Needs `scripts/cluster.sh up --real-node` on CXP_CLUSTER_DIR with the images imported.
"""
import collections
import datetime
import glob
import json
import os
import threading
import unittest
import urllib.parse

import images  # noqa: F401  (first: the tier's plane and import paths)
from images import SOURCE_DIR, restricted_namespace  # noqa: E402
from kube import CLUSTER_DIR, kubectl, kubectl_json, wait_until  # noqa: E402
from test_helm import helm  # noqa: E402

OLD_CHART = os.path.join(SOURCE_DIR, "tests/images/charts/codexproxy-operator-0.1.0.tgz")
CHART = os.path.join(SOURCE_DIR, "charts/codexproxy-operator")
SYSTEM = "codexproxy-system"
RELEASE = "cxp"
CRD = "codexproxies.codexproxy.io"
LEASE = "codexproxy-controller-leader"
WRITER = f"system:serviceaccount:{SYSTEM}:{RELEASE}-codexproxy-operator"
NAMESPACE = "upgrade"
POD_NAME = "authentication.kubernetes.io/pod-name"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_events(since):
    """The completed requests the audit policy records, from `since` on, in order."""
    events = []
    for path in glob.glob(os.path.join(CLUSTER_DIR, "audit", "*.log")):
        with open(path) as f:
            for line in f:
                event = json.loads(line)
                if event.get("stage") == "ResponseComplete" and event["stageTimestamp"] >= since:
                    events.append(event)
    return sorted(events, key=lambda e: e["stageTimestamp"])


def controller_pods():
    return kubectl_json("get", "pods", "-n", SYSTEM, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]


def lease_holder_pod():
    result = kubectl("get", "lease", LEASE, "-n", SYSTEM, "-o", "json", check=False)
    lease = json.loads(result.stdout) if result.returncode == 0 else {}
    identity = lease.get("spec", {}).get("holderIdentity") or ""
    return identity.rsplit("_", 1)[0] if identity else None


class Leadership:
    """The controllers' writes from `since` on, read from the audit log: the Lease's holders in order,
    the writes per (field manager, pod), and the writes by a replica that did not hold the Lease."""

    def __init__(self, since, holder):
        self.holders = [holder] if holder else []
        self.writes = collections.Counter()
        self.strays = []
        current = holder
        for event in audit_events(since):
            if event["user"]["username"] != WRITER or event.get("responseStatus", {}).get("code", 500) >= 300:
                continue
            pod = (event["user"].get("extra", {}).get(POD_NAME) or ["<no pod>"])[0]
            ref = event["objectRef"]
            if ref.get("resource") == "leases" and ref.get("name") == LEASE:
                identity = event["responseObject"]["spec"].get("holderIdentity") or ""
                current = identity.rsplit("_", 1)[0] if identity else None  # "": handed over
                if current and (not self.holders or self.holders[-1] != current):
                    self.holders.append(current)
                continue
            if ref.get("resource") == "pods" and ref.get("name") == pod:
                continue  # a replica's mark (pod-deletion-cost) on its own pod
            query = urllib.parse.parse_qs(urllib.parse.urlparse(event["requestURI"]).query)
            manager = query.get("fieldManager", ["<none>"])[0]
            self.writes[(manager, pod)] += 1
            if pod != current:
                self.strays.append((event["stageTimestamp"], event["verb"], ref.get("resource"), ref.get("name"),
                                    pod, current))


class Churn:
    """Flips the CodexProxy's maintenance switch every 0.5 s, so that whoever leads keeps writing
    (its settings ConfigMap and status) while the controllers are replaced."""

    def __init__(self, name):
        self.name, self.flips, self.stopping = name, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.wait(0.5):
            enabled = "true" if self.flips % 2 == 0 else "false"
            if kubectl("patch", "codexproxy", self.name, "-n", NAMESPACE, "--type", "merge",
                       "-p", f'{{"spec": {{"maintenance": {{"enabled": {enabled}}}}}}}', check=False).returncode == 0:
                self.flips += 1

    def stop(self):
        self.stopping.set()
        self.thread.join(30)
        return self.flips


class HelmUpgradeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not kubectl_json("get", "nodes", "-l", "codexproxy.io/real-node=true")["items"]:
            raise AssertionError("no real node: start the plane with scripts/cluster.sh up --real-node")
        # The chart as released created the CRD from crds/: start from a plane without it.
        helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", check=False)
        kubectl("delete", "crd", CRD, "--ignore-not-found", "--wait=true", timeout=120)
        restricted_namespace(SYSTEM)
        restricted_namespace(NAMESPACE)

    @classmethod
    def tearDownClass(cls):
        helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", check=False)
        kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)

    def wait_rolled_out(self, old_pods):
        """Every old controller pod gone, the new ones Ready, one of them holding the Lease."""
        def done():
            pods = controller_pods()
            names = {p["metadata"]["name"] for p in pods}
            ready = all(any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
                        for p in pods)
            return not names & old_pods and ready and lease_holder_pod() in names and names
        return wait_until(done, 180, interval=0.5, message="the old controller pods gone, a new one leading")

    def upgrade(self, old_pods, what, *args, handovers=1):
        """helm upgrade while the CodexProxy churns; then every write in the audit log was made by
        the Lease's holder of the moment, and the Lease changed hands at most `handovers` times."""
        holder = lease_holder_pod()
        self.assertIn(holder, old_pods)
        since = now()
        churn = Churn("kept")
        try:
            helm("upgrade", RELEASE, *args, "-n", SYSTEM, "--wait", "--timeout", "300s")
            new_pods = self.wait_rolled_out(old_pods)
            flips = churn.flips
            wait_until(lambda: churn.flips >= flips + 4, 30, interval=0.2, message="churn under the new leader")
        finally:
            churn.stop()
        wait_until(lambda: self.reconciled("kept"), 60, interval=0.5, message="the last flip reconciled")
        leadership = Leadership(since, holder)
        print(f"{what}: {churn.flips} flips; Lease holders {leadership.holders}; "
              f"writes per (field manager, pod): {dict(leadership.writes)}")
        self.assertEqual(leadership.strays, [], f"{what}: objects written by a replica without the Lease")
        self.assertLessEqual(len(leadership.holders) - 1, handovers, f"{what}: the Lease changed hands too often")
        self.assertIn(leadership.holders[-1], new_pods, what)
        # The new leader marked its pod; the standbys carry no mark (each cleared its own at start).
        costs = {p["metadata"]["name"]: p["metadata"].get("annotations", {}).get(DELETION_COST)
                 for p in controller_pods()}
        self.assertEqual(costs, {pod: "100" if pod == leadership.holders[-1] else None for pod in new_pods}, what)
        writers = {pod for _, pod in leadership.writes}
        self.assertIn(holder, writers, f"{what}: the old leader wrote nothing (the check would prove nothing)")
        self.assertIn(leadership.holders[-1], writers, f"{what}: the new leader wrote nothing")
        return new_pods

    def reconciled(self, name):
        proxy = kubectl_json("get", "codexproxy", name, "-n", NAMESPACE)
        return proxy.get("status", {}).get("observedGeneration") == proxy["metadata"]["generation"] and proxy

    def test_from_the_released_chart_to_the_working_tree_and_a_rollout(self):
        # 1. The chart as released: its CRD from crds/ (no spec.auth yet), one controller.
        helm("install", RELEASE, OLD_CHART, "-n", SYSTEM, "--wait", "--timeout", "180s")
        crd = kubectl_json("get", "crd", CRD)
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        self.assertNotIn("auth", schema, "the released chart's CRD")
        self.assertNotIn("meta.helm.sh/release-name", crd["metadata"].get("annotations", {}))
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
            "metadata": {"name": "kept", "namespace": NAMESPACE},
            "spec": {"replicas": 0, "image": images.PROXY_IMAGE}}))
        wait_until(lambda: self.reconciled("kept"), 60, interval=0.5, message="the old controller reconciling")
        old_pods = {p["metadata"]["name"] for p in controller_pods()}
        wait_until(lambda: lease_holder_pod() in old_pods, 60, interval=0.5,
                   message="the released controller holding the Lease")

        # 2. helm upgrade to the working tree. The CRD, made by crds/ without Helm's ownership
        # metadata, is taken over once (docs/install.md, "Upgrading from chart 0.1.0"). One replica
        # becomes two: the Deployment first scales the old ReplicaSet to two, and 0.1.0's pods
        # carry no pod-deletion-cost, so the Lease may change hands twice (never two holders).
        new_pods = self.upgrade(old_pods, "upgrade from 0.1.0", CHART, "--take-ownership", handovers=2)
        self.assertEqual(len(new_pods), 2, "the chart's default: two replicas")
        # The new CRD is served, kept on uninstall, and its new fields are accepted and stored.
        crd = kubectl_json("get", "crd", CRD)
        self.assertEqual(crd["metadata"]["annotations"].get("helm.sh/resource-policy"), "keep")
        self.assertEqual(crd["metadata"]["labels"].get("app.kubernetes.io/managed-by"), "Helm")
        kubectl("patch", "codexproxy", "kept", "-n", NAMESPACE, "--type", "merge",
                "-p", '{"spec": {"auth": {"apiKeysSecret": {"name": "callers"}}}}')
        proxy = kubectl_json("get", "codexproxy", "kept", "-n", NAMESPACE)
        self.assertEqual(proxy["spec"].get("auth", {}).get("apiKeysSecret", {}).get("name"), "callers",
                         "the new field was pruned: the old CRD is still served")
        # The object made under the old release is reconciled by the new controllers.
        wait_until(lambda: self.reconciled("kept"), 60, interval=0.5, message="the new leader reconciling")

        # 3. A rollout of the working tree's own replicas that also scales them to three (the old
        # ReplicaSet first grows by one): the standbys go first (the leader's pod-deletion-cost), so
        # the Lease changes hands once, from the old leader to a new pod.
        rolled = self.upgrade(new_pods, "rollout of 0.2.0 to three replicas", CHART, "--set", "logLevel=debug",
                              "--set", "replicaCount=3")
        self.assertEqual(len(rolled), 3)

        # 4. Uninstall keeps the CRD and the CodexProxies (crds.keep).
        helm("uninstall", RELEASE, "-n", SYSTEM, "--wait")
        wait_until(lambda: not controller_pods(), 60, interval=0.5, message="the controller pods gone")
        self.assertEqual(kubectl("get", "crd", CRD, check=False).returncode, 0, "the CRD was deleted")
        self.assertEqual(kubectl("get", "codexproxy", "kept", "-n", NAMESPACE, check=False).returncode, 0)


if __name__ == "__main__":
    unittest.main()
