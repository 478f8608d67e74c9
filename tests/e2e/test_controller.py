"""codexproxy-controller against the real control plane, with only the ClusterRole we ship."""
import json
import os
import signal
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

from controller_harness import CLUSTER_SH, Controller, ControllerTestCase
from kube import SOURCE_DIR, kubectl, kubectl_json, wait_until

EXAMPLE = os.path.join(SOURCE_DIR, "docs/examples/codexproxy.yaml")
OWNED = [("configmap", "{}-settings"), ("serviceaccount", "{}"), ("role", "{}"), ("rolebinding", "{}"),
         ("service", "{}"), ("poddisruptionbudget", "{}"), ("deployment", "{}")]


class ControllerTest(ControllerTestCase):
    def owned_objects(self, name):
        return [self.get(kind, pattern.format(name), check=False) for kind, pattern in OWNED]

    def wait_owned(self, name, timeout=30):
        return wait_until(lambda: all(self.owned_objects(name)) and self.owned_objects(name), timeout,
                          interval=0.2, message=f"every object of {name}")

    def pods(self, name):
        return kubectl_json("get", "pods", "-n", self.namespace, "-l", f"codexproxy.io/name={name}")["items"]

    def test_a_codexproxy_gets_every_object_with_owner_references_and_its_pods_run(self):
        self.start_controller()
        # As docs/examples/codexproxy.yaml says: its model key lives in the Secret `openai`.
        kubectl("create", "secret", "generic", "openai", "-n", self.namespace, "--from-literal=apiKey=sk-e2e-0123456789")
        kubectl("apply", "-n", self.namespace, "-f", EXAMPLE)
        proxy = self.get("cxp", "demo")
        objects = self.wait_owned("demo")
        for obj in objects:
            refs = obj["metadata"].get("ownerReferences", [])
            self.assertEqual(len(refs), 1, obj["metadata"]["name"])
            self.assertEqual(refs[0]["uid"], proxy["metadata"]["uid"])
            self.assertTrue(refs[0]["controller"])
            managers = kubectl_json("get", obj["kind"].lower(), obj["metadata"]["name"], "-n", self.namespace,
                                    "--show-managed-fields")["metadata"]["managedFields"]
            self.assertIn("codexproxy-controller", [m["manager"] for m in managers])
        deployment = objects[-1]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        self.assertEqual(env["CODEX_MODEL"], "gpt-5")
        self.assertEqual(env["WORKER_BACKOFF_MAX_MS"], "5000")
        self.assertEqual(env["POD_NAME"], {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}})
        self.assertEqual(container["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "ops", "scheme": "HTTP"})
        self.assertEqual(container["readinessProbe"]["periodSeconds"], 5)
        self.assertEqual(env["PROXY_OPS_PORT"], "11436")
        self.assertEqual({p["name"]: p["containerPort"] for p in container["ports"]}, {"http": 11435, "ops": 11436})
        self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/livez")
        security = container["securityContext"]
        self.assertFalse(security["allowPrivilegeEscalation"])
        self.assertTrue(security["readOnlyRootFilesystem"])
        self.assertTrue(deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"])
        settings = objects[0]["data"]
        self.assertEqual(settings["maintenance.enabled"], "false")
        role = objects[2]
        self.assertEqual(role["rules"][0]["resourceNames"], ["demo-settings"])
        # kwok runs the Deployment's pods
        wait_until(lambda: len([p for p in self.pods("demo") if p["status"].get("phase") == "Running"]) == 2,
                   60, interval=0.3, message="2 running pods")
        # the columns and the status the controller writes
        wait_until(lambda: self.get("cxp", "demo").get("status", {}).get("observedGeneration") == 1, 30,
                   interval=0.2, message="observedGeneration 1")
        table = kubectl("get", "cxp", "-n", self.namespace).stdout
        self.assertRegex(table, r"NAME\s+READY\s+DESIRED\s+CURRENT\s+MAINTENANCE\s+RESTARTS\s+STATUS\s+AGE")
        self.assertRegex(table, r"demo\s+\d+/2\s+2\s+\d+\s+False\s+0\s+\w+")
        created = [e for e in kubectl_json("get", "events", "-n", self.namespace)["items"]
                   if e["involvedObject"]["kind"] == "CodexProxy" and e["reason"] == "Created"]
        self.assertEqual(len(created), 1, created)
        for fragment in ("ConfigMap demo-settings", "ServiceAccount demo", "Role demo", "RoleBinding demo",
                         "Service demo", "PodDisruptionBudget demo", "Deployment demo"):
            self.assertIn(fragment, created[0]["message"])
        # the example leaves the API, the maintenance endpoint and the metrics open: said where SREs look
        insecure = self.condition("demo", "InsecureConfig")
        self.assertEqual((insecure["status"], insecure["reason"]), ("True", "OpenEndpoints"))
        for field in ("spec.apiKeySecret", "spec.adminTokenSecret", "spec.metrics.enabled"):
            self.assertIn(field, insecure["message"])
        warnings = kubectl_json("get", "events", "-n", self.namespace,
                                "--field-selector", "involvedObject.name=demo,reason=InsecureConfig")["items"]
        self.assertEqual([e["type"] for e in warnings], ["Warning"])

    def test_a_secured_codexproxy_has_no_insecure_config_warning(self):
        self.start_controller()
        for name, key in (("api", "apiKey"), ("admin", "adminToken")):
            kubectl("create", "secret", "generic", name, "-n", self.namespace, f"--from-literal={key}=s3cret-{name}-0123")
        self.apply_proxy("secured", apiKeySecret={"name": "api"}, adminTokenSecret={"name": "admin"},
                         metrics={"enabled": False})
        condition = wait_until(lambda: self.condition("secured", "InsecureConfig"), 30, interval=0.2,
                               message="the InsecureConfig condition")
        self.assertEqual((condition["status"], condition["reason"]), ("False", "AsExpected"))
        self.wait_owned("secured")
        events = kubectl_json("get", "events", "-n", self.namespace,
                              "--field-selector", "involvedObject.name=secured,reason=InsecureConfig")["items"]
        self.assertEqual(events, [])

    def test_kubectl_scale_changes_the_deployment_and_the_pods(self):
        self.start_controller()
        self.apply_proxy("scaled", replicas=1)
        self.wait_owned("scaled")
        kubectl("scale", "cxp", "scaled", "-n", self.namespace, "--replicas=3")
        wait_until(lambda: self.get("deployment", "scaled")["spec"]["replicas"] == 3, 30, interval=0.2,
                   message="Deployment replicas 3")
        wait_until(lambda: len(self.pods("scaled")) == 3, 60, interval=0.3, message="3 pods")
        wait_until(lambda: self.get("cxp", "scaled")["status"].get("replicas") == 3, 30, interval=0.2,
                   message="status.replicas 3")

    def test_the_pod_template_fields_reach_the_pods_and_removing_one_removes_it(self):
        self.start_controller()
        priority = f"{self.namespace}-high"
        kubectl("create", "priorityclass", priority, "--value=1000")
        self.addCleanup(kubectl, "delete", "priorityclass", priority, "--ignore-not-found", check=False)
        self.apply_proxy(
            "placed", replicas=2, nodeSelector={"type": "kwok"}, priorityClassName=priority,
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "codex", "effect": "NoSchedule"}],
            resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            podLabels={"team": "platform"}, podAnnotations={"example.com/owner": "sre"},
            serviceAccountAnnotations={"iam.gke.io/gcp-service-account": "proxy@example.iam"},
            service={"type": "NodePort", "port": 8080, "annotations": {"example.com/lb": "internal"}},
            disruptionBudget={"minAvailable": 1})
        self.wait_owned("placed")
        running = wait_until(lambda: (lambda pods: pods if len(pods) == 2 else None)(
            [p for p in self.pods("placed") if p["status"].get("phase") == "Running"]), 60, interval=0.3,
            message="2 running pods")
        for pod in running:
            self.assertEqual(pod["metadata"]["labels"]["team"], "platform")
            self.assertEqual(pod["metadata"]["labels"]["app.kubernetes.io/instance"], "placed")
            self.assertEqual(pod["metadata"]["annotations"]["example.com/owner"], "sre")
            self.assertEqual(pod["spec"]["priority"], 1000)  # the API server resolved the class
            self.assertEqual(pod["spec"]["nodeSelector"], {"type": "kwok"})
            self.assertEqual(pod["spec"]["containers"][0]["resources"]["requests"], {"cpu": "100m", "memory": "256Mi"})
            self.assertIn("dedicated", [t.get("key") for t in pod["spec"]["tolerations"]])
            self.assertEqual(pod["status"]["qosClass"], "Burstable")
        account = self.get("serviceaccount", "placed")
        self.assertEqual(account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"], "proxy@example.iam")
        service = self.get("service", "placed")
        self.assertEqual(service["spec"]["type"], "NodePort")
        self.assertEqual([(p["name"], p["port"]) for p in service["spec"]["ports"]], [("http", 8080), ("ops", 11436)])
        self.assertEqual(service["metadata"]["annotations"]["example.com/lb"], "internal")
        budget = self.get("poddisruptionbudget", "placed")
        self.assertEqual(budget["spec"]["minAvailable"], 1)
        self.assertNotIn("maxUnavailable", budget["spec"])
        # The budget selects both pods (expectedPods: by selector, not readiness — the kwok nodes' Ready
        # condition flaps under load, and a pod the node lifecycle controller marked unready stays so).
        wait_until(lambda: self.get("poddisruptionbudget", "placed").get("status", {}).get("expectedPods") == 2,
                   60, interval=0.3, message="the budget selects the 2 pods")
        # Removing fields removes them from what the controller owns (apply drops what it no longer sends).
        kubectl("patch", "cxp", "placed", "-n", self.namespace, "--type", "json", "-p", json.dumps([
            {"op": "remove", "path": "/spec/podLabels"}, {"op": "remove", "path": "/spec/disruptionBudget"},
            {"op": "remove", "path": "/spec/serviceAccountAnnotations"}]))
        wait_until(lambda: "team" not in self.get("deployment", "placed")["spec"]["template"]["metadata"]["labels"],
                   30, interval=0.2, message="podLabels removed from the template")
        budget = wait_until(lambda: (lambda b: b if "maxUnavailable" in b["spec"] else None)(
            self.get("poddisruptionbudget", "placed")), 30, interval=0.2, message="the default budget")
        self.assertEqual(budget["spec"]["maxUnavailable"], 1)
        self.assertNotIn("minAvailable", budget["spec"])
        annotations = self.get("serviceaccount", "placed")["metadata"].get("annotations", {})
        self.assertNotIn("iam.gke.io/gcp-service-account", annotations)
        # A nodeSelector no node matches: the new pods stay Pending (the scheduler says why), the old
        # ones keep serving (maxUnavailable of the rollout), and the CodexProxy shows it.
        kubectl("patch", "cxp", "placed", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"nodeSelector": {"type": "nowhere"}}}))
        pending = wait_until(lambda: [p for p in self.pods("placed") if p["spec"].get("nodeSelector") ==
                                      {"type": "nowhere"}], 30, interval=0.3, message="a pod of the new template")
        time.sleep(3)  # the measured interval: a pod that could be placed would be bound within it
        for pod in pending:
            pod = self.get("pod", pod["metadata"]["name"], check=False)
            if pod:
                self.assertEqual(pod["status"].get("phase"), "Pending")
                self.assertNotIn("nodeName", pod["spec"])
        self.assertEqual(len([p for p in self.pods("placed") if p["status"].get("phase") == "Running"]), 2)
        progressing = wait_until(lambda: (lambda c: c if "cannot be scheduled" in c["message"] else None)(
            self.condition("placed", "Progressing")), 30, interval=0.3, message="the scheduler's reason shown")
        self.assertIn("node affinity/selector", progressing["message"])

    def test_a_pod_template_the_api_server_refuses_is_reported_with_its_message(self):
        self.start_controller()
        # The CRD cannot judge everything the Deployment's own validation does: a label key with a
        # bad prefix passes the CRD's value pattern but not the Deployment's validation.
        self.apply_proxy("refused", podLabels={"-bad-/key": "x"})
        # A PriorityClass that does not exist: the Deployment is accepted, its pods are not.
        self.apply_proxy("unprioritized", priorityClassName="no-such-class")
        condition = wait_until(lambda: (lambda c: c if c and c["status"] == "True" else None)(
            self.condition("unprioritized", "Degraded")), 60, interval=0.3, message="Degraded on refused pods")
        self.assertEqual(condition["reason"], "PodsNotCreated")
        self.assertIn("no-such-class", condition["message"])
        condition = wait_until(lambda: (lambda c: c if c and c["status"] == "True" else None)(
            self.condition("refused", "Degraded")), 30, interval=0.2, message="Degraded on the refused template")
        self.assertEqual(condition["reason"], "ApplyFailed")
        self.assertIn("-bad-/key", condition["message"])
        kubectl("patch", "cxp", "refused", "-n", self.namespace, "--type", "json",
                "-p", json.dumps([{"op": "remove", "path": "/spec/podLabels"}]))
        wait_until(lambda: self.condition("refused", "Degraded")["status"] == "False", 30, interval=0.2,
                   message="Degraded cleared")
        self.wait_owned("refused")

    def test_maintenance_changes_only_the_configmap_and_the_model_rolls_the_deployment(self):
        controller = self.start_controller()
        self.apply_proxy("live", replicas=1)
        self.wait_owned("live")
        wait_until(lambda: self.get("deployment", "live")["status"].get("observedGeneration") == 1, 30,
                   interval=0.2, message="the Deployment observed")
        before = self.get("deployment", "live")
        deployment_writes = controller.metric("codexproxy_controller_object_writes_total", resource="deployments")
        kubectl("patch", "cxp", "live", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"maintenance": {"enabled": True, "retryAfterSeconds": 30}}}))
        settings = wait_until(lambda: (lambda d: d if d["maintenance.enabled"] == "true" else None)(
            self.get("configmap", "live-settings")["data"]), 30, interval=0.2, message="maintenance in the ConfigMap")
        self.assertEqual(settings["maintenance.retryAfterSeconds"], "30")
        self.assertEqual(settings["settingsGeneration"], "2")
        wait_until(lambda: self.condition("live", "Maintenance")["status"] == "True", 30, interval=0.2,
                   message="Maintenance condition True")
        after = self.get("deployment", "live")
        self.assertEqual(after["metadata"]["generation"], before["metadata"]["generation"], "no rollout")
        self.assertEqual(controller.metric("codexproxy_controller_object_writes_total", resource="deployments"),
                         deployment_writes)
        hash_before = before["spec"]["template"]["metadata"]["annotations"]["codexproxy.io/restart-hash"]
        kubectl("patch", "cxp", "live", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"worker": {"model": "gpt-5-mini"}}}))
        rolled = wait_until(lambda: (lambda d: d if d["metadata"]["generation"] > before["metadata"]["generation"]
                                     else None)(self.get("deployment", "live")), 30, interval=0.2,
                            message="the Deployment to roll")
        template = rolled["spec"]["template"]
        self.assertNotEqual(template["metadata"]["annotations"]["codexproxy.io/restart-hash"], hash_before)
        env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
        self.assertEqual(env["CODEX_MODEL"], "gpt-5-mini")
        # the live settings did not change, so their generation did not either
        self.assertEqual(self.get("configmap", "live-settings")["data"]["settingsGeneration"], "2")

    def test_a_deleted_owned_object_is_recreated_and_deleting_the_codexproxy_removes_everything(self):
        self.start_controller()
        self.apply_proxy("owned")
        objects = self.wait_owned("owned")
        old_uid = objects[-1]["metadata"]["uid"]
        kubectl("delete", "deployment", "owned", "-n", self.namespace, "--wait=false")
        wait_until(lambda: (self.get("deployment", "owned", check=False) or {"metadata": {"uid": old_uid}})
                   ["metadata"]["uid"] != old_uid, 30, interval=0.2, message="the Deployment recreated")
        kubectl("delete", "configmap", "owned-settings", "-n", self.namespace, "--wait=false")
        wait_until(lambda: self.get("configmap", "owned-settings", check=False), 30, interval=0.2,
                   message="the ConfigMap recreated")
        kubectl("delete", "cxp", "owned", "-n", self.namespace)
        wait_until(lambda: not any(self.owned_objects("owned")), 60, interval=0.5,
                   message="garbage collection of every owned object")

    def test_a_network_policy_follows_the_spec_and_reaches_the_api_server(self):
        self.start_controller()
        peers = [{"namespaceSelector": {"matchLabels": {"team": "search"}}}]
        monitoring = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
        self.apply_proxy("fenced", networkPolicy={"enabled": True, "apiFrom": peers, "metricsFrom": monitoring,
                                                  "egressTo": {"modelCIDRs": ["203.0.113.0/24"]}})
        policy = wait_until(lambda: self.get("networkpolicy", "fenced", check=False), 30, interval=0.2,
                            message="the NetworkPolicy")
        self.assertEqual(policy["metadata"]["ownerReferences"][0]["uid"], self.get("cxp", "fenced")["metadata"]["uid"])
        spec = policy["spec"]
        self.assertEqual(spec["podSelector"]["matchLabels"]["codexproxy.io/name"], "fenced")
        self.assertEqual([(r["from"], r["ports"][0]["port"]) for r in spec["ingress"]],
                         [(peers, 11435), (monitoring, 11436)])
        # egress: DNS, then the API server as this cluster publishes it, then the model
        # (this plane's API server advertises 127.0.0.1 and so publishes no EndpointSlice: then none)
        found = kubectl("get", "endpointslice", "kubernetes", "-n", "default", "-o", "json", check=False)
        published = json.loads(found.stdout) if found.returncode == 0 else {"endpoints": [], "ports": []}
        addresses = {(a, p["port"]) for e in published.get("endpoints") or [] for a in e["addresses"]
                     for p in published.get("ports") or []}
        cluster_ip = kubectl_json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
        rendered = {(r["to"][0]["ipBlock"]["cidr"].split("/")[0], r["ports"][0]["port"]) for r in spec["egress"][1:-1]}
        self.assertEqual(rendered, addresses | {(cluster_ip, 443)})
        self.assertEqual(spec["egress"][-1]["to"], [{"ipBlock": {"cidr": "203.0.113.0/24"}}])
        self.assertEqual(spec["egress"][-1]["ports"], [{"protocol": "TCP", "port": 443}])
        # a change is applied live; turning it off deletes it
        kubectl("patch", "cxp", "fenced", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"networkPolicy": {"egressTo": {"modelCIDRs": None, "allHTTPS": True}}}}))
        wait_until(lambda: "to" not in self.get("networkpolicy", "fenced")["spec"]["egress"][-1], 30, interval=0.2,
                   message="egress to any address on 443")
        kubectl("patch", "cxp", "fenced", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"networkPolicy": {"enabled": False}}}))
        wait_until(lambda: self.get("networkpolicy", "fenced", check=False) is None, 30, interval=0.2,
                   message="the NetworkPolicy deleted")

    def test_a_spec_only_the_controller_can_judge_is_reported_and_others_keep_working(self):
        self.start_controller()
        self.apply_proxy("bad", image="Example.com/Upper/Case:1")
        self.apply_proxy("good")
        condition = wait_until(lambda: (lambda c: c if c and c["status"] == "True" else None)(
            self.condition("bad", "Degraded")), 30, interval=0.2, message="Degraded on the bad spec")
        self.assertEqual(condition["reason"], "InvalidSpec")
        self.assertIn("spec.image", condition["message"])
        self.assertEqual(self.get("cxp", "bad")["status"]["phase"], "Degraded")
        self.assertIsNone(self.get("deployment", "bad", check=False))
        events = kubectl_json("get", "events", "-n", self.namespace,
                              "--field-selector", "involvedObject.name=bad,reason=InvalidSpec")["items"]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["type"], "Warning")
        self.wait_owned("good")
        # fixing the spec clears the condition
        kubectl("patch", "cxp", "bad", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"image": "example.com/upper/case:1"}}))
        wait_until(lambda: self.condition("bad", "Degraded")["status"] == "False", 30, interval=0.2,
                   message="Degraded cleared")
        self.wait_owned("bad")

    def limited_controller(self, writable):
        """A controller whose ServiceAccount may write only `writable` (kubectl --resource syntax),
        read Deployments and pods, and use its CodexProxies, Events and the pods' Leases."""
        kubectl("create", "role", "limited", "-n", self.namespace, "--verb=get,list,watch,create,patch",
                f"--resource={writable}")
        kubectl("create", "role", "readonly-deployments", "-n", self.namespace,
                "--verb=get,list,watch", "--resource=deployments,pods")
        kubectl("create", "role", "cxp", "-n", self.namespace, "--verb=get,list,watch,patch",
                "--resource=codexproxies,codexproxies/status,events")
        kubectl("create", "role", "events", "-n", self.namespace, "--verb=create", "--resource=events")
        # the pods' heartbeats: read, and held in order to grant them to the pods' Role
        kubectl("create", "role", "leases", "-n", self.namespace, "--verb=get,list,watch,create,update,patch",
                "--resource=leases.coordination.k8s.io")
        for role in ("limited", "readonly-deployments", "cxp", "events", "leases"):
            kubectl("create", "rolebinding", f"limited-{role}", "-n", self.namespace, f"--role={role}",
                    f"--serviceaccount={self.namespace}:limited")
        kubectl("create", "serviceaccount", "limited", "-n", self.namespace)
        # the shipped ClusterRole's pod permissions are needed to create the pods' Role
        kubectl("create", "rolebinding", "limited-escalation", "-n", self.namespace,
                "--clusterrole=codexproxy-controller", "--serviceaccount", f"{self.namespace}:nobody")
        from controller_harness import Controller, sa_kubeconfig
        kubeconfig = sa_kubeconfig(self.namespace, "limited", self.kubeconfig + ".limited")
        controller = Controller(kubeconfig, self.namespace)
        self.addCleanup(self._close_controller, controller)
        return controller

    def test_a_controller_that_cannot_list_a_kind_is_not_ready_and_says_which(self):
        # e.g. an upgrade that kept the old ClusterRole (no poddisruptionbudgets)
        controller = self.limited_controller("configmaps,services,serviceaccounts,roles,rolebindings")
        line = "[-]informers-synced failed: not synced: poddisruptionbudgets\n"
        wait_until(lambda: (lambda r: r[0] == 503 and line in r[1])(controller.readyz()), 30, interval=0.2,
                   message="/readyz naming the unsynced kind, and only it")

    def test_forbidden_writes_are_reported_not_spun_on(self):
        # A controller whose role lacks Deployment writes: it must say so and back off.
        controller = self.limited_controller(
            "configmaps,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets.policy")
        self.apply_proxy("denied")
        condition = wait_until(lambda: (lambda c: c if c and c["status"] == "True" else None)(
            self.condition("denied", "Degraded")), 30, interval=0.2, message="Degraded on a 403")
        self.assertEqual(condition["reason"], "ApplyFailed")
        self.assertIn("403", condition["message"])
        reconciles = controller.metric("controller_runtime_reconcile_total")
        time.sleep(5)  # the measured interval itself: a hot loop would reconcile hundreds of times
        self.assertLessEqual(controller.metric("controller_runtime_reconcile_total") - reconciles, 3)

    def test_steady_state_issues_no_writes(self):
        controller = self.start_controller()
        self.apply_proxy("steady", replicas=2)
        self.wait_owned("steady")
        wait_until(lambda: len(self.pods("steady")) == 2, 60, interval=0.3, message="2 pods")
        # settle: the Deployment's and pods' status churn ends
        wait_until(lambda: self.get("deployment", "steady")["status"].get("readyReplicas") == 2, 60, interval=0.3,
                   message="Deployment ready")

        def quiet_for(seconds):
            start = controller.writes()
            time.sleep(seconds)
            return controller.writes() == start
        wait_until(lambda: quiet_for(3), 60, interval=0, message="writes to settle")
        writes = controller.writes()
        mutating = sum(controller.metric("rest_client_requests_total", method=m) for m in ("POST", "PUT", "PATCH", "DELETE"))
        reconciles = controller.metric("controller_runtime_reconcile_total")
        time.sleep(30)  # the measured interval (the issue asks for 30 s of steady state)
        self.assertEqual(controller.writes(), writes)
        self.assertEqual(sum(controller.metric("rest_client_requests_total", method=m)
                             for m in ("POST", "PUT", "PATCH", "DELETE")), mutating)
        # Reconciles may come (pods' status churn) but stay few: a loop would make hundreds in 30 s.
        self.assertLessEqual(controller.metric("controller_runtime_reconcile_total") - reconciles, 10)


class ControllerDocsTest(ControllerTestCase):
    def test_every_metric_in_docs_controller_md_is_exported_and_every_exported_one_documented(self):
        import re
        controller = self.start_controller(leader_elect=True)
        self.apply_proxy("docs")  # so that reconcile and request series have samples
        wait_until(lambda: controller.metric("controller_runtime_reconcile_total") > 0, 30, interval=0.2,
                   message="a reconcile")
        exported = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", controller.metrics(), re.M)}
        with open(os.path.join(SOURCE_DIR, "docs/controller.md")) as f:
            table = [line for line in f if line.startswith("| `")]
        documented = set()
        for line in table:
            documented |= set(re.findall(r"`((?:controller_runtime|workqueue|leader_election|rest_client|codexproxy|process)_[a-z_]+)", line))
        self.assertEqual(exported - documented, set(), "exported but not in docs/controller.md")
        self.assertEqual(documented - exported, set(), "in docs/controller.md but not exported")


def certificate_subject(port):
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True, text=True,
                          check=True).stdout.strip(), pem


def make_certificate(folder, name):
    """A self-signed P-256 certificate for localhost in folder/tls.crt + tls.key, swapped in whole."""
    work = tempfile.mkdtemp(dir=folder)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{work}/tls.key", "-out", f"{work}/tls.crt", "-subj", f"/CN={name}", "-days", "1",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    for file in ("tls.key", "tls.crt"):
        os.replace(f"{work}/{file}", f"{folder}/{file}")


class SecureMetricsTest(ControllerTestCase):
    """--metrics-secure (the default): /metrics over HTTPS, each scraper's token reviewed."""

    def test_metrics_need_a_token_that_may_get_metrics_and_are_served_over_https(self):
        kubectl("create", "serviceaccount", "stranger", "-n", self.namespace)
        stranger = self.token("stranger")
        controller = self.start_controller(metrics_token=stranger)
        self.assertTrue(controller.find_event("started")["metrics_secure"])
        # Without the review permissions (the chart's metrics-auth ClusterRole): 503, saying why.
        status, body = controller.scrape(stranger)
        self.assertEqual(status, 503, body)
        self.assertIn("TokenReview failed", body)
        reader = self.metrics_reader_token()
        controller.metrics_token = reader
        wait_until(lambda: controller.scrape(reader)[0] == 200, 30, interval=0.5, message="the reader scraping")
        self.assertIn("leader_election_master_status", controller.scrape(reader)[1])
        self.assertEqual(controller.scrape(None)[0], 401)
        self.assertEqual(controller.scrape("not-a-token")[0], 401)
        status, body = controller.scrape(stranger)
        self.assertEqual(status, 403, body)
        self.assertIn(f"system:serviceaccount:{self.namespace}:stranger", body)
        self.assertEqual(controller._get(controller.metrics_port, "/metrics")[0], 0, "plain HTTP answered")
        # The self-signed certificate names localhost: a client that pins it verifies the host.
        _, pem = certificate_subject(controller.metrics_port)
        request = urllib.request.Request(f"https://localhost:{controller.metrics_port}/metrics",
                                         headers={"Authorization": f"Bearer {reader}"})
        with urllib.request.urlopen(request, timeout=5, context=ssl.create_default_context(cadata=pem)) as r:
            self.assertEqual(r.status, 200)
        # Decisions are cached: scrapes do not each cost two API requests.
        reviews = controller.metric("rest_client_requests_total", method="POST")
        for _ in range(5):
            self.assertEqual(controller.scrape(reader)[0], 200)
        self.assertEqual(controller.metric("rest_client_requests_total", method="POST"), reviews)
        denied = controller.events("metrics_access_denied")
        self.assertTrue(any(e["user"].endswith(":stranger") for e in denied), denied)
        for token in (reader, stranger):
            self.assertNotIn(token, controller.raw_log())

    def test_a_certificate_directory_is_served_and_reread_and_a_bad_one_stops_startup(self):
        reader = self.metrics_reader_token()
        folder = tempfile.mkdtemp(prefix="cxp-metrics-certs-")
        make_certificate(folder, "first")
        controller = self.start_controller(metrics_token=reader, extra_args=["--metrics-cert-dir", folder])
        self.assertEqual(controller.find_event("started")["metrics_certificate"], "files")
        self.assertIn("CN = first", certificate_subject(controller.metrics_port)[0])
        make_certificate(folder, "second")  # as cert-manager renews the Secret
        wait_until(lambda: "CN = second" in certificate_subject(controller.metrics_port)[0], 40, interval=0.5,
                   message="the renewed certificate served")
        self.assertTrue(controller.find_event("metrics_certificate_reloaded"))
        self.assertEqual(controller.scrape(reader)[0], 200)
        with self.assertRaises(AssertionError) as refused:
            Controller(self.kubeconfig, self.namespace, metrics_token=reader,
                       extra_args=["--metrics-cert-dir", os.path.join(folder, "missing")])
        self.assertIn("--metrics-cert-dir", str(refused.exception))


class LeaderElectionTest(ControllerTestCase):
    def leader_and_standby(self):
        first = self.start_controller(leader_elect=True)
        wait_until(lambda: first.metric("leader_election_master_status") == 1, 30, interval=0.2,
                   message="the first controller to lead")
        second = self.start_controller(leader_elect=True)
        wait_until(lambda: second.find_event("caches_synced"), 30, interval=0.2, message="second synced")
        return first, second

    def test_one_leads_and_the_other_takes_over_within_20s_of_the_leader_dying(self):
        first, second = self.leader_and_standby()
        self.assertEqual(second.metric("leader_election_master_status"), 0)
        # Both Ready (a standby is a healthy replica); the verbose body says which one leads.
        for controller, role in ((first, "leading"), (second, "standby")):
            status, body = controller.readyz()
            self.assertEqual(status, 200, body)
            self.assertIn(f"[+]leader-election {role}", body)
        self.apply_proxy("one")
        wait_until(lambda: self.get("deployment", "one", check=False), 30, interval=0.2, message="reconciled")
        self.assertEqual(second.metric("codexproxy_controller_object_writes_total"), 0, "the standby wrote")
        killed_at = time.monotonic()
        first.stop(signal.SIGKILL)
        wait_until(lambda: second.metric("leader_election_master_status") == 1, 20, interval=0.2,
                   message="the standby to take over")
        self.assertLess(time.monotonic() - killed_at, 20)
        self.apply_proxy("two")
        wait_until(lambda: self.get("deployment", "two", check=False), 30, interval=0.2,
                   message="the new leader reconciles")

    def test_sigterm_releases_the_lease_so_a_successor_takes_over_at_once(self):
        first, second = self.leader_and_standby()
        self.assertEqual(first.stop(signal.SIGTERM), 0)
        self.assertTrue(first.find_event("lease_released"))
        lease = kubectl_json("get", "lease", "codexproxy-controller-leader", "-n", self.namespace)
        took_over = time.monotonic()
        wait_until(lambda: second.metric("leader_election_master_status") == 1, 10, interval=0.1,
                   message="the successor")
        self.assertLess(time.monotonic() - took_over, 8)
        self.assertIn(lease["spec"].get("holderIdentity", ""), ("", second.find_event("started")["identity"]))


class ApiServerOutageTest(ControllerTestCase):
    def test_the_controller_recovers_from_an_apiserver_restart_without_duplicates(self):
        controller = self.start_controller()
        self.apply_proxy("before")
        wait_until(lambda: self.get("deployment", "before", check=False), 30, interval=0.2, message="reconciled")
        subprocess.run([CLUSTER_SH, "restart-apiserver", "3"], check=True, capture_output=True, timeout=180)
        self.assertIsNone(controller.process.poll(), "the controller died during the outage")
        wait_until(lambda: controller.events("watch_failed") or controller.events("list_failed"), 30,
                   interval=0.2, message="the controller to notice the outage")
        self.apply_proxy("after")
        wait_until(lambda: self.get("deployment", "after", check=False), 90, interval=0.5,
                   message="a CodexProxy created after the restart to be reconciled")
        deployments = kubectl_json("get", "deployments", "-n", self.namespace)["items"]
        self.assertEqual(sorted(d["metadata"]["name"] for d in deployments), ["after", "before"])
        self.assertEqual(controller.readyz()[0], 200)


if __name__ == "__main__":
    unittest.main()
