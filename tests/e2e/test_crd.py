"""The CodexProxy CRD on a real kube-apiserver: schema, defaults, CEL rules, subresources, columns."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

from kube import SOURCE_DIR, KubeTestCase, kubectl, kubectl_json, wait_until

CRD = os.path.join(SOURCE_DIR, "crds/codexproxies.codexproxy.io.yaml")
K8S_SCHEMAS = os.path.join(SOURCE_DIR, "scripts/crd/k8s_schemas.py")
EXAMPLE = os.path.join(SOURCE_DIR, "docs/examples/codexproxy.yaml")


def proxy_manifest(name="p", **spec):
    return json.dumps({"apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
                       "metadata": {"name": name}, "spec": {"image": "example.invalid/proxy:1", **spec}})


class CrdTest(KubeTestCase):
    @classmethod
    def setUpClass(cls):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", CRD)
        kubectl("wait", "--for=condition=Established", "crd/codexproxies.codexproxy.io", "--timeout=60s")

    def apply(self, manifest, check=True):
        return kubectl("apply", "-n", self.namespace, "-f", "-", input=manifest, check=check)

    def assert_rejected(self, manifest, *fragments):
        result = self.apply(manifest, check=False)
        self.assertNotEqual(result.returncode, 0, f"accepted: {manifest}")
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    def test_the_example_applies_and_a_minimal_spec_gets_every_default(self):
        kubectl("apply", "-n", self.namespace, "-f", EXAMPLE)
        self.apply(proxy_manifest("minimal"))
        spec = kubectl_json("get", "cxp", "minimal", "-n", self.namespace)["spec"]
        self.assertEqual(spec["replicas"], 1)
        self.assertEqual(spec["worker"], {"model": "gpt-5", "maxConcurrency": 64, "requestTimeoutSeconds": 120,
                                          "backoff": {"initialMs": 250, "maxMs": 5000}, "drainSeconds": 10,
                                          "builtinTools": False, "maxTurns": 400, "maxRssMB": 1024})
        self.assertEqual(spec["maintenance"], {"enabled": False, "retryAfterSeconds": 120})
        self.assertEqual(spec["traceBuffer"], {"enabled": False, "ttlSeconds": 86400, "maxFiles": 100})
        self.assertEqual(spec["probes"]["readiness"], {"periodSeconds": 5, "failureThreshold": 2})
        self.assertTrue(spec["metrics"]["enabled"])
        self.apply(proxy_manifest("secret", apiKeySecret={"name": "keys"}))
        self.assertEqual(kubectl_json("get", "cxp", "secret", "-n", self.namespace)["spec"]["apiKeySecret"],
                         {"name": "keys", "key": "apiKey"})

    def test_invalid_specs_are_refused_with_a_message_naming_the_problem(self):
        self.assert_rejected(proxy_manifest(worker={"backoff": {"initialMs": 9000, "maxMs": 100}}),
                             "worker.backoff.initialMs must be less than or equal to worker.backoff.maxMs")
        self.assert_rejected(proxy_manifest(replicas=-1), "spec.replicas", "greater than or equal to 0")
        self.assert_rejected(proxy_manifest(worker={"maxConcurrency": 0}), "spec.worker.maxConcurrency")
        self.assert_rejected(proxy_manifest(image="has space:1"), "image must not contain spaces")
        self.assert_rejected(proxy_manifest(worker={"model": "bad model!"}), "spec.worker.model")
        self.assert_rejected(proxy_manifest(maintenance={"enabled": "yes"}), "spec.maintenance.enabled")
        self.assert_rejected(proxy_manifest(bogus=1), 'unknown field "spec.bogus"')
        self.assert_rejected(proxy_manifest(apiKeySecret={"key": "k"}), "spec.apiKeySecret.name", "Required value")
        no_image = json.dumps({"apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy",
                               "metadata": {"name": "noimage"}, "spec": {}})
        self.assert_rejected(no_image, "spec.image", "Required value")
        self.assert_rejected(proxy_manifest("1starts-with-digit"), "DNS-1035 label")
        self.assert_rejected(proxy_manifest("x" * 55), "at most 54 characters")

    def test_the_worker_model_fields_get_defaults_and_bad_values_are_refused(self):
        self.apply(proxy_manifest("model", worker={
            "credentials": {"apiKeySecret": {"name": "azure"}},
            "provider": {"baseURL": "https://x.openai.azure.com/openai/v1", "envKey": "AZURE_OPENAI_API_KEY"},
            "configOverrides": {"model_reasoning_effort": "high", "model_providers.codexproxy.request_max_retries": "2"}}))
        worker = kubectl_json("get", "cxp", "model", "-n", self.namespace)["spec"]["worker"]
        self.assertEqual(worker["credentials"], {"apiKeySecret": {"name": "azure", "key": "apiKey"}})
        self.assertEqual(worker["provider"]["wireAPI"], "responses")
        self.apply(proxy_manifest("login", worker={"credentials": {"authJsonSecret": {"name": "codex-login"}}}))
        self.assertEqual(kubectl_json("get", "cxp", "login", "-n", self.namespace)["spec"]["worker"]["credentials"],
                         {"authJsonSecret": {"name": "codex-login", "key": "auth.json"}})

        self.assert_rejected(proxy_manifest(worker={"credentials": {"apiKeySecret": {"name": "a"},
                                                                    "authJsonSecret": {"name": "b"}}}),
                             "set apiKeySecret or authJsonSecret, not both")
        self.assert_rejected(proxy_manifest(worker={"provider": {"baseURL": "api.example.com/v1"}}),
                             "spec.worker.provider.baseURL")
        self.assert_rejected(proxy_manifest(worker={"provider": {"baseURL": "https://x/v1", "wireAPI": "chat"}}),
                             "spec.worker.provider.wireAPI", "responses")
        self.assert_rejected(proxy_manifest(worker={"provider": {"baseURL": "https://x/v1", "envKey": "PROXY_API_KEY"}}),
                             "must not be a variable of codex-proxy itself")
        self.assert_rejected(proxy_manifest(worker={"provider": {"name": "no url"}}),
                             "spec.worker.provider.baseURL", "Required value")
        self.assert_rejected(proxy_manifest(worker={"configOverrides": {"bad key": "x"}}),
                             "worker.configOverrides keys must be dotted codex config keys")
        self.assert_rejected(proxy_manifest(worker={"configOverrides": {"k": "two\nlines"}}),
                             "spec.worker.configOverrides.k")
        self.assert_rejected(proxy_manifest(worker={"configOverrides": {"k": 3}}), "spec.worker.configOverrides.k")

    def test_columns_short_name_scale_and_status_subresources(self):
        self.apply(proxy_manifest("cols", replicas=2))
        table = kubectl("get", "cxp", "-n", self.namespace).stdout.splitlines()
        self.assertEqual(table[0].split(),
                         ["NAME", "READY", "DESIRED", "CURRENT", "MAINTENANCE", "RESTARTS", "STATUS", "AGE"])

        status = {"status": {"ready": "1/2", "phase": "Degraded", "restartsTotal": 3, "replicas": 2, "maintenance": "1/2",
                             "readyReplicas": 1, "selector": "app.kubernetes.io/instance=cols",
                             "conditions": [{"type": "Maintenance", "status": "True", "reason": "Enabled",
                                             "message": "maintenance is on",
                                             "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                             "pods": [{"name": "cols-abc", "ready": True, "workerState": "ready",
                                       "restartsTotal": 3}]}}
        kubectl("patch", "cxp", "cols", "-n", self.namespace, "--subresource=status", "--type=merge",
                "-p", json.dumps(status))
        row = kubectl("get", "cxp", "cols", "-n", self.namespace, "--no-headers").stdout.split()
        self.assertEqual(row[:7], ["cols", "1/2", "2", "2", "1/2", "3", "Degraded"])

        bad = {"status": {"pods": [{"name": "x", "workerState": "exploded"}]}}
        result = kubectl("patch", "cxp", "cols", "-n", self.namespace, "--subresource=status", "--type=merge",
                         "-p", json.dumps(bad), check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("workerState", result.stderr)

        # Writing status through the main resource is ignored; spec through status likewise.
        kubectl("patch", "cxp", "cols", "-n", self.namespace, "--type=merge", "-p",
                json.dumps({"status": {"phase": "Available"}}))
        self.assertEqual(kubectl_json("get", "cxp", "cols", "-n", self.namespace)["status"]["phase"], "Degraded")

        kubectl("scale", "cxp", "cols", "-n", self.namespace, "--replicas=3")
        self.assertEqual(kubectl_json("get", "cxp", "cols", "-n", self.namespace)["spec"]["replicas"], 3)
        scale = json.loads(kubectl("get", "--raw", "/apis/codexproxy.io/v1alpha1/namespaces/"
                                   f"{self.namespace}/codexproxies/cols/scale").stdout)
        self.assertEqual(scale["spec"]["replicas"], 3)
        self.assertEqual(scale["status"]["selector"], "app.kubernetes.io/instance=cols")

    def test_the_pod_template_fields_are_validated_by_the_api_server(self):
        self.apply(proxy_manifest("placed", resources={"requests": {"cpu": "500m", "memory": "1Gi"},
                                                       "limits": {"cpu": 2, "memory": "2Gi"}},
                                  tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                                  podLabels={"team": "ml"}, disruptionBudget={"minAvailable": "50%"}))
        spec = kubectl_json("get", "cxp", "placed", "-n", self.namespace)["spec"]
        self.assertEqual(spec["service"], {"type": "ClusterIP", "port": 11435})
        self.assertEqual(spec["disruptionBudget"], {"minAvailable": "50%"})

        self.assert_rejected(proxy_manifest(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
                             "resources.limits must not be below resources.requests")
        self.assert_rejected(proxy_manifest(resources={"requests": {"cpu": "lots"}}), "spec.resources.requests.cpu")
        self.assert_rejected(proxy_manifest(tolerations=[{"key": "a", "operator": "Maybe"}]),
                             "spec.tolerations[0].operator", "Unsupported value")
        self.assert_rejected(proxy_manifest(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Near"}]}]}}}),
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[0].operator")
        self.assert_rejected(proxy_manifest(topologySpreadConstraints=[{"maxSkew": 1}]),
                             "spec.topologySpreadConstraints[0].topologyKey", "Required value")
        self.assert_rejected(proxy_manifest(podLabels={"codexproxy.io/name": "other"}),
                             "podLabels must not set app.kubernetes.io/* or codexproxy.io/* labels")
        self.assert_rejected(proxy_manifest(podAnnotations={"codexproxy.io/restart-hash": "0"}),
                             "podAnnotations must not set codexproxy.io/*")
        self.assert_rejected(proxy_manifest(service={"type": "ExternalName"}), "spec.service.type")
        self.assert_rejected(proxy_manifest(imagePullPolicy="Sometimes"), "spec.imagePullPolicy")
        self.assert_rejected(proxy_manifest(disruptionBudget={"maxUnavailable": 1, "minAvailable": 1}),
                             "set maxUnavailable or minAvailable, not both")
        self.assert_rejected(proxy_manifest(disruptionBudget={"maxUnavailable": "half"}),
                             "spec.disruptionBudget.maxUnavailable")
        # the metrics scrape: a ServiceMonitor needs /metrics, an interval Prometheus understands
        self.assert_rejected(proxy_manifest(metrics={"enabled": False, "serviceMonitor": {"enabled": True}}),
                             "metrics.serviceMonitor.enabled needs metrics.enabled")
        self.assert_rejected(proxy_manifest(metrics={"serviceMonitor": {"interval": "soon"}}),
                             "spec.metrics.serviceMonitor.interval")
        self.assert_rejected(proxy_manifest(metrics={"tokenSecret": {"key": "t"}}), "spec.metrics.tokenSecret.name")

    def test_network_policy_specs_that_would_admit_no_caller_or_reach_no_model_are_refused(self):
        peers = [{"namespaceSelector": {"matchLabels": {"team": "search"}}}]
        self.apply(proxy_manifest("fenced", networkPolicy={"enabled": True, "apiFrom": peers,
                                                           "egressTo": {"modelCIDRs": ["203.0.113.0/24"]}}))
        spec = kubectl_json("get", "cxp", "fenced", "-n", self.namespace)["spec"]["networkPolicy"]
        self.assertEqual(spec["egressTo"]["ports"], [443])
        self.assertEqual(kubectl_json("get", "cxp", "fenced", "-n", self.namespace)["spec"]["service"]["port"], 11435)
        self.assert_rejected(proxy_manifest(networkPolicy={"enabled": True, "apiFrom": [],
                                                           "egressTo": {"allHTTPS": True}}),
                             "networkPolicy.apiFrom: list at least one peer")
        self.assert_rejected(proxy_manifest(networkPolicy={"enabled": True, "egressTo": {"allHTTPS": True}}),
                             "networkPolicy.apiFrom: list at least one peer")
        self.assert_rejected(proxy_manifest(networkPolicy={"enabled": True, "apiFrom": peers}),
                             "networkPolicy.egressTo: required when enabled")
        self.assert_rejected(proxy_manifest(networkPolicy={"enabled": True, "apiFrom": peers, "egressTo": {
            "allHTTPS": True, "modelCIDRs": ["10.0.0.0/8"]}}), "egressTo: set modelCIDRs (at least one) or allHTTPS")
        self.assert_rejected(proxy_manifest(networkPolicy={"enabled": True, "apiFrom": peers, "egressTo": {
            "modelCIDRs": ["api.openai.com"]}}), "spec.networkPolicy.egressTo.modelCIDRs[0]")
        self.assert_rejected(proxy_manifest(networkPolicy={"enabled": True, "apiFrom": [
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}], "egressTo": {"allHTTPS": True}}),
            "a peer is an ipBlock, or a namespaceSelector and/or podSelector")
        # ports that clash: the Service carries the API port and the ops port 11436
        self.assert_rejected(proxy_manifest(service={"port": 11436}), "service.port: 11436 is the ops port")

    def test_autoscaling_specs_that_contradict_themselves_or_replicas_are_refused(self):
        behavior = {"scaleDown": {"stabilizationWindowSeconds": 30,
                                  "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}}
        self.apply(proxy_manifest("scaled", autoscaling={"enabled": True, "maxReplicas": 4, "behavior": behavior}))
        spec = kubectl_json("get", "cxp", "scaled", "-n", self.namespace)["spec"]
        self.assertEqual((spec["replicas"], spec["autoscaling"]["minReplicas"]), (1, 1))
        self.assertEqual(spec["autoscaling"]["behavior"], behavior)
        self.assert_rejected(proxy_manifest(autoscaling={"enabled": True}),
                             "autoscaling.maxReplicas: required when enabled")
        self.assert_rejected(proxy_manifest(autoscaling={"enabled": True, "minReplicas": 5, "maxReplicas": 2}),
                             "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas")
        self.assert_rejected(proxy_manifest(autoscaling={"enabled": True, "maxReplicas": 2, "targetInFlightPerPod": 0}),
                             "spec.autoscaling.targetInFlightPerPod")
        self.assert_rejected(proxy_manifest(autoscaling={"enabled": True, "maxReplicas": 2, "targetUtilization": 2,
                                                         "targetInFlightPerPod": 2}),
                             "set targetInFlightPerPod or targetUtilization, not both")
        self.assert_rejected(proxy_manifest(replicas=0, autoscaling={"enabled": True, "maxReplicas": 2}),
                             "replicas: 0 with autoscaling.enabled")
        self.assert_rejected(proxy_manifest(autoscaling={"enabled": True, "maxReplicas": 2, "behavior": {
            "scaleUp": {"selectPolicy": "Sometimes"}}}), "spec.autoscaling.behavior.scaleUp.selectPolicy")

    def test_the_embedded_kubernetes_schemas_are_this_api_servers(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as openapi:
            openapi.write(kubectl("get", "--raw", "/openapi/v3/api/v1").stdout)
            openapi.flush()
            result = subprocess.run([sys.executable, K8S_SCHEMAS, "--check", CRD, openapi.name],
                                    capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_kubectl_explain_describes_the_fields(self):
        out = kubectl("explain", "codexproxy.spec.worker").stdout
        self.assertIn("Settings of the supervised worker", out)
        self.assertIn("maxConcurrency", out)
        out = kubectl("explain", "cxp.spec.maintenance.enabled").stdout
        self.assertIn("503", out)
        out = kubectl("explain", "cxp.spec.affinity.podAntiAffinity").stdout
        self.assertIn("requiredDuringSchedulingIgnoredDuringExecution", out)
        out = kubectl("explain", "cxp.spec.serviceAccountAnnotations").stdout
        self.assertIn("workload identity", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
