"""A real NetworkPolicy implementation on the real node, and a network of the test's own to enforce it on.

`Enforcer` runs kube-network-policies (sigs.k8s.io/kube-network-policies, built by
scripts/cluster/install.sh) on the node as its DaemonSet would: one process with the node's name,
nftables rules that queue each pod connection's first packet to it (NFQUEUE), a verdict from the
NetworkPolicies it watches. It reads the cluster with its own ServiceAccount's token, mounted where
in-cluster configuration looks for it — in a mount namespace of its own, so the host is untouched.
On SIGTERM it removes its nftables table. On a kernel without nftables' queue expression (this
machine's) its rules do not load, and the same steering is installed with iptables' NFQUEUE target
(`_steer_with_iptables`): which packets are asked about is ours then, every verdict still its own.

`ModelNetwork` is a network namespace the test creates (this machine's rule: traffic only to
loopback or into namespaces a test made) behind a veth pair, routed from the node: two addresses,
a model stub on the first and a plain listener on the second. Traffic from the pods to it is
forwarded by the node, so the policy decides it (traffic to the node's own addresses is always
allowed by NetworkPolicy).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

import artifacts
from images import SOURCE_DIR
from kube import CLUSTER_DIR, kubectl, wait_until

TOOLS_BIN = os.path.join(os.environ.get("CXP_TOOLS_CACHE", os.path.expanduser("~/.cache/codexproxy-tools")), "bin")
ENFORCER = os.path.join(TOOLS_BIN, "kube-network-policies")
SA_DIR = "/run/secrets/kubernetes.io/serviceaccount"
POD_SUBNET = "10.85.0.0/24"  # the real node's pods (scripts/cluster/node.bash)

# What kube-network-policies reads (its own install manifest's ClusterRole).
RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-network-policies, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kube-network-policies}
rules:
- apiGroups: [""]
  resources: [pods, namespaces, nodes]
  verbs: [list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kube-network-policies}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-network-policies}
subjects: [{kind: ServiceAccount, name: kube-network-policies, namespace: kube-system}]
"""


def _api_port():
    import yaml
    with open(os.path.join(CLUSTER_DIR, "kubeconfig")) as f:
        server = yaml.safe_load(f)["clusters"][0]["cluster"]["server"]
    return server.rsplit(":", 1)[1].strip("/")


class Enforcer:
    CHAIN = "CXP-NETPOL-QUEUE"
    def __init__(self):
        if not os.access(ENFORCER, os.X_OK):
            raise AssertionError(f"{ENFORCER} is missing: run scripts/setup.sh (scripts/cluster/install.sh builds it)")
        kubectl("apply", "-f", "-", input=RBAC)
        token = kubectl("create", "token", "kube-network-policies", "-n", "kube-system", "--duration=2h").stdout.strip()
        artifacts.note_secrets([token])
        self.folder = tempfile.mkdtemp(prefix="cxp-knp-")
        with open(os.open(os.path.join(self.folder, "token"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(token)
        with open(os.path.join(CLUSTER_DIR, "pki/ca.crt")) as src, open(os.path.join(self.folder, "ca.crt"), "w") as dst:
            dst.write(src.read())
        with open(os.path.join(self.folder, "namespace"), "w") as f:
            f.write("kube-system")
        self.log_path = os.path.join(self.folder, "kube-network-policies.log")
        script = (f"mount -t tmpfs -o size=1m,mode=0755 tmpfs /run && mkdir -p {SA_DIR} && "
                  f"cp {self.folder}/token {self.folder}/ca.crt {self.folder}/namespace {SA_DIR}/ && "
                  f"exec {ENFORCER} --disable-nri --netfilter-bug-1766-fix=false --metrics-bind-address=127.0.0.1:0 --v=2")
        env = {**os.environ, "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": _api_port()}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.steering = False
        try:
            wait_until(lambda: self._exited() or "Syncing nftables rules" in self.log(), 60, interval=0.2,
                       message="kube-network-policies syncing its nftables rules")
            time.sleep(2)
            if 'syncing nftables rules" error' in self.log():
                self._steer_with_iptables()
        except BaseException:
            self.stop()
            raise

    def _steer_with_iptables(self):
        """A kernel without nftables' `queue` expression (nft_queue; this machine's: its rule load
        fails with ENOENT) can still queue packets with iptables' NFQUEUE target. The same steering
        kube-network-policies' own nftables chain does at postrouting, in a chain of ours: established
        flows and the node's root-owned traffic (the kubelet's probes) pass, every other new connection
        from or to a pod of this node is queued to it for a verdict. The verdicts stay its own."""
        self.steering = True
        mangle = ["iptables", "-w", "-t", "mangle"]
        subprocess.run([*mangle, "-N", self.CHAIN], check=True, capture_output=True)
        for rule in (["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"],
                     ["-m", "owner", "--uid-owner", "0", "-j", "RETURN"],
                     ["-s", POD_SUBNET, "-j", "NFQUEUE", "--queue-num", "100", "--queue-bypass"],
                     ["-d", POD_SUBNET, "-j", "NFQUEUE", "--queue-num", "100", "--queue-bypass"]):
            subprocess.run([*mangle, "-A", self.CHAIN, *rule], check=True, capture_output=True)
        subprocess.run([*mangle, "-A", "POSTROUTING", "-j", self.CHAIN], check=True, capture_output=True)

    def _unsteer(self):
        mangle = ["iptables", "-w", "-t", "mangle"]
        subprocess.run([*mangle, "-D", "POSTROUTING", "-j", self.CHAIN], capture_output=True)
        subprocess.run([*mangle, "-F", self.CHAIN], capture_output=True)
        subprocess.run([*mangle, "-X", self.CHAIN], capture_output=True)

    def _exited(self):
        if self.process.poll() is not None:
            raise AssertionError(f"kube-network-policies exited {self.process.returncode}: {self.log()[-2000:]}")
        return False

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self._unsteer()  # first: with no listener a queued packet would pass (--queue-bypass) anyway
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # it removes its nftables table
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        artifacts.keep("real-node", [self.log_path])
        kubectl("delete", "-f", "-", "--ignore-not-found", input=RBAC, check=False)


class ModelNetwork:
    """netns cxp-model: 10.86.0.2 (the model stub) and 10.86.0.3 (something else), via 10.86.0.1."""
    NETNS, HOST_LINK = "cxp-model", "cxpmodel0"
    HOST, MODEL, OTHER = "10.86.0.1", "10.86.0.2", "10.86.0.3"

    def __init__(self, api_key):
        self.processes = []
        self._ip("netns", "add", self.NETNS)
        try:
            self._ip("link", "add", self.HOST_LINK, "type", "veth", "peer", "name", "eth0", "netns", self.NETNS)
            self._ip("addr", "add", f"{self.HOST}/24", "dev", self.HOST_LINK)
            self._ip("link", "set", self.HOST_LINK, "up")
            for address in (self.MODEL, self.OTHER):
                self._ns("ip", "addr", "add", f"{address}/24", "dev", "eth0")
            self._ns("ip", "link", "set", "lo", "up")
            self._ns("ip", "link", "set", "eth0", "up")
            self._ns("ip", "route", "add", "default", "via", self.HOST)
            stub = os.path.join(SOURCE_DIR, "tests/model-stub/model_stub.py")
            self.model_port = self._serve([sys.executable, stub, "--host", self.MODEL, "--port", "0", "--api-key", api_key])
            self.other_port = self._serve([sys.executable, stub, "--host", self.OTHER, "--port", "0"])
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def _ns(self, *command):
        subprocess.run(["ip", "netns", "exec", self.NETNS, *command], check=True, capture_output=True, text=True)

    def _serve(self, command):
        process = subprocess.Popen(["ip", "netns", "exec", self.NETNS, *command], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        self.processes.append(process)
        import json
        return json.loads(process.stdout.readline())["port"]

    def stop(self):
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.NETNS], capture_output=True)  # takes its veth end along
        subprocess.run(["ip", "link", "del", self.HOST_LINK], capture_output=True)
