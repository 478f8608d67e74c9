"""Runs codexproxy-controller as a local process with a ServiceAccount's credentials (RBAC applies)."""
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import urllib.request

import artifacts
from kube import SOURCE_DIR, KubeTestCase, kubectl, wait_until

BIN_DIR = os.environ.get("CXP_BIN_DIR", os.path.join(SOURCE_DIR, "build/bin"))
CRD = os.path.join(SOURCE_DIR, "crds/codexproxies.codexproxy.io.yaml")
CLUSTER_ROLE = os.path.join(SOURCE_DIR, "config/rbac/controller-clusterrole.yaml")
POD_LEASE_POLICY = os.path.join(SOURCE_DIR, "config/admission/pod-lease-policy.yaml")
LEADER_ELECTION_ROLE = os.path.join(SOURCE_DIR, "config/rbac/leader-election-role.yaml")
METRICS_AUTH_ROLE = os.path.join(SOURCE_DIR, "config/rbac/metrics-auth-clusterrole.yaml")
METRICS_READER_ROLE = os.path.join(SOURCE_DIR, "config/rbac/metrics-reader-clusterrole.yaml")
APISERVER_ENDPOINTS_ROLE = os.path.join(SOURCE_DIR, "config/rbac/apiserver-endpoints-clusterrole.yaml")
CLUSTER_SH = os.path.join(SOURCE_DIR, "scripts/cluster.sh")
CONTROLLER = os.path.join(BIN_DIR, "codexproxy-controller")


def sa_kubeconfig(namespace, account, out):
    subprocess.run([CLUSTER_SH, "sa-kubeconfig", namespace, account, out], check=True,
                   capture_output=True, text=True)
    artifacts.note_kubeconfig_token(out)
    return out


def install_crd_and_cluster_role():
    kubectl("apply", "--server-side", "--force-conflicts", "-f", CRD)
    kubectl("wait", "--for=condition=Established", "crd/codexproxies.codexproxy.io", "--timeout=60s")
    for role in (CLUSTER_ROLE, METRICS_AUTH_ROLE, METRICS_READER_ROLE, APISERVER_ENDPOINTS_ROLE):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", role)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", POD_LEASE_POLICY)


class Controller:
    """One codexproxy-controller process; health and metrics on ephemeral loopback ports."""

    def __init__(self, kubeconfig, namespace, leader_elect=False, extra_args=(), metrics_token=None):
        """metrics_token: serve /metrics as in production (HTTPS, each scraper's token reviewed),
        read with this token; else plain HTTP without a check (--metrics-secure=false)."""
        self.log_file = tempfile.NamedTemporaryFile(prefix="controller-", suffix=".log", delete=False)
        self.metrics_token = metrics_token
        args = [CONTROLLER, "--kubeconfig", kubeconfig, "--namespace", namespace,
                "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0",
                *extra_args]
        if metrics_token is None:
            args.append("--metrics-secure=false")
        # Leader election is on by default; tests of one controller turn it off (a restarted
        # controller would otherwise wait out its predecessor's Lease after a SIGKILL).
        args += ["--leader-election-namespace", namespace] if leader_elect else ["--leader-elect=false"]
        self.process = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT)
        started = wait_until(lambda: self.find_event("started") or self._exited(), 20,
                             interval=0.02, message="the controller to start")
        if self.process.poll() is not None:
            raise AssertionError(f"the controller exited at startup:\n{self.raw_log()}")
        self.health_port = started["health_port"]
        self.metrics_port = started["metrics_port"]

    def _exited(self):
        return self.process.poll() is not None and {"event": "exited"}

    def raw_log(self):
        with open(self.log_file.name, errors="replace") as f:
            return f.read()

    def events(self, event):
        out = []
        for line in self.raw_log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event:
                out.append(entry)
        return out

    def find_event(self, event):
        found = self.events(event)
        return found[0] if found else None

    def _get(self, port, path, scheme="http", token=None):
        request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        # The certificate is self-signed: the secure-metrics tests check it on their own.
        context = ssl._create_unverified_context() if scheme == "https" else None
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def readyz(self):
        return self._get(self.health_port, "/readyz?verbose")

    def scrape(self, token):
        """GET /metrics over HTTPS with `token` (None: no Authorization header)."""
        return self._get(self.metrics_port, "/metrics", "https", token)

    def metrics(self):
        status, body = (self.scrape(self.metrics_token) if self.metrics_token is not None
                        else self._get(self.metrics_port, "/metrics"))
        if status != 200:
            raise AssertionError(f"/metrics answered {status}")
        return body

    def metric(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
            if not match or match.group(1) != name:
                continue
            sample_labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
            if all(sample_labels.get(k) == v for k, v in labels.items()):
                total += float(match.group(4))
        return total

    def writes(self):
        """Writes to managed objects plus every mutating API request (excluding Events)."""
        return self.metric("codexproxy_controller_object_writes_total")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self):
        self.stop(signal.SIGKILL)
        self.log_file.close()
        artifacts.keep("controller", [self.log_file.name])
        if os.environ.get("CXP_KEEP_LOGS") is None and os.path.exists(self.log_file.name):
            os.unlink(self.log_file.name)


class ControllerTestCase(KubeTestCase):
    """A namespace, a ServiceAccount bound (in that namespace) to the ClusterRole we ship, and its
    kubeconfig: the controller runs with exactly the permissions a real install gives it."""

    @classmethod
    def setUpClass(cls):
        install_crd_and_cluster_role()

    def setUp(self):
        super().setUp()
        kubectl("create", "serviceaccount", "codexproxy-controller", "-n", self.namespace)
        kubectl("create", "rolebinding", "codexproxy-controller", "-n", self.namespace,
                "--clusterrole", "codexproxy-controller",
                f"--serviceaccount={self.namespace}:codexproxy-controller")
        binding = f"{self.namespace}-apiserver-endpoints"  # cluster-scoped, as the chart binds it
        kubectl("create", "clusterrolebinding", binding, "--clusterrole", "codexproxy-controller-apiserver-endpoints",
                f"--serviceaccount={self.namespace}:codexproxy-controller")
        self.addCleanup(kubectl, "delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)
        kubectl("apply", "-n", self.namespace, "-f", LEADER_ELECTION_ROLE)
        kubectl("create", "rolebinding", "codexproxy-controller-leader-election", "-n", self.namespace,
                "--role", "codexproxy-controller-leader-election",
                f"--serviceaccount={self.namespace}:codexproxy-controller")
        self.kubeconfig = os.path.join(tempfile.mkdtemp(prefix="cxp-e2e-"), "controller.kubeconfig")
        sa_kubeconfig(self.namespace, "codexproxy-controller", self.kubeconfig)

    def metrics_reader_token(self):
        """Lets this test's controller review scrapers (the metrics-auth ClusterRole) and returns
        the token of a ServiceAccount bound to the metrics-reader ClusterRole."""
        for role, account in (("codexproxy-controller-metrics-auth", "codexproxy-controller"),
                              ("codexproxy-controller-metrics-reader", "scraper")):
            if account == "scraper":
                kubectl("create", "serviceaccount", account, "-n", self.namespace)
            binding = f"{self.namespace}-{account}-metrics"
            kubectl("create", "clusterrolebinding", binding, "--clusterrole", role,
                    f"--serviceaccount={self.namespace}:{account}")
            self.addCleanup(kubectl, "delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)
        return self.token("scraper")

    def token(self, account):
        token = kubectl("create", "token", account, "-n", self.namespace, "--duration", "1h").stdout.strip()
        artifacts.note_secrets([token])
        return token

    def start_controller(self, **kwargs):
        controller = Controller(self.kubeconfig, self.namespace, **kwargs)
        self.addCleanup(self._close_controller, controller)
        return controller

    def _close_controller(self, controller):
        if self.__dict__.get("_outcome") is not None and not self._outcome.success:
            print(f"--- controller log ({controller.log_file.name}) ---\n{controller.raw_log()[-6000:]}")
        controller.close()

    def apply_proxy(self, name, **spec):
        manifest = {"apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
                    "metadata": {"name": name}, "spec": {"image": "example.invalid/codex-proxy:1", **spec}}
        kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(manifest))

    def get(self, kind, name, check=True):
        result = kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=check)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def condition(self, name, condition_type):
        proxy = self.get("cxp", name)
        for condition in proxy.get("status", {}).get("conditions", []):
            if condition["type"] == condition_type:
                return condition
        return None
