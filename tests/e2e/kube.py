"""Helpers for e2e tests against the local control plane started by scripts/cluster.sh."""
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from polling import wait_until  # noqa: F401  (re-exported for the tests)

SOURCE_DIR = os.environ.get("CXP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
CLUSTER_DIR = os.environ.get("CXP_CLUSTER_DIR", os.path.join(SOURCE_DIR, "build/cluster"))
ADMIN_KUBECONFIG = os.path.join(CLUSTER_DIR, "kubeconfig")


def tools_bin():
    with open(os.path.join(CLUSTER_DIR, "ports.env")) as f:
        for line in f:
            if line.startswith("BIN="):
                return line.strip().split("=", 1)[1]
    raise RuntimeError("no BIN in build/cluster/ports.env")


def kubectl(*args, kubeconfig=ADMIN_KUBECONFIG, check=True, input=None, timeout=60):
    result = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True,
                            text=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def kubectl_json(*args, **kwargs):
    return json.loads(kubectl(*args, "-o", "json", **kwargs).stdout)


class KubeTestCase(unittest.TestCase):
    """Gives each test its own namespace, deleted afterwards."""

    def setUp(self):
        self.namespace = f"e2e-{uuid.uuid4().hex[:8]}"
        kubectl("create", "namespace", self.namespace)
        self.addCleanup(kubectl, "delete", "namespace", self.namespace, "--wait=false", check=False)
        wait_until(lambda: kubectl("get", "serviceaccount", "default", "-n", self.namespace,
                                   check=False).returncode == 0, 60, message="the default ServiceAccount")
