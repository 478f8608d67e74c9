"""Operator benchmarks on a local control plane of their own (build/bench-cluster). Prints figures;
not a test. See docs/benchmarks.md. Arguments pick parts: apply pods2 pods20 fleet cold cold5000
(default: apply pods2 pods20 cold). fleet: 200 pods on one CodexProxy."""
import datetime
import http.client
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("CXP_CLUSTER_DIR", os.path.join(ROOT, "build/bench-cluster"))
os.environ.setdefault("CXP_SOURCE_DIR", ROOT)
sys.path[:0] = [os.path.join(ROOT, "tests/e2e"), os.path.join(ROOT, "tests/pylib")]

from controller_harness import (CLUSTER_SH, LEADER_ELECTION_ROLE, Controller,  # noqa: E402
                                install_crd_and_cluster_role, sa_kubeconfig)
from kube import CLUSTER_DIR, kubectl, wait_until  # noqa: E402
from pod_fleet import PodFleet  # noqa: E402

PKI = os.path.join(CLUSTER_DIR, "pki")
CXP = "/apis/codexproxy.io/v1alpha1/namespaces/{ns}/codexproxies"


class Api:
    """A minimal admin client (client certificate) for precise timing without kubectl's startup."""

    def __init__(self):
        with open(os.path.join(CLUSTER_DIR, "ports.env")) as f:
            self.port = int(next(line for line in f if line.startswith("API_PORT=")).split("=")[1])
        self.context = ssl.create_default_context(cafile=os.path.join(PKI, "ca.crt"))
        self.context.load_cert_chain(os.path.join(PKI, "admin.crt"), os.path.join(PKI, "admin.key"))

    def request(self, method, path, body=None, content_type="application/json"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": content_type} if body is not None else {})
            response = conn.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            conn.close()

    def watch(self, path, on_event, stop):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=600)
        conn.request("GET", path + ("&" if "?" in path else "?") + "watch=true")
        response = conn.getresponse()
        while not stop.is_set():
            line = response.readline()
            if not line:
                break
            event = json.loads(line)
            if "type" not in event:
                raise RuntimeError(f"watch {path} failed: {event}")
            on_event(event, time.monotonic())


def proxy(name, replicas=0, **spec):
    return {"apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy", "metadata": {"name": name},
            "spec": {"replicas": replicas, "image": "example.invalid/codex-proxy:1", **spec}}


def percentiles(values):
    values = sorted(values)
    return (f"p50 {statistics.median(values) * 1000:.0f} ms, "
            f"p95 {values[min(len(values) - 1, int(len(values) * 0.95))] * 1000:.0f} ms (n={len(values)})")


def namespace(name):
    kubectl("create", "namespace", name)
    kubectl("create", "serviceaccount", "ctrl", "-n", name)
    kubectl("create", "rolebinding", "ctrl", "-n", name, "--clusterrole", "codexproxy-controller",
            f"--serviceaccount={name}:ctrl")
    kubectl("apply", "-n", name, "-f", LEADER_ELECTION_ROLE)
    kubectl("create", "rolebinding", "ctrl-le", "-n", name, "--role", "codexproxy-controller-leader-election",
            f"--serviceaccount={name}:ctrl")
    wait_until(lambda: kubectl("get", "sa", "ctrl", "-n", name, check=False).returncode == 0, 30)
    return sa_kubeconfig(name, "ctrl", os.path.join(CLUSTER_DIR, f"{name}.kubeconfig"))


OPEN = []  # controllers and fleets to close however a part ends


def track(thing):
    OPEN.append(thing)
    return thing


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) / 1024


def bench_apply_to_deployment(api, count=100):
    ns = "bench-apply"
    controller = track(Controller(namespace(ns), ns, extra_args=os.environ.get("CXP_BENCH_CONTROLLER_ARGS", "").split()))
    seen = {}
    stop = threading.Event()
    threading.Thread(target=api.watch, daemon=True,
                     args=(f"/apis/apps/v1/namespaces/{ns}/deployments",
                           lambda e, t: seen.setdefault(e["object"]["metadata"]["name"], t), stop)).start()
    time.sleep(0.5)
    latencies, posted = [], {}
    for i in range(count):
        start = time.monotonic()
        posted[f"p{i}"] = time.time()
        status, _ = api.request("POST", CXP.format(ns=ns), proxy(f"p{i}"))
        assert status == 201, status
        wait_until(lambda: f"p{i}" in seen, 30, interval=0.001)
        latencies.append(seen[f"p{i}"] - start)
    stop.set()
    print(f"kubectl apply → Deployment exists: {percentiles(latencies)}")
    # Where the time goes, from the controller's log (object_created, ms timestamps): the POST to
    # the reconcile's first write, and to the Deployment's write.
    created = {}
    for event in controller.events("object_created"):
        name = event["object"].split("/", 1)[1].removesuffix("-settings")
        stamp = datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        created.setdefault(name, {}).setdefault(event["kind"], stamp)
    first = [min(kinds.values()) - posted[name] for name, kinds in created.items() if name in posted]
    deployment = [kinds["Deployment"] - posted[name] for name, kinds in created.items()
                  if name in posted and "Deployment" in kinds]
    print(f"  POST → the reconcile's first write: {percentiles(first)}")
    print(f"  POST → the Deployment written: {percentiles(deployment)}")
    controller.close()


def process_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def apiserver_cpu_seconds():
    """CPU seconds (user + system) the kube-apiserver's process group has used so far."""
    with open(os.path.join(CLUSTER_DIR, "pids", "kube-apiserver.pid")) as f:
        group = int(f.read().strip())
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields[2]: the process group (after state and ppid)
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def bench_cold_start(api, count=1000):
    ns = f"bench-cold-{count}"
    kubeconfig = namespace(ns)
    for i in range(count):
        status, _ = api.request("POST", CXP.format(ns=ns), proxy(f"c{i}"))
        assert status == 201, status
    start = time.monotonic()
    apiserver_cpu = apiserver_cpu_seconds()
    controller = track(Controller(kubeconfig, ns, extra_args=os.environ.get("CXP_BENCH_CONTROLLER_ARGS", "").split()))

    def reconciled():
        _, items = api.request("GET", CXP.format(ns=ns))
        return sum(1 for item in items["items"] if item.get("status", {}).get("observedGeneration") == 1)
    wait_until(lambda: reconciled() == count, 3600, interval=1)
    elapsed = time.monotonic() - start
    apiserver_cpu = apiserver_cpu_seconds() - apiserver_cpu
    requests = {m: controller.metric("rest_client_requests_total", method=m) for m in ("GET", "PATCH", "POST", "WATCH")}
    writes = controller.metric("codexproxy_controller_object_writes_total")
    reconciles = controller.metric("controller_runtime_reconcile_total")
    print(f"cold start with {count} CodexProxies: all reconciled in {elapsed:.1f} s "
          f"({count / elapsed:.1f}/s; controller flags: {os.environ.get('CXP_BENCH_CONTROLLER_ARGS') or 'defaults'})")
    print(f"  API requests: {json.dumps(requests)}; writes per CodexProxy {writes / count:.2f} "
          f"(7 objects + status); reconciles {reconciles:.0f}")
    print(f"  CPU seconds: API server {apiserver_cpu:.0f}, controller {process_cpu_seconds(controller.process.pid):.0f} "
          f"(of {os.cpu_count() * elapsed:.0f} on {os.cpu_count()} cores)")
    time.sleep(5)
    print(f"  controller RSS with {count} CodexProxies and their objects cached: {rss_mib(controller.process.pid):.1f} MiB")
    controller.close()


def count_writes(api, ns, seconds):
    """MODIFIED events of the CodexProxies and of the pods' Leases in `ns` during `seconds`."""
    counts = {"codexproxies": 0, "leases": 0}
    stop = threading.Event()
    for plural, prefix in (("codexproxies", "/apis/codexproxy.io/v1alpha1"), ("leases", "/apis/coordination.k8s.io/v1")):
        def on_event(event, _, plural=plural):
            if event["type"] == "MODIFIED":
                counts[plural] += 1
        status, listed = api.request("GET", f"{prefix}/namespaces/{ns}/{plural}")
        threading.Thread(target=api.watch, daemon=True, args=(
            f"{prefix}/namespaces/{ns}/{plural}?resourceVersion={listed['metadata']['resourceVersion']}",
            on_event, stop)).start()
    time.sleep(seconds)
    stop.set()
    return counts


def bench_pods(api, pods):
    ns = f"bench-pods-{pods}"
    controller = track(Controller(namespace(ns), ns))
    status, body = api.request("POST", CXP.format(ns=ns), proxy("fleet", replicas=pods))
    assert status == 201, body
    # A worker ready for 100 ms counts as stable, so 20 crashes in a row stay below WORKER_RESTART_MAX.
    started = time.monotonic()
    fleet = track(PodFleet(ns, "fleet", worker_env={"WORKER_STABLE_MS": "100"}))
    proxies = fleet.wait_pods(pods, timeout=600)
    path = CXP.format(ns=ns) + "/fleet"
    wait_until(lambda: api.request("GET", path)[1].get("status", {}).get("ready") == f"{pods}/{pods}", 300, interval=0.2)
    print(f"{pods} pods started and all ready in the status: {time.monotonic() - started:.1f} s")

    def restarts():  # status.restartsTotal: over every pod, also those status.pods omits
        return api.request("GET", path)[1]["status"].get("restartsTotal", 0)
    def reported(target):  # the restarts in the pod's own report (its Lease)
        lease = api.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{target}")[1]
        return json.loads(lease["metadata"]["annotations"]["codexproxy.io/report"])["restartsTotal"]
    crash, crash_lease = [], []
    targets = sorted(proxies.items())
    for i in range(20):
        target, proxy_process = targets[i % len(targets)]
        proxy_process.wait_ready(10)
        # Stable again (the next crash starts a new streak), and the status settled: more than the
        # controller's 300 ms report window since the last change, so an isolated crash is timed.
        time.sleep(0.6)
        before, before_lease = restarts(), reported(target)
        worker = proxy_process.readyz()[1]["worker"]["pid"]
        start = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: reported(target) > before_lease, 10, interval=0.002)
        crash_lease.append(time.monotonic() - start)
        wait_until(lambda: restarts() > before, 10, interval=0.002)
        crash.append(time.monotonic() - start)
    print(f"worker crash → the pod's Lease has it ({pods} pods): {percentiles(crash_lease)}")
    print(f"worker crash → the status counts the restart ({pods} pods): {percentiles(crash)}")
    for settle in (True, False):
        flips = []
        for i in range(10):
            enabled = i % 2 == 0
            start = time.monotonic()
            api.request("PATCH", path, {"spec": {"maintenance": {"enabled": enabled}}}, "application/merge-patch+json")
            want = 503 if enabled else 200
            for p in proxies.values():
                wait_until(lambda: p.request("GET", "/v1/models")[0] == want, 60, interval=0.002)
            flips.append(time.monotonic() - start)
            if settle:  # every pod's report of the flip in the status before the next one
                in_force = f"in force on {pods if enabled else 0} of {pods} pods"
                wait_until(lambda: any(c.get("message") == in_force for c in
                                       api.request("GET", path)[1]["status"].get("conditions", [])), 60, interval=0.1)
        reported = time.monotonic()
        in_force = f"in force on 0 of {pods} pods"
        wait_until(lambda: any(c.get("message") == in_force for c in
                               api.request("GET", path)[1]["status"].get("conditions", [])), 120, interval=0.1)
        print(f"maintenance patch → all {pods} pods answer 503/200, "
              f"{'each flip reported before the next' if settle else 'back to back'}: {percentiles(flips)}"
              + ("" if settle else f"; the last flip in the status {time.monotonic() - reported:.1f} s after"))
    time.sleep(5)
    window = 120
    cpu = apiserver_cpu_seconds()
    counts = count_writes(api, ns, window)
    cpu = apiserver_cpu_seconds() - cpu
    print(f"steady state ({pods} pods, {window} s): {counts['codexproxies']} writes of the CodexProxy, "
          f"{counts['leases']} Lease renewals → {counts['leases'] / pods / window * 3600:.0f} per pod-hour; "
          f"API server CPU {cpu / window * 60:.1f} s per minute (the whole plane's load)")
    fleet.close()
    controller.close()


def main():
    subprocess.run([CLUSTER_SH, "up"], check=True)
    try:
        install_crd_and_cluster_role()
        api = Api()
        wanted = set(sys.argv[1:]) or {"apply", "pods2", "pods20", "cold"}
        if "apply" in wanted:
            bench_apply_to_deployment(api)
        if "pods2" in wanted:
            bench_pods(api, 2)
        if "pods20" in wanted:
            bench_pods(api, 20)
        if "fleet" in wanted:
            bench_pods(api, 200)
        if "cold" in wanted:
            bench_cold_start(api)
        if "cold5000" in wanted:
            bench_cold_start(api, 5000)
    finally:
        for thing in reversed(OPEN):
            thing.close()
        if os.environ.get("CXP_BENCH_KEEP_CLUSTER") is None:
            subprocess.run([CLUSTER_SH, "down"], check=False)


if __name__ == "__main__":
    main()
