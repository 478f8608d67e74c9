"""The custom metrics API of a real cluster, here: prometheus-adapter (built from its Go module by
scripts/cluster/install.sh) serving custom.metrics.k8s.io behind a real APIService, reading a
real Prometheus.

The API server reaches an extension API server the way a cluster does: the APIService names a
Service, the Service's endpoints give an address (the plane runs with
--enable-aggregator-routing), the front-proxy client certificate authenticates the proxied call.
An endpoint may not be a loopback address, and tests on this machine may send traffic only to
loopback or into a network namespace they create themselves. So the endpoint is 10.87.0.2, inside
the network namespace `cxp-agg` this helper creates (a veth pair to the host's 10.87.0.1), where a
relay listens; each connection it accepts is carried to the adapter on the host's 127.0.0.1. The
relay's listening socket is opened inside the namespace (setns around socket() and bind()); its
upstream connections are made from the host's namespace. TLS is end to end: the relay only copies
bytes. Needs root (a network namespace)."""
import base64
import ctypes
import os
import socket
import subprocess
import tempfile
import threading

from local_ports import free_port
from polling import stop_process, wait_until

CLONE_NEWNET = 0x40000000


def _run(*command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


class NetnsRelay:
    """Listens on `address`:`port` inside netns `name`; each connection is carried to 127.0.0.1:`upstream`."""

    def __init__(self, netns, address, port, upstream):
        self.upstream = upstream
        self.sockets = []
        libc = ctypes.CDLL(None, use_errno=True)
        with open(f"/var/run/netns/{netns}") as inside, open("/proc/thread-self/ns/net") as home:
            if libc.setns(inside.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
            try:
                self.listener = socket.create_server((address, port))
            finally:
                if libc.setns(home.fileno(), CLONE_NEWNET) != 0:  # this thread must come home
                    raise OSError(ctypes.get_errno(), "setns back to the host")
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._copy, args=(source, sink), daemon=True).start()

    @staticmethod
    def _copy(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
        for s in self.sockets:
            s.close()


class CustomMetricsApi:
    """prometheus-adapter (the binary `adapter`) with `rules_file`, reading `prometheus_url`, registered
    as v1beta1.custom.metrics.k8s.io. `kubectl(*args, input=None)` runs kubectl as the plane's admin."""

    NETNS, HOST_LINK = "cxp-agg", "cxpagg0"
    HOST, ENDPOINT = "10.87.0.1", "10.87.0.2"
    NAMESPACE, SERVICE = "cxp-custom-metrics", "prometheus-adapter"

    def __init__(self, folder, adapter, kubeconfig, prometheus_url, rules_file, kubectl):
        self.folder, self.kubectl = folder, kubectl
        self.process = self.relay = None
        if not os.access(adapter, os.X_OK):
            raise AssertionError(f"{adapter} is missing: scripts/setup.sh builds it (scripts/cluster/install.sh)")
        try:
            self._network()
            ca, cert, key = self._certificates()
            port = free_port()
            self.log = open(os.path.join(folder, "prometheus-adapter.log"), "w")
            self.process = subprocess.Popen(
                [adapter, f"--secure-port={port}", "--bind-address=127.0.0.1",
                 f"--tls-cert-file={cert}", f"--tls-private-key-file={key}",
                 f"--lister-kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
                 f"--authorization-kubeconfig={kubeconfig}", f"--config={rules_file}",
                 f"--prometheus-url={prometheus_url}", "--metrics-relist-interval=5s", "--v=2"],
                stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
            self.relay = NetnsRelay(self.NETNS, self.ENDPOINT, 443, port)
            self._register(ca)
            wait_until(self._available, 90, interval=0.5,
                       message="the APIService v1beta1.custom.metrics.k8s.io Available (prometheus-adapter's log: "
                               f"{self.log.name})")
        except BaseException:
            self.close()
            raise

    def _network(self):
        _run("ip", "netns", "add", self.NETNS)
        _run("ip", "link", "add", self.HOST_LINK, "type", "veth", "peer", "name", "eth0", "netns", self.NETNS)
        _run("ip", "addr", "add", f"{self.HOST}/30", "dev", self.HOST_LINK)
        _run("ip", "link", "set", self.HOST_LINK, "up")
        for command in (["ip", "addr", "add", f"{self.ENDPOINT}/30", "dev", "eth0"], ["ip", "link", "set", "lo", "up"],
                        ["ip", "link", "set", "eth0", "up"]):
            _run("ip", "netns", "exec", self.NETNS, *command)

    def _certificates(self):
        """A CA (the APIService's caBundle) and the adapter's serving certificate for the Service's name."""
        ca, cert, key = (os.path.join(self.folder, n) for n in ("adapter-ca.crt", "adapter.crt", "adapter.key"))
        ca_key = os.path.join(self.folder, "adapter-ca.key")
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
             "-days", "2", "-subj", "/CN=cxp-test-adapter-ca")
        csr = os.path.join(self.folder, "adapter.csr")
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={self.SERVICE}.{self.NAMESPACE}.svc")
        with tempfile.NamedTemporaryFile("w", suffix=".ext", dir=self.folder, delete=False) as ext:
            ext.write(f"subjectAltName=DNS:{self.SERVICE}.{self.NAMESPACE}.svc\nextendedKeyUsage=serverAuth\n")
        _run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
             "-days", "2", "-extfile", ext.name)
        return ca, cert, key

    def _register(self, ca):
        with open(ca, "rb") as f:
            bundle = base64.b64encode(f.read()).decode()
        ns, svc = self.NAMESPACE, self.SERVICE
        self.kubectl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {svc}, namespace: {ns}}}
spec:
  ports: [{{name: https, port: 443, targetPort: 443}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {svc}-relay
  namespace: {ns}
  labels: {{kubernetes.io/service-name: {svc}, endpointslice.kubernetes.io/managed-by: cxp-tests}}
addressType: IPv4
ports: [{{name: https, port: 443, protocol: TCP}}]
endpoints: [{{addresses: ["{self.ENDPOINT}"], conditions: {{ready: true}}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {svc}, namespace: {ns}}}
subsets: [{{addresses: [{{ip: "{self.ENDPOINT}"}}], ports: [{{name: https, port: 443}}]}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: v1beta1.custom.metrics.k8s.io}}
spec:
  group: custom.metrics.k8s.io
  version: v1beta1
  service: {{name: {svc}, namespace: {ns}, port: 443}}
  caBundle: {bundle}
  groupPriorityMinimum: 100
  versionPriority: 100
""")

    def _available(self):
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus-adapter exited: {open(self.log.name).read()[-3000:]}")
        result = self.kubectl("get", "apiservice", "v1beta1.custom.metrics.k8s.io", "-o",
                              "jsonpath={.status.conditions[?(@.type=='Available')].status}", check=False)
        return result.returncode == 0 and result.stdout.strip() == "True"

    def close(self):
        for command in (["delete", "apiservice", "v1beta1.custom.metrics.k8s.io", "--ignore-not-found", "--wait=false"],
                        ["delete", "namespace", self.NAMESPACE, "--ignore-not-found", "--wait=false"]):
            self.kubectl(*command, check=False)
        if self.relay:
            self.relay.close()
        if self.process:
            stop_process(self.process)
            self.log.close()
        subprocess.run(["ip", "netns", "del", self.NETNS], capture_output=True)  # takes its veth end along
        subprocess.run(["ip", "link", "del", self.HOST_LINK], capture_output=True)
