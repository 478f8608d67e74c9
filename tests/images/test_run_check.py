"""The built images run the way a pod runs them (scripts/images.sh run-check; CTest images.run_check).

Each image is run with podman as non-root on a read-only root with empty directories at its writable paths:
codex-proxy must become ready with the codex inside the image and answer a chat completion from the
model stub; codexproxy-controller must start with the chart's ServiceAccount token (in-cluster
configuration, as in a pod) against a local control plane and reconcile a CodexProxy.
Image names: CXP_PROXY_IMAGE, CXP_CONTROLLER_IMAGE (scripts/images.sh names).
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request
import uuid

import images  # noqa: F401  (first: the tier's plane and import paths)
import artifacts  # noqa: E402
from images import SOURCE_DIR, PROXY_IMAGE, CONTROLLER_IMAGE, Container, podman, free_port  # noqa: E402
from kube import CLUSTER_DIR, kubectl, kubectl_json, wait_until  # noqa: E402
from real_worker import MODEL_KEY, ModelStub, real_worker_env  # noqa: E402

CLUSTER_SH = os.path.join(SOURCE_DIR, "scripts/cluster.sh")
RUNTIME_UID = "65532"
# The paths the controller's Deployment mounts emptyDirs at (controller/render.cpp).
PROXY_WRITABLE = ("/var/lib/codex", "/var/lib/codexproxy", "/tmp")


def http(url, body=None, headers=None, timeout=10):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


class ImageBasicsTest(unittest.TestCase):
    def test_images_run_as_the_non_root_runtime_user(self):
        for image in (PROXY_IMAGE, CONTROLLER_IMAGE):
            user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
            self.assertEqual(user.split(":")[0], RUNTIME_UID, f"{image} runs as '{user or 'root'}', not {RUNTIME_UID}")
            uid = podman("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
            self.assertEqual(uid, RUNTIME_UID, f"{image} runs as uid {uid}")

    def test_the_proxy_images_writable_paths_are_writable_by_its_user(self):
        # Without mounts (docker/podman run) the image's own directories must do.
        script = "for d in " + " ".join(PROXY_WRITABLE) + "; do touch $d/.w 2>/dev/null || echo $d; done"
        result = podman("run", "--rm", "--entrypoint", "sh", PROXY_IMAGE, "-c", script)
        self.assertEqual(result.stdout.strip(), "", f"not writable by uid {RUNTIME_UID} in {PROXY_IMAGE}: "
                         f"{result.stdout.split()}")

    def test_the_proxy_image_carries_the_pinned_codex_without_node(self):
        with open(os.path.join(SOURCE_DIR, "tests/node/package.json")) as f:
            pinned = json.load(f)["dependencies"]["@openai/codex"]
        version = podman("run", "--rm", "--entrypoint", "/usr/local/bin/codex", PROXY_IMAGE, "--version").stdout
        self.assertIn(pinned, version)
        self.assertNotEqual(podman("run", "--rm", "--entrypoint", "sh", PROXY_IMAGE, "-c", "command -v node",
                                   check=False).returncode, 0, "node is in the proxy image")


class ProxyImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stub = ModelStub(api_key=MODEL_KEY).start()

    @classmethod
    def tearDownClass(cls):
        cls.stub.stop()

    def run_proxy(self, read_only):
        port, ops_port = free_port(), free_port()
        env = real_worker_env(self.stub.base_url, "/var/lib/codex", PORT=port, PROXY_OPS_PORT=ops_port,
                              PROXY_HOST="127.0.0.1")
        for name in ("CODEX_BIN", "CODEX_HOME", "HOME"):  # the image's own
            env.pop(name)
        artifacts.note_env_secrets(env)
        args = ["--network", "host"]
        if read_only:
            args += ["--read-only", "--read-only-tmpfs=false"]
            for path in PROXY_WRITABLE:  # as emptyDirs: an empty host directory, mode 0777
                empty_dir = tempfile.mkdtemp(prefix="cxp-emptydir-")
                self.addCleanup(shutil.rmtree, empty_dir, True)
                os.chmod(empty_dir, 0o777)
                args += ["-v", f"{empty_dir}:{path}"]
        container = Container(PROXY_IMAGE, args, env)
        self.addCleanup(container.stop)
        return container, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ops_port}"

    def assert_serves_a_chat_completion(self, container, base, ops):
        wait_until(lambda: http(ops + "/readyz")[0] == 200 or container.exited(), 90, interval=0.2,
                   message="/readyz 200 from the codex-proxy image")
        self.assertFalse(container.exited(), f"codex-proxy exited:\n{container.logs()}")
        asked = len(self.stub.requests())
        status, body = http(base + "/v1/chat/completions",
                            {"model": "gpt-5", "messages": [{"role": "user", "content": "[[reply:image works]]"}]},
                            timeout=60)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["choices"][0]["message"]["content"], "image works")
        self.assertGreater(len(self.stub.requests()), asked, "the model stub was not asked")

    def test_ready_and_answers_on_a_read_only_root_with_empty_dirs(self):
        container, base, ops = self.run_proxy(read_only=True)
        self.assert_serves_a_chat_completion(container, base, ops)
        self.assertNotEqual(container.exec("sh", "-c", "touch /usr/local/bin/x").returncode, 0,
                            "the root filesystem is writable")
        self.assertEqual(container.exec("id", "-u").stdout.strip(), RUNTIME_UID)

    def test_ready_and_answers_without_any_mount(self):
        container, base, ops = self.run_proxy(read_only=False)
        self.assert_serves_a_chat_completion(container, base, ops)


class ControllerImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The tier's plane when it runs (CTest), else one of its own for this check.
        env = {**os.environ, "CXP_CLUSTER_DIR": CLUSTER_DIR}
        cls.own_plane = subprocess.run([CLUSTER_SH, "status"], env=env, capture_output=True).returncode != 0
        if cls.own_plane:
            subprocess.run([CLUSTER_SH, "up"], check=True, env=env)

    @classmethod
    def tearDownClass(cls):
        if cls.own_plane:
            subprocess.run([CLUSTER_SH, "down"], check=False, env={**os.environ, "CXP_CLUSTER_DIR": CLUSTER_DIR})

    def test_reconciles_with_the_charts_service_account_token(self):
        from test_helm import helm  # noqa: E402  (helm with private homes)
        release_ns = "codexproxy-system"
        helm("install", "cxp", os.path.join(SOURCE_DIR, "charts/codexproxy-operator"), "-n", release_ns,
             "--create-namespace", "--set", "replicaCount=0", "--wait")
        self.addCleanup(helm, "uninstall", "cxp", "-n", release_ns, check=False)
        account = kubectl_json("get", "serviceaccount", "-n", release_ns,
                               "-l", "app.kubernetes.io/instance=cxp")["items"][0]["metadata"]["name"]
        token = kubectl("create", "token", account, "-n", release_ns, "--duration", "1h").stdout.strip()
        artifacts.note_secrets([token])
        # The files the kubelet projects into a pod, readable by the container's user only through
        # the directory this test owns.
        sa_dir = tempfile.mkdtemp(prefix="cxp-sa-")
        self.addCleanup(subprocess.run, ["rm", "-rf", sa_dir])
        os.chmod(sa_dir, 0o755)
        with open(os.path.join(CLUSTER_DIR, "pki/ca.crt")) as f:
            files = {"token": token, "ca.crt": f.read(), "namespace": release_ns}
        for name, text in files.items():
            with open(os.path.join(sa_dir, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(sa_dir, name), 0o644)
        with open(os.path.join(CLUSTER_DIR, "ports.env")) as f:
            api_port = dict(line.strip().split("=", 1) for line in f)["API_PORT"]
        health, metrics = free_port(), free_port()
        container = Container(
            CONTROLLER_IMAGE,
            ["--network", "host", "--read-only",
             "-v", f"{sa_dir}:/var/run/secrets/kubernetes.io/serviceaccount:ro"],
            {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": api_port},
            args=[f"--metrics-bind-address=127.0.0.1:{metrics}", f"--health-probe-bind-address=127.0.0.1:{health}"])
        self.addCleanup(container.stop)
        wait_until(lambda: http(f"http://127.0.0.1:{health}/readyz")[0] == 200 or container.exited(), 60,
                   interval=0.2, message="the controller image's /readyz")
        self.assertFalse(container.exited(), f"the controller exited:\n{container.logs()}")

        namespace = f"img-{uuid.uuid4().hex[:6]}"
        kubectl("create", "namespace", namespace)
        self.addCleanup(kubectl, "delete", "namespace", namespace, "--wait=false", check=False)
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
            "metadata": {"name": "img", "namespace": namespace}, "spec": {"image": PROXY_IMAGE}}))
        deployment = wait_until(lambda: kubectl("get", "deployment", "img", "-n", namespace, "-o", "json",
                                                check=False).stdout, 60, interval=0.2,
                                message="the Deployment the controller image renders")
        image = json.loads(deployment)["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, PROXY_IMAGE)
        self.assertIn('"event":"started"', container.logs().replace(" ", ""))


if __name__ == "__main__":
    unittest.main()
