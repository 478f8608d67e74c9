"""The local control plane behaves like a real cluster: readiness, scheduling onto kwok nodes,
garbage collection, RBAC enforcement, and a working helm."""
import os
import subprocess
import tempfile
import unittest

from kube import SOURCE_DIR, KubeTestCase, kubectl, kubectl_json, tools_bin, wait_until

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: example.invalid/web:1}]
"""


class ControlPlaneTest(KubeTestCase):
    def test_apiserver_readyz_is_ok(self):
        self.assertEqual(kubectl("get", "--raw", "/readyz").stdout.strip(), "ok")

    def test_a_deployment_gets_running_pods_on_kwok_nodes_and_is_garbage_collected(self):
        kubectl("apply", "-n", self.namespace, "-f", "-", input=DEPLOYMENT)

        def running_pods():
            pods = kubectl_json("get", "pods", "-n", self.namespace, "-l", "app=web")["items"]
            running = [p for p in pods if p["status"].get("phase") == "Running"]
            return running if len(running) == 2 else None

        pods = wait_until(running_pods, 60, message="2 Running pods")
        nodes = {n["metadata"]["name"]: n for n in kubectl_json("get", "nodes")["items"]}
        for pod in pods:
            node = nodes[pod["spec"]["nodeName"]]
            self.assertEqual(node["metadata"]["annotations"].get("kwok.x-k8s.io/node"), "fake")
        self.assertEqual(len(kubectl_json("get", "replicasets", "-n", self.namespace)["items"]), 1)

        kubectl("delete", "deployment", "web", "-n", self.namespace)
        wait_until(lambda: not kubectl_json("get", "replicasets", "-n", self.namespace)["items"], 60,
                   message="the ReplicaSet to be garbage-collected")
        wait_until(lambda: not kubectl_json("get", "pods", "-n", self.namespace)["items"], 60,
                   message="the pods to be garbage-collected")

    def test_rbac_denies_a_serviceaccount_until_it_is_bound(self):
        kubectl("create", "serviceaccount", "reader", "-n", self.namespace)
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "reader.kubeconfig")
            subprocess.run([os.path.join(SOURCE_DIR, "scripts/cluster.sh"), "sa-kubeconfig",
                            self.namespace, "reader", config], check=True, capture_output=True, timeout=60)
            denied = kubectl("get", "pods", "-n", self.namespace, kubeconfig=config, check=False)
            self.assertNotEqual(denied.returncode, 0)
            self.assertIn("Forbidden", denied.stderr)
            self.assertIn(f"system:serviceaccount:{self.namespace}:reader", denied.stderr)

            kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", self.namespace)
            kubectl("create", "rolebinding", "reader", "--role=pod-reader",
                    f"--serviceaccount={self.namespace}:reader", "-n", self.namespace)
            wait_until(lambda: kubectl("get", "pods", "-n", self.namespace, kubeconfig=config,
                                       check=False).returncode == 0, 30, message="access after the binding")
            # Still nothing beyond the Role.
            other = kubectl("get", "secrets", "-n", self.namespace, kubeconfig=config, check=False)
            self.assertIn("Forbidden", other.stderr)

    def test_helm_runs_and_reports_its_version(self):
        result = subprocess.run([os.path.join(tools_bin(), "helm"), "version", "--short"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("v3."), result.stdout)
        server = kubectl_json("version")["serverVersion"]
        self.assertEqual(server["major"], "1")
        self.assertTrue(server["gitVersion"].startswith("v1.33."), server)


if __name__ == "__main__":
    unittest.main(verbosity=2)


def processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


class ClusterScriptFailureTest(unittest.TestCase):
    def test_a_component_that_dies_during_up_is_reported_with_its_log_and_everything_is_stopped(self):
        real_bin = tools_bin()
        with tempfile.TemporaryDirectory() as tmp:
            cache_bin = os.path.join(tmp, "cache", "bin")
            os.makedirs(cache_bin)
            for name in os.listdir(real_bin):
                if name != "kube-apiserver":
                    os.symlink(os.path.join(real_bin, name), os.path.join(cache_bin, name))
            broken = os.path.join(cache_bin, "kube-apiserver")
            with open(broken, "w") as f:
                f.write("#!/bin/sh\necho 'boom: scripted apiserver failure' >&2\nexit 3\n")
            os.chmod(broken, 0o755)
            env = {**os.environ, "CXP_TOOLS_CACHE": os.path.join(tmp, "cache"),
                   "CXP_CLUSTER_DIR": os.path.join(tmp, "cluster")}
            script = os.path.join(SOURCE_DIR, "scripts/cluster.sh")
            result = subprocess.run([script, "up"], env=env, capture_output=True, text=True, timeout=180)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn("kube-apiserver failed to start", result.stderr)
            self.assertIn("boom: scripted apiserver failure", result.stderr)
            # etcd was started first and must have been stopped again.
            self.assertEqual(processes_mentioning(os.path.join(tmp, "cluster")), [])
            with open(os.path.join(tmp, "cluster", "logs", "etcd.log")) as log:
                self.assertTrue(log.read())
            down = subprocess.run([script, "down"], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(down.returncode, 0, down.stderr)
