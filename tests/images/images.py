"""The built images and podman, for the images tier (scripts/images.sh builds them). Imported
first by the tier's modules: it points them at the tier's own control plane and makes the e2e
helpers (kube, test_helm) and tests/pylib importable."""
import os
import subprocess
import sys
import uuid

SOURCE_DIR = os.environ.get("CXP_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
# This tier's own control plane with its real node (not the e2e tier's shared one).
os.environ.setdefault("CXP_CLUSTER_DIR", os.path.join(SOURCE_DIR, "build/images/cluster"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests/e2e"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests/pylib"))

import artifacts  # noqa: E402
from kube import kubectl, wait_until  # noqa: E402
from local_ports import free_port  # noqa: E402,F401  (for the tier's modules)
IMAGES_SH = os.path.join(SOURCE_DIR, "scripts/images.sh")
# podman reads the configuration scripts/images.sh writes (runc, cgroupfs, ulimits).
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": os.path.join(SOURCE_DIR, "build/images/containers.conf")}


def _names():
    names = subprocess.run([IMAGES_SH, "names"], check=True, capture_output=True, text=True).stdout.split()
    return os.environ.get("CXP_PROXY_IMAGE", names[0]), os.environ.get("CXP_CONTROLLER_IMAGE", names[1])


PROXY_IMAGE, CONTROLLER_IMAGE = _names()


def podman(*args, check=True, timeout=120):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, env=PODMAN_ENV, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}… failed ({result.returncode}): {result.stderr}")
    return result


def restricted_namespace(name):
    """A namespace whose pods must meet Pod Security "restricted" (admission refuses the others)."""
    def phase():
        result = kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}", check=False)
        return result.stdout if result.returncode == 0 else None
    wait_until(lambda: phase() != "Terminating", 120, interval=0.5, message=f"namespace {name} deleted")
    if phase() is None:
        kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "--overwrite", "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")
    # Enforced, not just labelled: a root pod is refused.
    refused = kubectl("run", "pss-probe", "-n", name, "--image=busybox", "--restart=Never", "--dry-run=server",
                      check=False)
    assert refused.returncode != 0 and "restricted" in refused.stderr, refused.stderr


class Container:
    """A detached container; `stop` removes it (its log is kept for the secret scan first)."""

    def __init__(self, image, options, env, args=()):
        self.name = f"cxp-check-{uuid.uuid4().hex[:8]}"
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        podman("run", "-d", "--name", self.name, *options, *env_args, image, *args)

    def exited(self):
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False).stdout.strip()
        return state != "true"

    def logs(self):
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command):
        return podman("exec", self.name, *command, check=False)

    def stop(self):
        artifacts.keep_text("container", f"{self.name}.log", self.logs())
        podman("rm", "-f", "-t", "10", self.name, check=False)
