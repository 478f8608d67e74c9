"""The shared pod launcher (tests/pylib/pod_launcher.py) for e2e tests: the pods' ServiceAccount
kubeconfig made on the local control plane, everything removed afterwards."""
import os
import tempfile

from controller_harness import sa_kubeconfig
from kube import ADMIN_KUBECONFIG, kubectl, wait_until
from pod_launcher import PodLauncher
from proxy_process import FAKE_WORKER


class PodFleet(PodLauncher):
    def __init__(self, namespace, proxy_name, worker_env=None, worker=FAKE_WORKER, prestop=False):
        self._tmp = tempfile.TemporaryDirectory(prefix=f"cxp-pods-{proxy_name}-")
        wait_until(lambda: kubectl("get", "serviceaccount", proxy_name, "-n", namespace, check=False).returncode == 0,
                   30, interval=0.2, message="the pods' ServiceAccount")
        kubeconfig = sa_kubeconfig(namespace, proxy_name, os.path.join(self._tmp.name, "pods.kubeconfig"))
        super().__init__(namespace, proxy_name, os.path.join(self._tmp.name, "pods"), kubeconfig, ADMIN_KUBECONFIG,
                         worker=worker, worker_env=worker_env, prestop=prestop)
        self.kubeconfig = kubeconfig  # the pods' ServiceAccount

    def close(self):
        super().close()
        self._tmp.cleanup()
