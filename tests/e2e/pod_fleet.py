"""Plays the kubelet for a CodexProxy's kwok pods: one real codex-proxy per running pod."""
import os
import signal
import tempfile

from controller_harness import sa_kubeconfig
from kube import kubectl, kubectl_json, wait_until
from proxy_process import FAKE_WORKER, Proxy


class PodFleet:
    """Each running pod of the CodexProxy gets a codex-proxy started with the env of the pod's
    container (as the Deployment renders it), the pod's name and namespace, and a kubeconfig for
    the pods' ServiceAccount (so the pods' Role is what is exercised). A pod that goes away gets
    SIGTERM, like a kubelet would send."""

    def __init__(self, namespace, proxy_name, worker_env=None):
        self.namespace = namespace
        self.proxy_name = proxy_name
        self.worker_env = worker_env or {}
        self.dir = tempfile.TemporaryDirectory(prefix=f"cxp-pods-{proxy_name}-")
        wait_until(lambda: kubectl("get", "serviceaccount", proxy_name, "-n", namespace, check=False).returncode == 0,
                   30, interval=0.2, message="the pods' ServiceAccount")
        self.kubeconfig = sa_kubeconfig(namespace, proxy_name, os.path.join(self.dir.name, "pods.kubeconfig"))
        self.proxies = {}

    def running_pods(self):
        items = kubectl_json("get", "pods", "-n", self.namespace, "-l", f"codexproxy.io/name={self.proxy_name}")["items"]
        return {p["metadata"]["name"]: p for p in items
                if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]}

    def _env(self, pod):
        name = pod["metadata"]["name"]
        env = {}
        for entry in pod["spec"]["containers"][0].get("env", []):
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            elif entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[entry["name"]] = name
            elif entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[entry["name"]] = self.namespace
        home = os.path.join(self.dir.name, name)
        os.makedirs(os.path.join(home, "codex"), exist_ok=True)
        env.update({"PROXY_HOST": "127.0.0.1", "PORT": "0", "CODEX_BIN": FAKE_WORKER,
                    "CODEX_HOME": os.path.join(home, "codex"), "PROXY_TRACE_DIR": os.path.join(home, "trace"),
                    "PROXY_KUBECONFIG": self.kubeconfig, **self.worker_env})
        return env

    def trace_dir(self, pod_name):
        return os.path.join(self.dir.name, pod_name, "trace")

    def sync(self):
        """Starts a proxy for every new running pod, stops those whose pod is gone."""
        live = self.running_pods()
        for name, pod in live.items():
            if name not in self.proxies:
                self.proxies[name] = Proxy(env=self._env(pod))
        for name in [n for n in self.proxies if n not in live]:
            proxy = self.proxies.pop(name)
            proxy.signal(signal.SIGTERM)
            try:
                proxy.wait_exit(20)
            finally:
                proxy.close()
        return self.proxies

    def wait_pods(self, count, timeout=60):
        wait_until(lambda: len(self.sync()) == count, timeout, interval=0.3, message=f"{count} pod processes")
        return self.proxies

    def close(self):
        for proxy in self.proxies.values():
            proxy.close()
        self.proxies.clear()
        self.dir.cleanup()
