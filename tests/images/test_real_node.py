"""The built images on a real node: kubelet + containerd + runc (CTest images.real_node).

The chart is installed with its default image (the controller image scripts/images.sh built, so the
controller runs as a real pod with its ServiceAccount token), a CodexProxy runs the built proxy image
with the real codex pointed at the model stub, and the test checks what only a real kubelet shows:
its own probes, `kubectl logs` and `exec`, the projected ServiceAccount token used by the pod's
reporter, a worker crash seen in `kubectl get codexproxy`, a hung proxy restarted by the liveness
probe, a rolling template change, and graceful termination: served through the preStop wait, gone
within the grace period; and a client routing like kube-proxy sees no refused or failed request
through a rolling update and a scale down. Both namespaces enforce Pod Security "restricted".
Needs `scripts/cluster.sh up --real-node` on CXP_CLUSTER_DIR with the images imported.
"""
import json
import os
import subprocess
import time
import unittest
import urllib.request

import images  # noqa: F401  (first: the tier's plane and import paths)
import artifacts  # noqa: E402
from images import SOURCE_DIR, PROXY_IMAGE, CONTROLLER_IMAGE, restricted_namespace  # noqa: E402
from kube import CLUSTER_DIR, kubectl, kubectl_json, wait_until  # noqa: E402
from real_worker import MODEL_KEY, MODEL_KEY_VAR, ModelStub  # noqa: E402
from test_helm import helm  # noqa: E402

CHART = os.path.join(SOURCE_DIR, "charts/codexproxy-operator")
NAMESPACE = "real-node"
NAME = "node"
GATEWAY = "10.85.0.1"  # the host on the node's pod network (scripts/cluster/node.sh)
DRAIN_SECONDS = 3
# This node has 2 cores; the defaults request 1 CPU per pod (sized for 64 concurrent turns): a
# rollout's surge pod, the NetworkPolicy test's second CodexProxy and the controller's two replicas
# would not fit. Sized as a user of a small node sizes them (docs/autoscaling.md, capacity).
SMALL_NODE_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1536Mi"}}


def ctr(*args):
    return subprocess.run(["ctr", "--address", os.path.join(CLUSTER_DIR, "node/containerd.sock"),
                           "--namespace", "k8s.io", *args], capture_output=True, text=True, check=True).stdout


def pods():
    return kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={NAME}")["items"]


def ready_pods():
    return [p for p in pods() if p["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def codexproxy():
    return kubectl_json("get", "codexproxy", NAME, "-n", NAMESPACE)


def host_pid(pod):
    """The host PID of the pod's codex-proxy container (its PID 1)."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    for line in ctr("tasks", "ls").splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container_id:
            return int(pid)
    raise AssertionError(f"no task for container {container_id}")


def chat(pod, text, timeout=60):
    request = urllib.request.Request(
        f"http://{pod['status']['podIP']}:11435/v1/chat/completions",
        data=json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": text}]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["choices"][0]["message"]["content"]


class RealNodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        node = kubectl_json("get", "nodes", "-l", "codexproxy.io/real-node=true")["items"]
        if not node:
            raise AssertionError("no real node: start the plane with scripts/cluster.sh up --real-node")
        images = ctr("images", "ls", "-q")
        for image in (PROXY_IMAGE, CONTROLLER_IMAGE):
            if image not in images.split():
                raise AssertionError(f"{image} is not on the real node: scripts/images.sh build, then up --real-node")
        cls.stub = ModelStub(host=GATEWAY, api_key=MODEL_KEY).start()
        # The chart as an SRE installs it: its default controller image is the one built here.
        # Both namespaces enforce Pod Security "restricted": the controller's and the proxies' pods
        # meet it (docs/security.md).
        restricted_namespace("codexproxy-system")
        restricted_namespace(NAMESPACE)
        kubectl("create", "serviceaccount", "scraper", "-n", NAMESPACE)
        helm("install", "cxp", CHART, "-n", "codexproxy-system", "--wait", "--timeout", "180s",
             "--set", "metrics.readers[0].name=scraper", "--set", f"metrics.readers[0].namespace={NAMESPACE}")
        kubectl("create", "secret", "generic", "model-key", "-n", NAMESPACE, f"--from-literal=apiKey={MODEL_KEY}")
        artifacts.note_secrets([MODEL_KEY])
        cls.apply_codexproxy()

    @classmethod
    def tearDownClass(cls):
        for namespace in (NAMESPACE, "codexproxy-system"):  # every container's log, for the secret scan
            for pod in kubectl_json("get", "pods", "-n", namespace)["items"]:
                log = kubectl("logs", "-n", namespace, pod["metadata"]["name"], check=False).stdout
                artifacts.keep_text("real-node", f"pod-{pod['metadata']['name']}.log", log)
        kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False, timeout=150)
        helm("uninstall", "cxp", "-n", "codexproxy-system", "--wait", check=False)
        cls.stub.stop()

    @classmethod
    def apply_codexproxy(cls, max_turns=1000, replicas=1):
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "image": PROXY_IMAGE, "resources": SMALL_NODE_RESOURCES,
                     "worker": {"model": "gpt-5", "drainSeconds": DRAIN_SECONDS, "maxTurns": max_turns,
                                "credentials": {"apiKeySecret": {"name": "model-key", "key": "apiKey"}},
                                "provider": {"name": "model stub", "baseURL": f"http://{GATEWAY}:{cls.stub.port}/v1",
                                             "envKey": MODEL_KEY_VAR},
                                "configOverrides": {"model_providers.codexproxy.request_max_retries": "0",
                                                    "model_providers.codexproxy.stream_max_retries": "0"}},
                     "probes": {"readiness": {"periodSeconds": 1, "failureThreshold": 1},
                                "liveness": {"periodSeconds": 1, "failureThreshold": 3}}}}))

    def wait_available(self, timeout=120):
        def available():
            status = codexproxy().get("status", {})
            return status.get("phase") == "Available" and status.get("readyReplicas") == 1 and len(ready_pods()) == 1
        wait_until(available, timeout, interval=0.5, message="the CodexProxy Available with its pod Ready")
        return ready_pods()[0]

    def test_a_pod_runs_the_image_ready_through_the_kubelets_probes_and_reports_with_its_token(self):
        pod = self.wait_available()
        self.assertEqual(pod["spec"]["nodeName"], kubectl_json("get", "nodes")["items"][0]["metadata"]["name"])
        self.assertTrue(pod["status"]["containerStatuses"][0]["ready"])
        # The pod's report: its heartbeat Lease, written with the kubelet's projected token (bound to
        # the pod: the admission policy lets it write only this Lease), copied by the controller.
        entries = {e["name"]: e for e in codexproxy()["status"].get("pods", [])}
        self.assertTrue(entries[pod["metadata"]["name"]]["ready"], entries)
        lease = kubectl_json("get", "lease", pod["metadata"]["name"], "-n", NAMESPACE)
        self.assertEqual(lease["spec"]["holderIdentity"], pod["metadata"]["name"])
        self.assertEqual([o["uid"] for o in lease["metadata"]["ownerReferences"]], [pod["metadata"]["uid"]])
        self.assertTrue(json.loads(lease["metadata"]["annotations"]["codexproxy.io/report"])["ready"])
        self.assertEqual(chat(pod, "[[reply:through a real node]]"), "through a real node")
        logs = kubectl("logs", "-n", NAMESPACE, pod["metadata"]["name"]).stdout
        self.assertIn('"event"', logs.splitlines()[0], "the proxy's JSON log through kubectl logs")
        self.assertNotIn(MODEL_KEY, logs)
        uid = kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--", "id", "-u").stdout.strip()
        self.assertEqual(uid, "65532")
        self.assertNotEqual(kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--", "sh", "-c",
                                    "touch /usr/local/bin/x", check=False).returncode, 0,
                            "the root filesystem is writable")
        controller = kubectl_json("get", "pods", "-n", "codexproxy-system")["items"][0]
        self.assertEqual(controller["spec"]["containers"][0]["image"], CONTROLLER_IMAGE)

    def test_b_a_worker_crash_shows_in_get_codexproxy_and_the_pod_recovers(self):
        pod = self.wait_available()
        before = codexproxy()["status"].get("restartsTotal", 0)
        kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--", "sh", "-c",
                'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = codex ] && kill -9 "${p#/proc/}"; done; true')
        wait_until(lambda: codexproxy()["status"].get("restartsTotal", 0) > before, 60, interval=0.5,
                   message="RESTARTS to count the worker crash")
        columns = kubectl("get", "codexproxy", NAME, "-n", NAMESPACE, "--no-headers").stdout.split()
        self.assertGreater(int(columns[3]), before, columns)
        pod = self.wait_available()
        self.assertEqual(pod["status"]["containerStatuses"][0]["restartCount"], 0, "the container was restarted")
        self.assertEqual(chat(pod, "[[reply:after the crash]]"), "after the crash")

    def test_c_a_hung_proxy_is_restarted_by_the_kubelets_liveness_probe(self):
        pod = self.wait_available()
        restarts = pod["status"]["containerStatuses"][0]["restartCount"]
        os.kill(host_pid(pod), 19)  # SIGSTOP: the process is there, /livez stops answering
        wait_until(lambda: pods()[0]["status"]["containerStatuses"][0]["restartCount"] > restarts, 90,
                   interval=0.5, message="the kubelet to restart the hung container")
        pod = self.wait_available()
        self.assertEqual(chat(pod, "[[reply:restarted]]"), "restarted")

    def test_d_a_rolling_template_change_and_graceful_termination(self):
        old = self.wait_available()
        self.apply_codexproxy(max_turns=500)  # rolls the pods (restart hash)
        wait_until(lambda: [p for p in ready_pods() if p["metadata"]["uid"] != old["metadata"]["uid"]], 120,
                   interval=0.5, message="a new pod Ready")
        wait_until(lambda: all(p["metadata"]["uid"] != old["metadata"]["uid"] for p in pods()), 60,
                   interval=0.5, message="the old pod gone")
        pod = self.wait_available()
        generation = codexproxy()["metadata"]["generation"]
        wait_until(lambda: codexproxy()["status"].get("observedGeneration") == generation, 30, interval=0.5,
                   message="the new generation observed")
        # Graceful termination: the pod keeps serving through its preStop wait (Services and load
        # balancers drop it meanwhile), then the proxy drains and exits on SIGTERM, well before the
        # grace period (preStop + drainSeconds + 5) ends in a SIGKILL.
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        pre_stop = int(pod["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
        self.assertEqual(grace, pre_stop + DRAIN_SECONDS + 5)
        started = time.monotonic()
        kubectl("delete", "pod", "-n", NAMESPACE, pod["metadata"]["name"], "--wait=false")
        self.assertEqual(chat(pod, "[[reply:while terminating]]"), "while terminating")
        self.assertLess(time.monotonic() - started, pre_stop, "answered inside the preStop wait")
        wait_until(lambda: kubectl("get", "pod", "-n", NAMESPACE, pod["metadata"]["name"],
                                   check=False).returncode != 0, grace + 30, interval=0.2, message="the pod gone")
        took = time.monotonic() - started
        self.assertGreaterEqual(took, pre_stop, "the preStop wait did not run")
        self.assertLess(took, grace, f"the pod took {took:.1f}s to stop (grace {grace}s): SIGTERM not handled")
        self.wait_available()

    def test_e_a_client_sees_no_refused_or_failed_request_through_a_rollout_and_a_scale_down(self):
        # The client routes as kube-proxy does: each request to one of the Service's ready endpoints,
        # read from its EndpointSlices (polled every 0.3 s; kube-proxy follows them within about a
        # second, which the 5 s preStop wait covers).
        self.wait_available()
        self.apply_codexproxy(replicas=2)
        wait_until(lambda: len(ready_pods()) == 2, 120, interval=0.5, message="2 pods Ready")
        client = EndpointClient(NAME, NAMESPACE)
        self.addCleanup(client.stop)
        wait_until(lambda: client.answered >= 5, 60, interval=0.2, message="the client served")
        before = {p["metadata"]["uid"] for p in pods()}
        self.apply_codexproxy(max_turns=600, replicas=2)  # a template change: a rolling update
        wait_until(lambda: len(ready_pods()) == 2 and not before & {p["metadata"]["uid"] for p in pods()}, 240,
                   interval=0.5, message="both pods replaced and Ready")
        rolled = client.answered
        kubectl("scale", "codexproxy", NAME, "-n", NAMESPACE, "--replicas=1")
        wait_until(lambda: len(pods()) == 1, 60, interval=0.5, message="scaled down to one pod")
        wait_until(lambda: client.answered >= rolled + 10, 60, interval=0.2, message="served after the scale down")
        failures, answered = client.stop()
        self.assertEqual(failures, [], f"{len(failures)} of {answered + len(failures)} requests failed")
        self.assertGreater(answered, 20)


    def test_f_the_controllers_metrics_answer_a_readers_token_over_https(self):
        # As Prometheus scrapes them: the pod's HTTPS port, a ServiceAccount token bound by
        # metrics.readers (the certificate is self-signed: not verified here).
        import ssl
        token = kubectl("create", "token", "scraper", "-n", NAMESPACE, "--duration", "10m").stdout.strip()
        artifacts.note_secrets([token])
        controller = kubectl_json("get", "pods", "-n", "codexproxy-system", "-l", "app.kubernetes.io/instance=cxp")
        address = controller["items"][0]["status"]["podIP"]

        def scrape(headers):
            request = urllib.request.Request(f"https://{address}:8443/metrics", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10, context=ssl._create_unverified_context()) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, ""
        status, body = scrape({"Authorization": f"Bearer {token}"})
        self.assertEqual(status, 200)
        self.assertIn("codexproxy_controller_build_info", body)
        self.assertEqual(scrape({})[0], 401)

    def test_g_the_network_policy_is_enforced_by_a_real_implementation(self):
        # kube-network-policies enforces; the model lives in a network namespace of the test's own.
        from network_policies import Enforcer, ModelNetwork
        network = ModelNetwork(api_key=MODEL_KEY)
        self.addCleanup(network.stop)
        enforcer = Enforcer()
        self.addCleanup(enforcer.stop)
        clients = {"callers": "np-callers", "monitoring": "np-monitoring", "outsiders": "np-outsiders"}
        for namespace in clients.values():
            kubectl("create", "namespace", namespace)
            self.addCleanup(kubectl, "delete", "namespace", namespace, "--wait=false", check=False)
            # A client pod: the proxy image has bash (its /dev/tcp) and coreutils' timeout.
            kubectl("run", "client", "-n", namespace, f"--image={PROXY_IMAGE}", "--image-pull-policy=Never",
                    "--restart=Never", "--command", "--", "sleep", "infinity")
        by_name = lambda ns: {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}  # noqa: E731
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
            "metadata": {"name": "fenced", "namespace": NAMESPACE},
            "spec": {"image": PROXY_IMAGE, "resources": SMALL_NODE_RESOURCES,
                     "worker": {"model": "gpt-5",
                                "credentials": {"apiKeySecret": {"name": "model-key", "key": "apiKey"}},
                                "provider": {"name": "model stub", "envKey": MODEL_KEY_VAR,
                                             "baseURL": f"http://{network.MODEL}:{network.model_port}/v1"},
                                "configOverrides": {"model_providers.codexproxy.request_max_retries": "0",
                                                    "model_providers.codexproxy.stream_max_retries": "0"}},
                     "networkPolicy": {"enabled": True, "apiFrom": [by_name("np-callers")],
                                       "metricsFrom": [by_name("np-monitoring")],
                                       "egressTo": {"modelCIDRs": [f"{network.MODEL}/32"],
                                                    "ports": [network.model_port]}}}}))
        self.addCleanup(kubectl, "delete", "codexproxy", "fenced", "-n", NAMESPACE, "--wait=false", check=False)
        wait_until(lambda: kubectl("get", "networkpolicy", "fenced", "-n", NAMESPACE, check=False).returncode == 0,
                   60, interval=0.5, message="the CodexProxy's NetworkPolicy")
        policy = kubectl_json("get", "networkpolicy", "fenced", "-n", NAMESPACE)
        self.assertEqual(policy["spec"]["policyTypes"], ["Ingress", "Egress"])
        for namespace in clients.values():
            kubectl("wait", "--for=condition=Ready", "pod/client", "-n", namespace, "--timeout=120s", timeout=150)

        def fenced_pod():
            items = kubectl_json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/instance=fenced")["items"]
            ready = [p for p in items if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in p["status"].get("conditions", []))]
            return ready[0] if ready else None
        # Ready through the kubelet's probes on the ops port: the node's own traffic passes the policy.
        pod = wait_until(fenced_pod, 180, interval=0.5, message="the fenced pod Ready behind its policy")
        address = pod["status"]["podIP"]

        def connect(namespace, pod_name, host, port, path):
            """The first line of an HTTP answer from inside a pod, or "" when the connection fails."""
            script = (f'exec 3<>/dev/tcp/{host}/{port} && printf "GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n" >&3 '
                      f'&& head -c 12 <&3')
            result = kubectl("exec", "-n", namespace, pod_name, "--", "timeout", "4", "bash", "-c", script,
                             check=False, timeout=30)
            return result.stdout if result.returncode == 0 else ""

        # Allowed first (the enforcer learns new pods from the API: poll), then what must be refused.
        wait_until(lambda: "200" in connect("np-callers", "client", address, 11435, "/v1/models"), 60,
                   interval=1, message="a listed caller reaching the API port")
        wait_until(lambda: "200" in connect("np-monitoring", "client", address, 11436, "/metrics"), 60,
                   interval=1, message="the monitoring peer scraping the ops port")
        for namespace, port, path in (("np-outsiders", 11435, "/v1/models"), ("np-outsiders", 11436, "/metrics"),
                                      ("np-monitoring", 11435, "/v1/models"), ("np-callers", 11436, "/readyz")):
            self.assertEqual(connect(namespace, "client", address, port, path), "",
                             f"{namespace} reached port {port} through the policy")
        # Egress: the worker's turn reaches the model (a real turn through the policy) ...
        self.assertEqual(chat(pod, "[[reply:behind a policy]]"), "behind a policy")
        # ... and from the pod, the model's address answers but another one does not.
        name = pod["metadata"]["name"]
        self.assertIn("HTTP/1.", connect(NAMESPACE, name, network.MODEL, network.model_port, "/v1/models"))
        self.assertEqual(connect(NAMESPACE, name, network.OTHER, network.other_port, "/v1/models"), "")
        with urllib.request.urlopen(f"http://{network.OTHER}:{network.other_port}/v1/models", timeout=10):
            pass  # that address answers the node: only the policy kept the pod from it
        # The refusals are the enforcer's verdicts (not a route that does not exist).
        log = enforcer.log()
        self.assertIn("Egress NetworkPolicies", log)
        self.assertGreaterEqual(log.count('verdict="drop"'), 5, "the enforcer dropped nothing")


class EndpointClient:
    """Chat completions in a loop, each to a ready endpoint of the Service (round robin)."""

    def __init__(self, service, namespace):
        import threading
        self.service, self.namespace = service, namespace
        self.endpoints, self.answered, self.failures = [], 0, []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.watch_endpoints, daemon=True),
                        threading.Thread(target=self.send, daemon=True)]
        for thread in self.threads:
            thread.start()

    def watch_endpoints(self):
        while not self.stopping.is_set():
            slices = kubectl_json("get", "endpointslices", "-n", self.namespace,
                                  "-l", f"kubernetes.io/service-name={self.service}")["items"]
            self.endpoints = [address for s in slices for e in s.get("endpoints") or []
                              if (e.get("conditions") or {}).get("ready") for address in e["addresses"]]
            self.stopping.wait(0.3)

    def send(self):
        i = 0
        while not self.stopping.is_set():
            endpoints = self.endpoints
            if not endpoints:
                self.stopping.wait(0.1)
                continue
            address = endpoints[i % len(endpoints)]
            i += 1
            try:
                reply = chat({"status": {"podIP": address}}, f"[[reply:ok {i}]]", timeout=30)
                if reply == f"ok {i}":
                    self.answered += 1
                else:
                    self.failures.append((address, f"reply {reply!r}"))
            except Exception as error:  # every failure counts: refused, reset, 5xx, timeout
                self.failures.append((address, repr(error)))
            self.stopping.wait(0.1)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        return list(self.failures), self.answered


if __name__ == "__main__":
    unittest.main()
