"""A real Prometheus server (Debian's, the one promtool comes with) on a free loopback port, with
the configuration a test gives it, and its HTTP API. The alert drill and the autoscaling test
share it."""
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

import yaml

from local_ports import free_port
from polling import stop_process, wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def require_prometheus():
    if not os.path.exists(PROMETHEUS):
        raise AssertionError("the prometheus server is missing: scripts/setup.sh installs Debian's `prometheus`")


class PrometheusServer:
    def __init__(self, folder, config):
        """`config`: prometheus.yml as a dict (file paths in it relative to `folder`)."""
        self.folder = folder
        self.port = free_port()
        with open(os.path.join(folder, "prometheus.yml"), "w") as f:
            yaml.safe_dump(config, f)
        self.log = open(os.path.join(folder, "prometheus.log"), "w")
        self.process = subprocess.Popen(
            [PROMETHEUS, "--config.file=prometheus.yml", f"--storage.tsdb.path={folder}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            cwd=folder, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.process.poll() is not None or self._ready(), 60, interval=0.3,
                   message="Prometheus ready")
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {open(self.log.name).read()[-3000:]}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _ready(self):
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def close(self):
        stop_process(self.process)
        self.log.close()


def write_file_targets(path, targets):
    """A file_sd_configs file: [(host:port, labels)], replaced atomically (Prometheus watches it)."""
    with open(path + ".new", "w") as f:
        json.dump([{"targets": [address], "labels": labels} for address, labels in targets], f)
    os.replace(path + ".new", path)
