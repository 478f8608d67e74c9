"""The worker's model, end to end on the local control plane: a CodexProxy names its model provider
and the Secrets that hold the model key and the proxy's API key; the controller checks them before
rolling pods (CredentialsMissing otherwise); the shared launcher starts each pod with its Secrets
resolved, and the real `codex app-server` in the pod answers through the scripted model."""
import base64
import json
import os
import sys
import unittest

from controller_harness import ControllerTestCase
from kube import SOURCE_DIR, kubectl, kubectl_json, wait_until
from pod_fleet import PodFleet
from proxy_process import REAL_CODEX

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "model-stub"))
from model_stub import ModelStub  # noqa: E402

MODEL_KEY = "sk-model-key-from-a-secret-0123456789"
PROXY_KEY = "sk-proxy-clients-key-0123456789"


def secret(name, **data):
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                       "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


class WorkerCredentialsTest(ControllerTestCase):
    def setUp(self):
        super().setUp()
        self.controller = self.start_controller()
        self.stub = ModelStub(api_key=MODEL_KEY).start()
        self.addCleanup(self.stub.stop)

    def fleet(self, name, **kwargs):
        fleet = PodFleet(self.namespace, name, **kwargs)
        self.addCleanup(fleet.close)
        return fleet

    def model_spec(self, **extra):
        return {"credentials": {"apiKeySecret": {"name": "model-key", "key": "token"}},
                "provider": {"name": "model stub", "baseURL": self.stub.base_url, "envKey": "STUB_MODEL_API_KEY"},
                "configOverrides": {"model_providers.codexproxy.request_max_retries": "0",
                                    "model_providers.codexproxy.stream_max_retries": "0"},
                **extra}

    def events(self, reason):
        items = kubectl_json("get", "events", "-n", self.namespace)["items"]
        return [e for e in items if e.get("reason") == reason]

    def test_missing_secrets_hold_the_rollout_then_the_pod_answers_with_the_model_key(self):
        self.apply_proxy("chat", worker=self.model_spec(), apiKeySecret={"name": "proxy-key"})
        degraded = wait_until(lambda: (lambda c: c if c and c["reason"] == "CredentialsMissing" else None)(
            self.condition("chat", "Degraded")), 20, interval=0.2, message="Degraded CredentialsMissing")
        self.assertIn("Secret 'model-key'", degraded["message"])
        self.assertIn("Secret 'proxy-key'", degraded["message"])
        self.assertTrue(self.events("CredentialsMissing"), "a Warning Event names the Secret")
        self.assertIsNotNone(self.get("configmap", "chat-settings", check=False))
        self.assertIsNone(self.get("deployment", "chat", check=False), "no pod may roll onto a missing Secret")

        kubectl("apply", "-n", self.namespace, "-f", "-", input=secret("model-key", token=MODEL_KEY))
        kubectl("apply", "-n", self.namespace, "-f", "-", input=secret("proxy-key", apiKey=PROXY_KEY))
        deployment = wait_until(lambda: self.get("deployment", "chat", check=False), 30, interval=0.2,
                                message="the Deployment once the Secrets exist")
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        self.assertEqual(env["STUB_MODEL_API_KEY"]["valueFrom"]["secretKeyRef"], {"name": "model-key", "key": "token"})
        self.assertEqual(env["WORKER_PROVIDER_BASE_URL"]["value"], self.stub.base_url)
        self.assertNotIn(MODEL_KEY, json.dumps(deployment))

        fleet = self.fleet("chat", worker=REAL_CODEX)
        (pod, proxy), = fleet.wait_pods(1, timeout=60).items()
        proxy.wait_ready(timeout=60)
        body = json.dumps({"messages": [{"role": "user", "content": "[[reply:answered in a pod]]"}]})
        headers = {"Content-Type": "application/json"}
        self.assertEqual(proxy.request("POST", "/v1/chat/completions", body=body, headers=headers)[0], 401)
        status, _, raw = proxy.request("POST", "/v1/chat/completions", body=body, timeout=30,
                                       headers={**headers, "Authorization": f"Bearer {PROXY_KEY}"})
        self.assertEqual(status, 200, raw)
        self.assertEqual(json.loads(raw)["choices"][0]["message"]["content"], "answered in a pod")
        [request] = self.stub.requests()
        self.assertEqual(request["headers"]["authorization"], f"Bearer {MODEL_KEY}")
        wait_until(lambda: self.condition("chat", "Available")["status"] == "True", 30, interval=0.2,
                   message="Available")
        self.assertEqual(self.condition("chat", "Degraded")["status"], "False")
        for secret_value in (MODEL_KEY, PROXY_KEY):
            self.assertNotIn(secret_value, proxy.raw_log())
            self.assertNotIn(secret_value, self.controller.raw_log())
            self.assertNotIn(secret_value, json.dumps(self.get("cxp", "chat")))

        # A Secret that goes missing holds the next rollout; the running pod keeps serving.
        template = deployment["spec"]["template"]
        kubectl("delete", "secret", "model-key", "-n", self.namespace)
        kubectl("patch", "cxp", "chat", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"worker": {"configOverrides": {"model_reasoning_effort": "low"}}}}))
        wait_until(lambda: self.condition("chat", "Degraded")["reason"] == "CredentialsMissing", 30, interval=0.2,
                   message="CredentialsMissing again")
        self.assertEqual(self.get("deployment", "chat")["spec"]["template"], template)
        status, _, _ = proxy.request("POST", "/v1/chat/completions", body=body, timeout=30,
                                     headers={**headers, "Authorization": f"Bearer {PROXY_KEY}"})
        self.assertEqual(status, 200)

    def test_a_secret_without_the_key_is_named_with_the_keys_it_has(self):
        kubectl("apply", "-n", self.namespace, "-f", "-", input=secret("model-key", wrong=MODEL_KEY))
        self.apply_proxy("keyless", worker=self.model_spec())
        degraded = wait_until(lambda: (lambda c: c if c and c["reason"] == "CredentialsMissing" else None)(
            self.condition("keyless", "Degraded")), 20, interval=0.2, message="Degraded CredentialsMissing")
        self.assertIn("has no key 'token' (it has: wrong)", degraded["message"])
        self.assertNotIn(MODEL_KEY, degraded["message"])

    def test_a_chatgpt_auth_json_secret_reaches_the_pods_codex_home(self):
        login = json.dumps({"auth_mode": "chatgpt", "tokens": {"access_token": "eyJ-login-token-1234567890"}})
        kubectl("apply", "-n", self.namespace, "-f", "-", input=secret("codex-login", **{"auth.json": login}))
        self.apply_proxy("login", worker={"credentials": {"authJsonSecret": {"name": "codex-login"}}})
        fleet = self.fleet("login")
        (pod, proxy), = fleet.wait_pods(1, timeout=60).items()
        proxy.wait_ready()
        copied = os.path.join(fleet.pod_dir(pod), "volumes", "codex-home", "auth.json")
        with open(copied) as f:
            self.assertEqual(json.load(f)["tokens"]["access_token"], "eyJ-login-token-1234567890")
        self.assertEqual(os.stat(copied).st_mode & 0o777, 0o600)
        self.assertNotIn("eyJ-login-token-1234567890", proxy.raw_log())


if __name__ == "__main__":
    unittest.main(verbosity=2)


class ApiKeyRotationTest(ControllerTestCase):
    """The callers' keys from spec.auth.apiKeysSecret, rotated in the Secret: the launcher updates
    the pods' Secret volumes the way the kubelet does, and the pods re-read them — no restart, no
    401 for a key that is in the Secret."""

    def test_keys_added_and_removed_in_the_secret_take_effect_in_the_running_pods(self):
        self.start_controller()
        key_a, key_b = "sk-rotation-a-0123456789ab", "sk-rotation-b-0123456789ab"
        artifacts_free = [key_a, key_b]

        def keys(*entries):
            return "keys:\n" + "".join(f"- {{name: {n}, key: {k}}}\n" for n, k in entries)

        kubectl("apply", "-n", self.namespace, "-f", "-", input=secret("callers", **{"keys.yaml": keys(("a", key_a))}))
        self.apply_proxy("shared", replicas=2, auth={"apiKeysSecret": {"name": "callers"}})
        fleet = PodFleet(self.namespace, "shared")
        self.addCleanup(fleet.close)
        pods = fleet.wait_pods(2, timeout=60)
        for proxy in pods.values():
            proxy.wait_ready()
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}]})

        def status(proxy, key):
            return proxy.request("POST", "/v1/chat/completions", body=body, timeout=30,
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})[0]

        def everywhere(key, expected):
            fleet.sync()  # the kubelet's periodic sync of the pods' volumes
            return all(status(p, key) == expected for p in pods.values())

        self.assertTrue(everywhere(key_a, 200))
        self.assertTrue(everywhere(key_b, 401))
        workers = {name: p.readyz()[1]["worker"]["pid"] for name, p in pods.items()}
        # The limits' share: each pod divides by the ready pods the controller counts.
        wait_until(lambda: self.get("configmap", "shared-settings")["data"].get("limits.pods") == "2", 30,
                   interval=0.3, message="limits.pods = 2")

        # A second key comes in: it works on every pod; the first never stops working meanwhile.
        kubectl("apply", "-n", self.namespace, "-f", "-",
                input=secret("callers", **{"keys.yaml": keys(("a", key_a), ("b", key_b))}))
        wait_until(lambda: everywhere(key_b, 200), 60, interval=0.3, message="the new key on every pod")
        self.assertTrue(everywhere(key_a, 200))
        # The first key goes: 401 on every pod.
        kubectl("apply", "-n", self.namespace, "-f", "-", input=secret("callers", **{"keys.yaml": keys(("b", key_b))}))
        wait_until(lambda: everywhere(key_a, 401), 60, interval=0.3, message="the removed key refused on every pod")
        self.assertTrue(everywhere(key_b, 200))
        # A Secret that does not parse: the pods keep the last good keys and say so in the status.
        kubectl("apply", "-n", self.namespace, "-f", "-", input=secret("callers", **{"keys.yaml": "keys: [oops"}))
        fleet.sync()

        def reported():
            fleet.sync()
            entries = (self.get("cxp", "shared").get("status") or {}).get("pods") or []
            return len(entries) == 2 and all("PROXY_API_KEYS_FILE" in e.get("settingsError", "") for e in entries)
        wait_until(reported, 60, interval=0.5, message="settingsError on both pods")
        self.assertTrue(everywhere(key_b, 200))
        # Nothing restarted: the same processes, the same workers.
        self.assertEqual({name: p.readyz()[1]["worker"]["pid"] for name, p in pods.items()}, workers)
        self.assertEqual(set(fleet.proxies), set(pods))
        for proxy in pods.values():
            for value in artifacts_free:
                self.assertNotIn(value, proxy.raw_log())
