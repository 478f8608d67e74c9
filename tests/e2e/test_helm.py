"""The Helm chart on the local control plane: lint, one source of truth, install/upgrade/uninstall,
schema, and a controller running with only the chart's RBAC (issue 8)."""
import json
import os
import subprocess
import tempfile
import unittest
import uuid

import yaml
from controller_harness import Controller, install_crd_and_cluster_role, sa_kubeconfig
from kube import ADMIN_KUBECONFIG, SOURCE_DIR, KubeTestCase, kubectl, kubectl_json, tools_bin, wait_until

CHART = os.path.join(SOURCE_DIR, "charts/codexproxy-operator")
KUBE_VERSION = "1.33.0"


def helm(*args, check=True, timeout=180):
    env = {**os.environ, "KUBECONFIG": ADMIN_KUBECONFIG, "HELM_CACHE_HOME": tempfile.gettempdir() + "/cxp-helm-cache",
           "HELM_CONFIG_HOME": tempfile.gettempdir() + "/cxp-helm-config", "HELM_DATA_HOME": tempfile.gettempdir() + "/cxp-helm-data"}
    result = subprocess.run([os.path.join(tools_bin(), "helm"), *args], capture_output=True, text=True, env=env,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def render(*args):
    return helm("template", "cxp", CHART, "--kube-version", KUBE_VERSION, *args).stdout


def documents(text):
    return [d for d in yaml.safe_load_all(text) if d]


class ChartStaticTest(unittest.TestCase):
    def test_helm_lint_is_clean(self):
        result = helm("lint", "--strict", CHART)
        self.assertIn("0 chart(s) failed", result.stdout)
        self.assertNotIn("[WARNING]", result.stdout)
        self.assertNotIn("[ERROR]", result.stdout)

    def test_the_chart_holds_the_same_crd_and_alert_rules_as_the_repository(self):
        for copy, source in (("files/codexproxies.codexproxy.io.yaml", "crds/codexproxies.codexproxy.io.yaml"),
                             ("files/codex-proxy.rules.yaml", "docs/alerts/codex-proxy.rules.yaml"),
                             ("files/pod-lease-policy.yaml", "config/admission/pod-lease-policy.yaml")):
            with open(os.path.join(CHART, copy)) as a, open(os.path.join(SOURCE_DIR, source)) as b:
                self.assertEqual(a.read(), b.read(), f"charts/codexproxy-operator/{copy} differs from {source}; copy it")

    def test_the_prometheus_adapter_rules_render_as_the_shipped_file(self):
        result = helm("template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "prometheusAdapterRules.enabled=true",
                      "--set", "prometheusAdapterRules.namespace=monitoring",
                      "--show-only", "templates/prometheus-adapter-rules.yaml")
        config_map = yaml.safe_load(result.stdout)
        self.assertEqual(config_map["metadata"]["namespace"], "monitoring")
        with open(os.path.join(CHART, "files/prometheus-adapter-rules.yaml")) as f:
            shipped = yaml.safe_load(f)
        self.assertEqual(yaml.safe_load(config_map["data"]["config.yaml"]), shipped)
        self.assertEqual([r["name"]["as"] for r in shipped["rules"]], ["codex_turns_in_flight", "codex_queue_depth"])

    def test_rendered_rbac_equals_the_shipped_rules(self):
        prefix = "cxp-codexproxy-operator"
        rendered = {d["metadata"]["name"]: d for d in documents(render()) if d["kind"] in ("ClusterRole", "Role")}
        for name, path in ((prefix, "config/rbac/controller-clusterrole.yaml"),
                           (f"{prefix}-leader-election", "config/rbac/leader-election-role.yaml"),
                           (f"{prefix}-metrics-auth", "config/rbac/metrics-auth-clusterrole.yaml"),
                           (f"{prefix}-metrics-reader", "config/rbac/metrics-reader-clusterrole.yaml"),
                           (f"{prefix}-apiserver-endpoints", "config/rbac/apiserver-endpoints-clusterrole.yaml")):
            with open(os.path.join(SOURCE_DIR, path)) as f:
                shipped = documents(f.read())[0]
            self.assertEqual(rendered[name]["rules"], shipped["rules"], name)
            self.assertEqual(rendered[name]["kind"], shipped["kind"], name)
        self.assertEqual(set(rendered), {prefix, f"{prefix}-leader-election", f"{prefix}-metrics-auth",
                                         f"{prefix}-metrics-reader", f"{prefix}-apiserver-endpoints"})

    def test_secure_metrics_by_default_with_a_scraper_role_and_a_servicemonitor_sending_its_token(self):
        def objects(*values):
            return documents(render("--set", "serviceMonitor.enabled=true", "--api-versions",
                                    "monitoring.coreos.com/v1/ServiceMonitor", *values))

        def pick(docs, kind, name=None):
            return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))
        docs = objects()
        container = pick(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        self.assertIn("--metrics-bind-address=:8443", container["args"])
        self.assertFalse([a for a in container["args"] if a.startswith(("--metrics-secure", "--metrics-cert-dir"))])
        binding = pick(docs, "ClusterRoleBinding", "cxp-codexproxy-operator-metrics-auth")
        self.assertEqual(binding["subjects"][0]["name"], "cxp-codexproxy-operator")
        endpoint = pick(docs, "ServiceMonitor")["spec"]["endpoints"][0]
        self.assertEqual((endpoint["scheme"], endpoint["bearerTokenFile"], endpoint["tlsConfig"]),
                         ("https", "/var/run/secrets/kubernetes.io/serviceaccount/token", {"insecureSkipVerify": True}))
        # A cert-manager Secret: mounted, passed, and verified by the ServiceMonitor against its CA.
        docs = objects("--set", "metrics.certSecret=controller-metrics-tls", "--set", "metrics.readers[0].name=prom",
                       "--set", "metrics.readers[0].namespace=monitoring")
        spec = pick(docs, "Deployment")["spec"]["template"]["spec"]
        self.assertIn("--metrics-cert-dir=/etc/codexproxy/metrics-certs", spec["containers"][0]["args"])
        self.assertEqual(spec["volumes"][0]["secret"]["secretName"], "controller-metrics-tls")
        tls = pick(docs, "ServiceMonitor")["spec"]["endpoints"][0]["tlsConfig"]
        self.assertEqual(tls["ca"]["secret"], {"name": "controller-metrics-tls", "key": "ca.crt"})
        self.assertEqual(tls["serverName"], "cxp-codexproxy-operator-metrics.default.svc")
        readers = pick(docs, "ClusterRoleBinding", "cxp-codexproxy-operator-metrics-reader")
        self.assertEqual(readers["subjects"], [{"kind": "ServiceAccount", "name": "prom", "namespace": "monitoring"}])
        # The opt-out: plain HTTP, no review roles, a plain ServiceMonitor.
        docs = objects("--set", "metrics.secure=false")
        self.assertIn("--metrics-secure=false", pick(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"])
        self.assertFalse([d for d in docs if d["metadata"]["name"].endswith(("-metrics-auth", "-metrics-reader"))])
        self.assertNotIn("scheme", pick(docs, "ServiceMonitor")["spec"]["endpoints"][0])

    def test_app_version_is_the_project_version(self):
        with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
            version = next(line.split("VERSION")[1].split()[0] for line in f if line.startswith("project("))
        with open(os.path.join(CHART, "Chart.yaml")) as f:
            chart = yaml.safe_load(f.read())
        self.assertEqual(chart["appVersion"], version)

    def test_default_images_are_the_ones_images_sh_builds_and_publishes(self):
        env = {k: v for k, v in os.environ.items() if k not in ("IMAGE_REGISTRY", "IMAGE_TAG")}
        proxy, controller = subprocess.run([os.path.join(SOURCE_DIR, "scripts/images.sh"), "names"], env=env,
                                           capture_output=True, text=True, check=True).stdout.split()
        deployment = next(d for d in documents(render()) if d["kind"] == "Deployment")
        self.assertEqual(deployment["spec"]["template"]["spec"]["containers"][0]["image"], controller)
        with open(os.path.join(SOURCE_DIR, "docs/examples/codexproxy.yaml")) as f:
            self.assertEqual(yaml.safe_load(f)["spec"]["image"], proxy)

    def test_the_crd_is_a_template_equal_to_crds_kept_on_uninstall_unless_told(self):
        with open(os.path.join(SOURCE_DIR, "crds/codexproxies.codexproxy.io.yaml")) as f:
            source = yaml.safe_load(f)

        def crds(*values):
            return [d for d in documents(render(*values)) if d["kind"] == "CustomResourceDefinition"]
        crd, = crds()
        self.assertEqual(crd["spec"], source["spec"])
        self.assertEqual(crd["metadata"]["name"], source["metadata"]["name"])
        self.assertEqual(crd["metadata"]["annotations"], {"helm.sh/resource-policy": "keep"})
        self.assertEqual(crd["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm")
        self.assertNotIn("helm.sh/resource-policy", crds("--set", "crds.keep=false")[0]["metadata"].get("annotations", {}))
        self.assertEqual(crds("--set", "crds.enabled=false"), [])
        self.assertFalse(os.path.exists(os.path.join(CHART, "crds")), "crds/ and the template would both install it")

    def test_leader_election_is_on_at_any_replica_count_with_a_pdb_spread_and_a_one_at_a_time_rollout(self):
        def deployment(*values):
            return next(d for d in documents(render(*values)) if d["kind"] == "Deployment")

        def args(*values):
            return deployment(*values)["spec"]["template"]["spec"]["containers"][0]["args"]
        rendered = deployment()
        self.assertEqual(rendered["spec"]["replicas"], 2)
        self.assertEqual(rendered["spec"]["strategy"], {"type": "RollingUpdate",
                                                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
        spread = rendered["spec"]["template"]["spec"]["topologySpreadConstraints"]
        self.assertEqual([c["topologyKey"] for c in spread], ["kubernetes.io/hostname", "topology.kubernetes.io/zone"])
        self.assertTrue(all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in spread))
        self.assertEqual(spread[0]["labelSelector"]["matchLabels"], rendered["spec"]["selector"]["matchLabels"])
        env = {e["name"] for e in rendered["spec"]["template"]["spec"]["containers"][0]["env"]}
        self.assertLessEqual({"POD_NAME", "POD_NAMESPACE"}, env)
        pdb, = [d for d in documents(render()) if d["kind"] == "PodDisruptionBudget"]
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"], rendered["spec"]["selector"]["matchLabels"])
        for values in ((), ("--set", "replicaCount=1")):
            self.assertNotIn("--leader-elect=false", args(*values), values)
            self.assertIn("--leader-election-namespace=default", args(*values), values)
        self.assertIn("--leader-elect=false", args("--set", "replicaCount=1", "--set", "leaderElection.enabled=false"))
        refused = helm("template", "cxp", CHART, "--kube-version", KUBE_VERSION, "--set", "leaderElection.enabled=false",
                       check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("leaderElection.enabled=false with replicaCount > 1", refused.stderr)
        custom = deployment("--set", "topologySpreadConstraints[0].maxSkew=2", "--set",
                            "topologySpreadConstraints[0].topologyKey=rack", "--set",
                            "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule")
        spread = custom["spec"]["template"]["spec"]["topologySpreadConstraints"]
        self.assertEqual([(c["topologyKey"], c["labelSelector"]["matchLabels"]) for c in spread],
                         [("rack", rendered["spec"]["selector"]["matchLabels"])])
        self.assertNotIn("topologySpreadConstraints",
                         deployment("--set", "spreadAcrossNodes=false")["spec"]["template"]["spec"])
        self.assertEqual([d for d in documents(render("--set", "podDisruptionBudget.enabled=false"))
                          if d["kind"] == "PodDisruptionBudget"], [])

    def test_the_kubernetes_floor_is_what_the_chart_needs(self):
        # 1.30: the default admission policy's API (admissionregistration.k8s.io/v1) and the pod
        # name in bound tokens; older is refused by Chart.yaml's kubeVersion, naming it.
        refused = helm("template", "cxp", CHART, "--kube-version", "1.29.15", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("kubeVersion: >=1.30.0-0", refused.stderr)
        for version in ("1.30.0", "1.35.0"):  # the oldest supported and the newest released
            kinds = {d["kind"] for d in documents(helm("template", "cxp", CHART, "--kube-version", version).stdout)}
            self.assertLessEqual({"CustomResourceDefinition", "Deployment", "PodDisruptionBudget",
                                  "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, kinds, version)

    def test_monitoring_objects_render_only_when_enabled_and_their_api_exists(self):
        enabled = ("--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true")
        kinds = {d["kind"] for d in documents(render(*enabled))}
        self.assertFalse({"ServiceMonitor", "PrometheusRule"} & kinds)
        kinds = {d["kind"] for d in documents(render(*enabled, "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
                                                    "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"))}
        self.assertTrue({"ServiceMonitor", "PrometheusRule"} <= kinds)

    def test_the_rendered_prometheus_rule_passes_promtool(self):
        text = render("--set", "prometheusRule.enabled=true", "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
                      "--show-only", "templates/prometheusrule.yaml")
        rule = documents(text)[0]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            json.dump(rule["spec"], f)  # JSON is YAML
        try:
            result = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("SUCCESS", result.stdout)
        finally:
            os.unlink(f.name)

    def test_every_alert_gets_a_runbook_url_under_the_configured_base(self):
        def alerts(*values):
            text = render("--set", "prometheusRule.enabled=true", *values, "--api-versions",
                          "monitoring.coreos.com/v1/PrometheusRule", "--show-only", "templates/prometheusrule.yaml")
            return [r for g in documents(text)[0]["spec"]["groups"] for r in g["rules"] if "alert" in r]
        for values, base in (((), "https://github.com/codexproxy/codexproxy/blob/main/"),
                             (("--set", "prometheusRule.runbookBaseURL=https://wiki.example/ops/"),
                              "https://wiki.example/ops/")):
            rendered = alerts(*values)
            self.assertGreater(len(rendered), 0)
            for rule in rendered:
                annotations = rule["annotations"]
                self.assertEqual(annotations["runbook_url"], base + annotations["runbook"], rule["alert"])

    def test_invalid_values_are_refused_by_the_schema_with_a_clear_message(self):
        for values, fragment in ((("--set", "replicaCount=-1"), "/replicaCount"),
                                 (("--set", "image.pullPolicy=Sometimes"), "/image/pullPolicy"),
                                 (("--set", "logLevel=loud"), "/logLevel"),
                                 (("--set", "metrics.port=70000"), "/metrics/port"),
                                 (("--set", "prometheusRule.runbookBaseURL=docs"), "/prometheusRule/runbookBaseURL"),
                                 (("--set", "replicaCont=2"), "additional properties 'replicaCont' not allowed")):
            result = helm("template", "cxp", CHART, "--kube-version", KUBE_VERSION, *values, check=False)
            self.assertNotEqual(result.returncode, 0, values)
            self.assertIn(fragment, result.stderr)

    def test_values_are_documented_in_the_install_guide(self):
        with open(os.path.join(CHART, "values.yaml")) as f:
            values = yaml.safe_load(f.read())
        with open(os.path.join(SOURCE_DIR, "docs/install.md")) as f:
            guide = f.read()

        def keys(prefix, node):
            for key, value in node.items():
                path = f"{prefix}{key}"
                if isinstance(value, dict) and value and key not in ("resources", "podSecurityContext", "securityContext", "strategy"):
                    yield from keys(path + ".", value)
                else:
                    yield path
        missing = [k for k in keys("", values) if f"`{k}`" not in guide]
        self.assertEqual(missing, [], "values missing from docs/install.md")


class ChartInstallTest(KubeTestCase):
    @classmethod
    def setUpClass(cls):
        install_crd_and_cluster_role()

    def test_install_reconcile_upgrade_uninstall_with_only_the_charts_rbac(self):
        release = f"cxp-{uuid.uuid4().hex[:6]}"
        ns = self.namespace
        self.addCleanup(helm, "uninstall", release, "-n", ns, "--wait", check=False)
        # every rendered manifest is accepted by the API server
        manifest = render("--namespace", ns, "--set", "replicaCount=2")
        dry = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=manifest)
        self.assertIn("(server dry run)", dry.stdout)
        # The plane's CRD is shared by every test (applied with kubectl): this release leaves it alone.
        helm("install", release, CHART, "-n", ns, "--set", f"watchNamespace={ns}", "--set", "crds.enabled=false",
             "--wait=false")
        sa = f"{release}-codexproxy-operator"
        deployment = kubectl_json("get", "deployment", sa, "-n", ns)
        self.assertEqual(deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm")
        self.assertEqual(deployment["spec"]["template"]["spec"]["serviceAccountName"], sa)
        # the admission policy that keeps each pod to its own heartbeat Lease, bound
        policy = kubectl_json("get", "validatingadmissionpolicy", f"{sa}-pod-leases")
        self.assertEqual(policy["spec"]["paramKind"]["kind"], "CodexProxy")
        binding = kubectl_json("get", "validatingadmissionpolicybinding", f"{sa}-pod-leases")
        self.assertEqual(binding["spec"]["policyName"], f"{sa}-pod-leases")
        # The controller, as a local process with the chart's ServiceAccount credentials
        kubeconfig = sa_kubeconfig(ns, sa, os.path.join(tempfile.mkdtemp(prefix="cxp-helm-"), "kubeconfig"))
        controller = Controller(kubeconfig, ns, leader_elect=True)
        self.addCleanup(controller.close)
        kubectl("create", "secret", "generic", "openai", "-n", ns, "--from-literal=apiKey=sk-e2e-0123456789")
        kubectl("apply", "-n", ns, "-f", os.path.join(SOURCE_DIR, "docs/examples/codexproxy.yaml"))
        for kind, name in (("configmap", "demo-settings"), ("serviceaccount", "demo"), ("role", "demo"),
                           ("rolebinding", "demo"), ("service", "demo"), ("poddisruptionbudget", "demo"),
                           ("deployment", "demo")):
            wait_until(lambda: kubectl("get", kind, name, "-n", ns, check=False).returncode == 0, 30, interval=0.2,
                       message=f"{kind}/{name}")
        wait_until(lambda: kubectl_json("get", "cxp", "demo", "-n", ns).get("status", {}).get("observedGeneration") == 1,
                   30, interval=0.2, message="status written")
        self.assertEqual(controller.metric("rest_client_requests_total", code="403"), 0, "the chart's RBAC is short")
        self.assertEqual(controller.metric("leader_election_master_status"), 1)
        # upgrade with changed values
        helm("upgrade", release, CHART, "-n", ns, "--set", f"watchNamespace={ns}", "--set", "crds.enabled=false",
             "--set", "replicaCount=3", "--set", "logLevel=debug", "--wait=false")
        upgraded = kubectl_json("get", "deployment", sa, "-n", ns)
        self.assertEqual(upgraded["spec"]["replicas"], 3)
        args = upgraded["spec"]["template"]["spec"]["containers"][0]["args"]
        self.assertIn(f"--leader-election-namespace={ns}", args)
        self.assertIn("--log-level=debug", args)
        # uninstall: the CodexProxy (our CRD's object) and its Secret are the user's; remove them,
        # then the release
        controller.stop()
        kubectl("delete", "cxp", "demo", "-n", ns)
        kubectl("delete", "secret", "openai", "-n", ns)
        kubectl("delete", "lease", "codexproxy-controller-leader", "-n", ns, check=False)
        helm("uninstall", release, "-n", ns, "--wait")
        wait_until(lambda: self.leftovers(ns) == [], 60, interval=0.5, message="no namespaced object left")
        self.assertEqual(kubectl("get", "clusterrole", sa, check=False).returncode, 1)
        self.assertEqual(kubectl("get", "validatingadmissionpolicy", f"{sa}-pod-leases", check=False).returncode, 1)
        self.assertEqual(kubectl("get", "crd", "codexproxies.codexproxy.io").returncode, 0, "the CRD is kept")

    def leftovers(self, ns):
        kinds = ("deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,configmaps,secrets,leases,"
                 "poddisruptionbudgets")
        items = kubectl_json("get", kinds, "-n", ns)["items"]
        defaults = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}
        return [f"{i['kind']}/{i['metadata']['name']}" for i in items
                if (i["kind"], i["metadata"]["name"]) not in defaults]


if __name__ == "__main__":
    unittest.main()
