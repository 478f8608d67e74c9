"""Bad and extreme input through the real API server: a CodexProxy with every bounded field at its
minimum and at its maximum (read from the CRD itself, so new fields are covered), one past a bound,
1 MiB of annotations, unknown fields, and a settings ConfigMap edited by hand into garbage (the pods
keep their last good settings and say so in their log and their status entry)."""
import json
import signal

import yaml

from controller_harness import CRD, ControllerTestCase
from kube import kubectl, wait_until
from pod_fleet import PodFleet

# Cross-field rules of the CRD that a field-by-field extreme would break, and what they need.
KEEP_TOGETHER = {("worker", "backoff", "initialMs"): ("worker", "backoff", "maxMs")}
# Fields of which a spec sets one, not both (CEL): the all-extremes specs set the first only.
ONE_OF = {("autoscaling", "targetUtilization"): ("autoscaling", "targetInFlightPerPod")}


def bounded_fields():
    """(path, minimum, maximum) of every integer field of the CRD's spec with bounds."""
    with open(CRD) as f:
        crd = yaml.safe_load(f)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    found = []

    def walk(schema, path):
        for name, field in (schema.get("properties") or {}).items():
            if field.get("type") == "object":
                walk(field, path + (name,))
            elif field.get("type") == "integer" and "minimum" in field and "maximum" in field:
                found.append((path + (name,), field["minimum"], field["maximum"]))
    walk(spec, ())
    return found


def put(tree, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


class BadInputTest(ControllerTestCase):
    def manifest(self, name, spec=None, annotations=None):
        metadata = {"name": name, "namespace": self.namespace}
        if annotations:
            metadata["annotations"] = annotations
        return {"apiVersion": "codexproxy.io/v1alpha1", "kind": "CodexProxy", "metadata": metadata,
                "spec": {"image": "example.invalid/codex-proxy:1", **(spec or {})}}

    def apply(self, manifest, *flags):
        return kubectl("apply", "--server-side", *flags, "-f", "-", input=json.dumps(manifest), check=False)

    def test_every_bounded_field_at_its_minimum_and_at_its_maximum_is_accepted_and_reconciled(self):
        self.start_controller()
        fields = bounded_fields()
        self.assertGreater(len(fields), 15, "the CRD's bounded fields")
        for label, pick in (("minimum", lambda lo, hi: lo), ("maximum", lambda lo, hi: hi)):
            spec = {}
            fields = [(path, low, high) for path, low, high in fields if path not in ONE_OF]
            for path, low, high in fields:
                put(spec, path, pick(low, high))
            name = f"at-{label}"
            result = self.apply(self.manifest(name, spec))
            self.assertEqual(result.returncode, 0, f"{label}: {result.stderr}")
            wait_until(lambda: (self.get("cxp", name).get("status") or {}).get("observedGeneration") == 1, 60,
                       interval=0.5, message=f"the CodexProxy at its {label} reconciled")
            stored = self.get("cxp", name)["spec"]
            for path, low, high in fields:
                value = stored
                for key in path:
                    value = value[key]
                self.assertEqual(value, pick(low, high), ".".join(path))
            self.assertIsNotNone(self.get("deployment", name, check=False), f"{label}: a Deployment")
            reconciled = self.condition(name, "Reconciled") or {}
            self.assertNotEqual(reconciled.get("reason"), "ApplyFailed", reconciled)

    def test_one_past_each_bound_is_refused_naming_the_field(self):
        for path, low, high in bounded_fields():
            for value in (low - 1, high + 1):
                spec = {}
                put(spec, path, value)
                if path in KEEP_TOGETHER and value == high + 1:
                    put(spec, KEEP_TOGETHER[path], high)
                result = self.apply(self.manifest("past-bounds", spec))
                self.assertNotEqual(result.returncode, 0, f"{'.'.join(path)}={value} was accepted")
                self.assertIn(f"spec.{'.'.join(path)}", result.stderr)
        self.assertIsNone(self.get("cxp", "past-bounds", check=False))

    def test_a_mebibyte_of_annotations_is_refused_and_the_largest_allowed_is_reconciled(self):
        self.start_controller()
        refused = self.apply(self.manifest("annotated", annotations={"example.com/blob": "x" * (1 << 20)}))
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("annotations", refused.stderr)
        self.assertIn("Too long", refused.stderr)
        # Kubernetes allows 256 KiB of annotations in all: just under it is a valid object.
        accepted = self.apply(self.manifest("annotated", annotations={"example.com/blob": "y" * (255 * 1024)}))
        self.assertEqual(accepted.returncode, 0, accepted.stderr)
        wait_until(lambda: self.get("deployment", "annotated", check=False), 60, interval=0.5,
                   message="the heavily annotated CodexProxy reconciled")
        wait_until(lambda: (self.get("cxp", "annotated").get("status") or {}).get("observedGeneration") == 1, 60,
                   interval=0.5, message="its status written")

    def test_unknown_fields_are_refused_by_strict_validation_and_pruned_otherwise(self):
        manifest = self.manifest("unknown", {"bogus": 1, "worker": {"alsoBogus": "x"}})
        refused = self.apply(manifest)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("spec.bogus", refused.stderr)
        # Server-side apply always refuses them; a plain create that asks for no field validation
        # gets them pruned by the structural schema.
        accepted = kubectl("create", "--validate=false", "-f", "-", input=json.dumps(manifest), check=False)
        self.assertEqual(accepted.returncode, 0, accepted.stderr)
        stored = self.get("cxp", "unknown")["spec"]
        self.assertNotIn("bogus", stored)
        self.assertNotIn("alsoBogus", stored.get("worker", {}))

    def test_a_settings_configmap_edited_into_garbage_leaves_the_pods_on_their_last_good_settings(self):
        controller = self.start_controller()
        self.apply_proxy("garbage", replicas=1, maintenance={"enabled": True, "retryAfterSeconds": 7})
        fleet = PodFleet(self.namespace, "garbage")
        self.addCleanup(fleet.close)
        (pod, proxy), = fleet.wait_pods(1).items()
        wait_until(lambda: proxy.request("GET", "/v1/models")[0] == 503, 30, interval=0.2,
                   message="maintenance in force")
        # By hand, as someone with edit rights would, while the controller (which owns these keys and
        # would put its values back) is down.
        self.assertEqual(controller.stop(signal.SIGTERM), 0)
        garbage = {"maintenance.enabled": "perhaps", "maintenance.retryAfterSeconds": "-1",
                   "traceBuffer.maxFiles": "lots", "settingsGeneration": "x" * 100_000}
        kubectl("patch", "configmap", "garbage-settings", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"data": garbage}))
        invalid = wait_until(lambda: proxy.events("settings_value_invalid"), 30, interval=0.2,
                             message="the pod to log the bad values")
        logged = " ".join(e["error"] for e in invalid)
        for key in ("maintenance.enabled", "maintenance.retryAfterSeconds", "traceBuffer.maxFiles",
                    "settingsGeneration"):
            self.assertIn(key, logged)
        self.assertLess(max(len(e["error"]) for e in invalid), 300, "a bad value is quoted in part only")
        # The pod says so in its report (its heartbeat Lease, which the controller, down now, copies
        # into status.pods)...
        error = wait_until(lambda: self.report(pod).get("settingsError"), 30, interval=0.3,
                           message="the pod's report to name the bad keys")
        self.assertIn("maintenance.enabled", error)
        self.assertLessEqual(len(error.encode()), 1024 + 3)
        # ...and keeps its last good settings: maintenance on, its Retry-After, the pod alive.
        status, headers, _ = proxy.request("GET", "/v1/models")
        self.assertEqual((status, headers.get("Retry-After")), (503, "7"))
        self.assertIsNone(proxy.process.poll(), "the pod survived")
        # The controller back: it restores the ConfigMap, and the entry is clean again.
        self.start_controller()
        wait_until(lambda: self.get("configmap", "garbage-settings")["data"]["maintenance.enabled"] == "true", 60,
                   interval=0.5, message="the controller to restore its settings")
        wait_until(lambda: (self.entry("garbage", pod) or {}).get("settingsError") == "", 60, interval=0.5,
                   message="the pod's entry clean again once the ConfigMap is")
        self.assertEqual(proxy.request("GET", "/v1/models")[0], 503)

    def report(self, pod):
        lease = self.get("lease", pod, check=False) or {}
        return json.loads(lease.get("metadata", {}).get("annotations", {}).get("codexproxy.io/report", "{}"))

    def entry(self, name, pod):
        for item in (self.get("cxp", name).get("status") or {}).get("pods", []):
            if item["name"] == pod:
                return item
        return None
