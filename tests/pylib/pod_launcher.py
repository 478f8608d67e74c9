#!/usr/bin/env python3
"""Plays the kubelet for a CodexProxy's kwok pods: one real codex-proxy process per running pod.

The one launcher the e2e tests, the demo and the benchmarks share. For each pod it starts
codex-proxy with the container's environment as the kubelet would build it — plain values,
downward-API fields, Secret and ConfigMap keys (read with the admin kubeconfig, as a node would;
a missing one leaves the pod unstarted, like CreateContainerConfigError) — and the pod's volumes
as directories: emptyDir empty, Secret and ConfigMap volumes filled with their keys the way the
kubelet writes them (a timestamped directory behind a `..data` symlink, swapped atomically), and
brought up to date on every sync while the pod runs, as the kubelet's periodic sync does.
Environment values that point into a mount path are rewritten to the directory that plays the
volume.

What a host process cannot take from the pod, the launcher sets: PROXY_HOST=127.0.0.1, PORT=0 and
PROXY_OPS_PORT=0 (the pods share the host's network), CODEX_BIN (the image's worker is not on the host) and
PROXY_KUBECONFIG (the pod's ServiceAccount with a token bound to the pod object, as the kubelet's
projected token is: the API server then knows which pod is asking). A pod that goes away gets
SIGTERM, like the kubelet sends; with prestop=True first its container's preStop sleep runs out
(the process serves on meanwhile, as a real pod does while Services stop sending to it), and the
SIGTERM does not wait for the exit (the next syncs reap it).

As a program (the demo):
    pod_launcher.py --namespace NS --codexproxy NAME --dir DIR --pods-kubeconfig FILE
                    [--kubeconfig ADMIN] [--worker BIN] [--interval 0.5]
syncs until SIGTERM, then stops its pods. Each pod's log is DIR/<pod>/proxy.log.
"""
import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import artifacts  # noqa: E402
from polling import wait_until  # noqa: E402
from proxy_process import FAKE_WORKER, Proxy  # noqa: E402
from secret_volume import write_atomically  # noqa: E402


class PodNotStartable(Exception):
    """The kubelet could not start this pod yet (a missing Secret or ConfigMap key)."""


class PodLauncher:
    def __init__(self, namespace, proxy_name, directory, pods_kubeconfig, admin_kubeconfig,
                 worker=FAKE_WORKER, worker_env=None, prestop=False):
        self.namespace = namespace
        self.proxy_name = proxy_name
        self.dir = directory
        self.pods_kubeconfig = pods_kubeconfig
        self.admin_kubeconfig = admin_kubeconfig
        self.worker = worker
        self.worker_env = worker_env or {}
        self.proxies = {}
        self.not_started = {}  # pod → why the kubelet could not start it yet
        self.projected = {}  # pod → {volume: (directory, its files)}: Secret and ConfigMap volumes
        self.prestop = prestop
        self.prestop_s = {}  # pod → its container's preStop sleep (seconds)
        self.terminating = {}  # pod → (proxy, when its SIGTERM is due; None once sent)

    # --- the API, as a node reads it -----------------------------------------------------------
    def _kubectl_json(self, *args, check=True):
        result = subprocess.run(["kubectl", "--kubeconfig", self.admin_kubeconfig, "-n", self.namespace,
                                 *args, "-o", "json"], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            if check:
                raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
            return None
        return json.loads(result.stdout)

    def _object_data(self, kind, name, optional):
        obj = self._kubectl_json("get", kind, name, check=False)
        if obj is None:
            if optional:
                return None
            raise PodNotStartable(f"{kind} {name!r} not found")
        data = obj.get("data") or {}
        if kind == "secret":
            decoded = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}
            artifacts.note_secrets(list(decoded.values()))  # a pod's secrets must never reach its logs
            return decoded
        return dict(data)

    def _key(self, kind, ref):
        data = self._object_data(kind, ref["name"], ref.get("optional", False))
        if data is None:
            return None
        if ref["key"] not in data:
            if ref.get("optional", False):
                return None
            raise PodNotStartable(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
        return data[ref["key"]]

    def running_pods(self):
        items = self._kubectl_json("get", "pods", "-l", f"codexproxy.io/name={self.proxy_name}")["items"]
        return {p["metadata"]["name"]: p for p in items
                if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]}

    # --- a pod as a process --------------------------------------------------------------------
    def pod_dir(self, pod_name):
        return os.path.join(self.dir, pod_name)

    def _projected_files(self, volume):
        """A Secret or ConfigMap volume's files as {path: (content, mode)}, or None for another
        kind of volume."""
        if "secret" not in volume and "configMap" not in volume:
            return None
        kind, source = ("secret", volume["secret"]) if "secret" in volume else ("configmap", volume["configMap"])
        name = source.get("secretName") or source.get("name")
        data = self._object_data(kind, name, source.get("optional", False)) or {}
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        files = {}
        for item in items:
            if item["key"] not in data:
                raise PodNotStartable(f"{kind} {name!r} has no key {item['key']!r}")
            files[item["path"]] = (data[item["key"]], item.get("mode", source.get("defaultMode", 0o644)) & 0o777)
        return files

    def _volumes(self, pod, pod_dir):
        """Makes each volume a directory; returns {mountPath: directory} for the container."""
        spec = pod["spec"]
        made = {}
        written = {}
        for volume in spec.get("volumes", []):
            path = os.path.join(pod_dir, "volumes", volume["name"])
            os.makedirs(path, exist_ok=True)
            files = self._projected_files(volume)
            if files is not None:
                write_atomically(path, files)
                written[volume["name"]] = (path, files)
            made[volume["name"]] = path
        self.projected[pod["metadata"]["name"]] = written
        container = spec["containers"][0]
        return {m["mountPath"]: made[m["name"]] for m in container.get("volumeMounts", []) if m["name"] in made}

    def refresh_volumes(self, pod):
        """Brings a running pod's Secret and ConfigMap volumes up to date, as the kubelet's periodic
        sync does (its files change under the running process; nothing restarts)."""
        for volume in pod["spec"].get("volumes", []):
            known = self.projected.get(pod["metadata"]["name"], {}).get(volume["name"])
            if known is None:
                continue
            path, files = known
            try:
                current = self._projected_files(volume)
            except PodNotStartable:
                continue  # the kubelet keeps the last content of a key that went away
            if current != files:
                write_atomically(path, current)
                self.projected[pod["metadata"]["name"]][volume["name"]] = (path, current)

    def container_env(self, pod, mounts):
        """The container's environment as the kubelet builds it, paths mapped onto `mounts`."""
        env = {}
        for entry in pod["spec"]["containers"][0].get("env", []):
            source = entry.get("valueFrom")
            if source is None:
                value = entry.get("value", "")
            elif "fieldRef" in source:
                field = source["fieldRef"]["fieldPath"]
                value = {"metadata.name": pod["metadata"]["name"],
                         "metadata.namespace": pod["metadata"]["namespace"],
                         "metadata.uid": pod["metadata"]["uid"],
                         "spec.nodeName": pod["spec"].get("nodeName", ""),
                         "status.podIP": "127.0.0.1"}.get(field, "")
            elif "secretKeyRef" in source:
                value = self._key("secret", source["secretKeyRef"])
            elif "configMapKeyRef" in source:
                value = self._key("configmap", source["configMapKeyRef"])
            else:
                value = None
            if value is None:
                continue
            for mount_path, directory in sorted(mounts.items(), key=lambda m: -len(m[0])):
                if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                    value = directory + value[len(mount_path.rstrip("/")):]
                    break
            env[entry["name"]] = value
        return env

    def pod_kubeconfig(self, pod, pod_dir):
        """The pods' kubeconfig with a token bound to this pod object (TokenRequest, as the
        kubelet asks for its projected token): it names the pod and dies with it."""
        metadata = pod["metadata"]
        result = subprocess.run(
            ["kubectl", "--kubeconfig", self.admin_kubeconfig, "-n", self.namespace, "create", "token",
             pod["spec"].get("serviceAccountName", self.proxy_name), "--bound-object-kind", "Pod",
             "--bound-object-name", metadata["name"], "--bound-object-uid", metadata["uid"], "--duration", "24h"],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise PodNotStartable(f"no token for the pod: {result.stderr.strip()}")
        token = result.stdout.strip()
        artifacts.note_secrets([token])
        with open(self.pods_kubeconfig) as f:
            text = re.sub(r'token: "[^"]*"', lambda _: f'token: "{token}"', f.read())
        path = os.path.join(pod_dir, "pod.kubeconfig")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(text)
        return path

    def start_pod(self, pod):
        name = pod["metadata"]["name"]
        pod_dir = self.pod_dir(name)
        os.makedirs(pod_dir, exist_ok=True)
        mounts = self._volumes(pod, pod_dir)
        env = self.container_env(pod, mounts)
        env.update({"PROXY_HOST": "127.0.0.1", "PORT": "0", "PROXY_OPS_PORT": "0", "CODEX_BIN": self.worker,
                    "PROXY_KUBECONFIG": self.pod_kubeconfig(pod, pod_dir), **self.worker_env})
        proxy = Proxy(env=env, codex_bin=None, workdir=pod_dir)
        command = (((pod["spec"]["containers"][0].get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get(
            "command") or []
        self.prestop_s[name] = float(command[-1]) if command[:1] == ["/bin/sleep"] else 0.0
        with open(os.path.join(pod_dir, "proxy.pid"), "w") as f:
            f.write(str(proxy.process.pid))
        return proxy

    def trace_dir(self, pod_name):
        return os.path.join(self.pod_dir(pod_name), "volumes", "trace", "trace")

    def sync(self):
        """Starts a proxy for every new running pod, stops those whose pod is gone."""
        live = self.running_pods()
        for name, pod in live.items():
            if name in self.proxies:
                self.refresh_volumes(pod)
                continue
            try:
                self.proxies[name] = self.start_pod(pod)
                self.not_started.pop(name, None)
            except PodNotStartable as reason:
                self.not_started[name] = str(reason)
        for name in [n for n in self.proxies if n not in live]:
            if self.prestop:
                self.terminating[name] = (self.proxies.pop(name), time.monotonic() + self.prestop_s.get(name, 0))
            else:
                self.stop_pod(name)
        self._reap_terminating()
        for name in [n for n in self.not_started if n not in live]:
            del self.not_started[name]
        for name in [n for n in self.projected if n not in live]:
            del self.projected[name]
        return self.proxies

    def _reap_terminating(self):
        for name, (proxy, sigterm_at) in list(self.terminating.items()):
            if sigterm_at is not None and time.monotonic() >= sigterm_at:
                proxy.signal(signal.SIGTERM)
                self.terminating[name] = (proxy, None)
            elif sigterm_at is None and proxy.process.poll() is not None:
                proxy.close()
                del self.terminating[name]

    def stop_pod(self, name):
        proxy = self.proxies.pop(name)
        proxy.signal(signal.SIGTERM)
        try:
            proxy.wait_exit(30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            proxy.close()

    def wait_pods(self, count, timeout=60):
        wait_until(lambda: len(self.sync()) == count, timeout, interval=0.3,
                   message=f"{count} pod processes (not started: {self.not_started})")
        return self.proxies

    def close(self):
        for name in list(self.proxies):
            proxy = self.proxies.pop(name)
            proxy.close()
        for name in list(self.terminating):
            self.terminating.pop(name)[0].close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--codexproxy", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--pods-kubeconfig", required=True)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--worker", default=FAKE_WORKER)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    launcher = PodLauncher(args.namespace, args.codexproxy, args.dir, args.pods_kubeconfig, args.kubeconfig,
                           worker=args.worker)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    reported = {}
    while not stopping:
        try:
            launcher.sync()
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(json.dumps({"event": "sync_failed", "error": str(error)}), flush=True)
        for name, proxy in launcher.proxies.items():
            if reported.get(name) != proxy.port:
                reported[name] = proxy.port
                print(json.dumps({"event": "pod_started", "pod": name, "port": proxy.port, "ops_port": proxy.ops_port,
                                  "log": proxy.log_path}), flush=True)
        for name, reason in launcher.not_started.items():
            if reported.get(name) != reason:
                reported[name] = reason
                print(json.dumps({"event": "pod_not_started", "pod": name, "reason": reason}), flush=True)
        time.sleep(args.interval)
    for name in list(launcher.proxies):
        launcher.stop_pod(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
