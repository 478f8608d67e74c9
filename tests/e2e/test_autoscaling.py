"""spec.autoscaling through Kubernetes' own HorizontalPodAutoscaler: the controller keeps the HPA,
kube-controller-manager's HPA controller scales the CodexProxy through its scale subresource on
the pods' codex_turns_in_flight, served by the custom metrics API — prometheus-adapter (built from
its Go module), behind a real APIService, reading a real Prometheus that scrapes the pod
processes' ops ports with the labels the operator's ServiceMonitor gives them.

Without the custom metrics API the CodexProxy says so (condition Autoscaling) and keeps its
replicas; with it, load scales 1 → 3 pods and, once the load falls, back to 1 while a client keeps
calling: no request fails. The client picks among the pods that are not leaving (as a Service's
endpoints do); a leaving pod serves out its preStop sleep and then drains the turns it holds on
SIGTERM (the pod launcher plays the kubelet): a turn cut by the scale-in would be a failure.
Needs root: the aggregation path goes through a network namespace (tests/pylib/custom_metrics_api.py)."""
import http.client
import json
import os
import shutil
import tempfile
import threading
import time
import unittest

from controller_harness import ControllerTestCase
from custom_metrics_api import CustomMetricsApi
from kube import ADMIN_KUBECONFIG, SOURCE_DIR, kubectl, kubectl_json, tools_bin, wait_until
from pod_fleet import PodFleet
from prometheus_server import PrometheusServer, require_prometheus, write_file_targets

RULES = os.path.join(SOURCE_DIR, "charts/codexproxy-operator/files/prometheus-adapter-rules.yaml")
TURN = {"messages": [{"role": "user", "content": "hi"}]}


class Load:
    """`clients` threads, each calling chat completions back to back on the serving pods in turn
    (what a Service would pick from: the pods not terminating). Every answer is kept."""

    def __init__(self, fleet, clients):
        self.fleet, self.stopping, self.results = fleet, threading.Event(), []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]
        for thread in self.threads:
            thread.start()

    def _run(self, offset):
        turn = offset
        while not self.stopping.is_set():
            serving = sorted(self.fleet.proxies.items())
            if not serving:
                time.sleep(0.1)
                continue
            name, proxy = serving[turn % len(serving)]
            turn += 1
            try:
                conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
                conn.request("POST", "/v1/chat/completions", body=json.dumps(TURN),
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                body = response.read()
                self.results.append((time.monotonic(), name, response.status,
                                     "" if response.status == 200 else body[:300].decode("utf-8", "replace")))
                conn.close()
            except OSError as error:
                self.results.append((time.monotonic(), name, 0, repr(error)))

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(90)

    def failures(self, since=0.0):
        return [r for r in self.results if r[0] >= since and r[2] != 200]


@unittest.skipUnless(os.geteuid() == 0, "needs root: the custom metrics API is reached through a network namespace")
class AutoscalingTest(ControllerTestCase):
    def setUp(self):
        super().setUp()
        require_prometheus()
        self.folder = tempfile.mkdtemp(prefix="cxp-hpa-")
        self.addCleanup(shutil.rmtree, self.folder, True)

    def replicas(self, name):
        return kubectl_json("get", "cxp", name, "-n", self.namespace)["spec"]["replicas"]

    def test_the_hpa_scales_on_turns_in_flight_and_scale_in_fails_no_request(self):
        self.start_controller()
        behavior = {"scaleUp": {"stabilizationWindowSeconds": 0,
                                "policies": [{"type": "Pods", "value": 2, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": 0,
                                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}
        self.apply_proxy("auto", worker={"maxConcurrency": 4},
                         autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 3,
                                      "targetInFlightPerPod": 1, "behavior": behavior})
        hpa = wait_until(lambda: self.get("hpa", "auto", check=False), 30, message="the HorizontalPodAutoscaler")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["kind"], "CodexProxy")
        self.assertEqual(hpa["spec"]["metrics"][0]["pods"]["metric"]["name"], "codex_turns_in_flight")
        fleet = PodFleet(self.namespace, "auto", worker_env={"FAKE_CODEX_TOKEN_DELAY_MS": "500"}, prestop=True)
        self.addCleanup(fleet.close)
        fleet.wait_pods(1)

        # 1. No custom metrics API yet: the HPA cannot read its metric, the CodexProxy says so and
        #    keeps its replicas.
        #    (On a fresh plane the HPA controller may first not know the CodexProxy kind: its
        #    discovery catches up within a minute, and the condition says that meanwhile.)
        def cannot_scale():
            condition = self.condition("auto", "Autoscaling") or {}
            return condition if condition.get("status") == "False" and "codex_turns_in_flight" in condition.get(
                "message", "") else None
        condition = wait_until(cannot_scale, 120, interval=1, message="Autoscaling False: no custom metrics API")
        self.assertEqual(condition["reason"], "FailedGetPodsMetric")
        self.assertEqual(self.replicas("auto"), 1)

        # 2. Prometheus scrapes the pods (file discovery kept up by the launcher's loop below), the
        #    adapter serves their metric.
        targets = os.path.join(self.folder, "targets.json")
        write_file_targets(targets, [])
        prometheus = PrometheusServer(self.folder, {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
            "scrape_configs": [{"job_name": "codex-proxy",
                                "file_sd_configs": [{"files": ["targets.json"], "refresh_interval": "1s"}]}]})
        self.addCleanup(prometheus.close)
        stopping = threading.Event()

        def keep_pods():
            while not stopping.is_set():
                fleet.sync()
                write_file_targets(targets, [(f"127.0.0.1:{p.ops_port}", {"namespace": self.namespace, "pod": n})
                                             for n, p in list(fleet.proxies.items())])
                stopping.wait(0.3)
        syncer = threading.Thread(target=keep_pods, daemon=True)
        syncer.start()
        self.addCleanup(syncer.join, 10)
        self.addCleanup(stopping.set)
        metrics = CustomMetricsApi(self.folder, os.path.join(tools_bin(), "prometheus-adapter"), ADMIN_KUBECONFIG,
                                   prometheus.url, RULES, kubectl)
        self.addCleanup(metrics.close)
        path = f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{self.namespace}/pods/*/codex_turns_in_flight"
        wait_until(lambda: json.loads(kubectl("get", "--raw", path, check=False).stdout or "{}").get("items"),
                   60, interval=1, message="codex_turns_in_flight served by the custom metrics API")

        # 3. Load: 6 clients on one pod of 4 slots (target 1 in flight per pod) → 3 pods.
        load = Load(fleet, 6)
        self.addCleanup(load.stop)
        started = time.monotonic()
        wait_until(lambda: len(fleet.proxies) == 3, 120, interval=0.5,
                   message=f"3 pods under load (replicas {self.replicas('auto')}, "
                           f"Autoscaling {self.condition('auto', 'Autoscaling')})")
        print(f"load to the third pod serving: {time.monotonic() - started:.1f} s")
        row = kubectl("get", "cxp", "auto", "-n", self.namespace, "--no-headers").stdout.split()
        self.assertEqual(row[2], "3", row)  # DESIRED
        wait_until(lambda: "desired 3 replicas" in (self.condition("auto", "Autoscaling") or {}).get("message", ""),
                   60, interval=1, message="the Autoscaling condition tells the scale")

        # 4. The load falls to one client: back to 1 pod, and not one request fails on the way.
        load.stop()
        self.assertEqual(load.failures(), [], "requests failed under load")
        light = Load(fleet, 1)
        self.addCleanup(light.stop)
        wait_until(lambda: self.replicas("auto") == 1 and len(fleet.proxies) == 1 and not fleet.terminating,
                   150, interval=0.5, message=f"back to 1 pod (replicas {self.replicas('auto')}, "
                                              f"{len(fleet.proxies)} serving, {len(fleet.terminating)} terminating)")
        light.stop()
        self.assertGreater(len(light.results), 10)
        self.assertEqual(light.failures(), [], "requests failed during the scale-in")


KEDA_CRD = "scaledobjects.keda.sh"


class KedaEngineTest(ControllerTestCase):
    """engine KEDA: a ScaledObject the API server accepts against KEDA's own CRD (pinned, from its
    Go module: scripts/cluster/install.sh), kept only where the cluster serves keda.sh/v1alpha1."""

    def test_a_scaled_object_where_keda_is_served_and_a_clear_refusal_where_not(self):
        spec = {"enabled": True, "engine": "KEDA", "minReplicas": 1, "maxReplicas": 4, "targetInFlightPerPod": 2,
                "keda": {"prometheusAddress": "http://prometheus.monitoring.svc:9090"},
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}
        # 1. No KEDA in the cluster: said, not skipped.
        first = self.start_controller()
        self.apply_proxy("keda", autoscaling=spec)
        degraded = wait_until(lambda: (self.condition("keda", "Degraded") or {}).get("reason") == "ApplyFailed"
                              and self.condition("keda", "Degraded"), 30, interval=0.5, message="Degraded ApplyFailed")
        self.assertIn("cannot keep scaledobjects", degraded["message"])
        self.assertIn("keda.sh/v1alpha1", degraded["message"])
        first.stop()

        # 2. KEDA's CRD served: the controller keeps the ScaledObject, which the API server validated.
        crd = os.path.join(os.path.dirname(tools_bin()), "crds", "keda.sh_scaledobjects.yaml")
        kubectl("apply", "--server-side", "-f", crd)
        self.addCleanup(kubectl, "delete", "crd", KEDA_CRD, "--ignore-not-found", "--wait=false", check=False)
        kubectl("wait", "--for=condition=Established", f"crd/{KEDA_CRD}", "--timeout=60s")
        self.start_controller()
        scaled = wait_until(lambda: self.get("scaledobject", "keda", check=False), 30, interval=0.5,
                            message="the ScaledObject")
        self.assertEqual(scaled["spec"]["scaleTargetRef"], {"apiVersion": "codexproxy.io/v1alpha1",
                                                            "kind": "CodexProxy", "name": "keda"})
        self.assertEqual((scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]), (1, 4))
        trigger = scaled["spec"]["triggers"][0]
        self.assertEqual((trigger["type"], trigger["metricType"], trigger["metadata"]["threshold"]),
                         ("prometheus", "AverageValue", "2"))
        self.assertEqual(trigger["metadata"]["query"],
                         f'sum(codex_turns_in_flight{{namespace="{self.namespace}",codexproxy="keda"}})')
        self.assertEqual(scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
                         spec["behavior"])
        # The same object again through the API server's own validation, as a dry run.
        scaled.pop("status", None)
        for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            scaled["metadata"].pop(field, None)
        scaled["metadata"]["name"] = "keda-dry-run"
        kubectl("create", "--dry-run=server", "-n", self.namespace, "-f", "-", input=json.dumps(scaled))
        self.assertIsNone(self.get("hpa", "keda", check=False))
        condition = wait_until(lambda: self.condition("keda", "Autoscaling"), 30, interval=0.5, message="Autoscaling")
        self.assertEqual(condition["reason"], "Pending")
        self.assertIn("KEDA", condition["message"])

        # 3. Back to the operator's HPA: the ScaledObject goes, the HPA comes.
        self.apply_proxy("keda", autoscaling={**spec, "engine": "HPA"})
        wait_until(lambda: self.get("hpa", "keda", check=False) and not self.get("scaledobject", "keda", check=False),
                   30, interval=0.5, message="the HPA instead of the ScaledObject")


if __name__ == "__main__":
    unittest.main()
