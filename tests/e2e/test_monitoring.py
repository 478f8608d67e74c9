"""Proxy metrics in Prometheus Operator clusters: the ServiceMonitor the controller keeps per
CodexProxy, checked against the Prometheus Operator's own CRDs (scripts/cluster/install.sh fetches
them, pinned, from its Go module), and the condition that says when the cluster lacks the API."""
import json
import os
import time
import unittest

from controller_harness import ControllerTestCase
from kube import kubectl, tools_bin, wait_until
from test_helm import render

CRD_NAMES = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")


def monitoring_crds():
    folder = os.path.join(os.path.dirname(tools_bin()), "crds")
    return [os.path.join(folder, f"monitoring.coreos.com_{name.split('.')[0]}.yaml") for name in CRD_NAMES]


class MonitoringTest(ControllerTestCase):
    MONITORED = {"tokenSecret": {"name": "scrape"},
                 "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kps"}}}

    def install_monitoring_api(self):
        for path in monitoring_crds():
            kubectl("apply", "--server-side", "-f", path)
        self.addCleanup(kubectl, "delete", "crd", *CRD_NAMES, "--ignore-not-found", "--wait=false", check=False)
        for name in CRD_NAMES:
            kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")

    def condition_reason(self, name, condition_type):
        condition = self.condition(name, condition_type)
        return condition and condition["reason"]

    def test_without_the_monitoring_api_the_condition_says_so_and_nothing_loops(self):
        controller = self.start_controller()
        kubectl("create", "secret", "generic", "scrape", "-n", self.namespace, "--from-literal=metricsToken=t0ken-0123")
        self.apply_proxy("plain", metrics=self.MONITORED)
        wait_until(lambda: self.condition_reason("plain", "ServiceMonitor") == "APIMissing", 30, interval=0.2,
                   message="ServiceMonitor APIMissing")
        self.assertIn("monitoring.coreos.com/v1", self.condition("plain", "ServiceMonitor")["message"])
        self.assertNotEqual(self.get("cxp", "plain")["status"]["phase"], "Degraded")
        wait_until(lambda: self.get("deployment", "plain"), 30, interval=0.2, message="the Deployment")
        self.assertTrue(controller.find_event("monitoring_api_absent"))
        reconciles = controller.metric("controller_runtime_reconcile_total")
        time.sleep(5)  # the measured interval: an error loop would reconcile many times in it
        self.assertLessEqual(controller.metric("controller_runtime_reconcile_total") - reconciles, 3)

    def test_a_servicemonitor_follows_the_spec_and_is_valid_for_the_prometheus_operator(self):
        self.install_monitoring_api()
        controller = self.start_controller()
        kubectl("create", "secret", "generic", "scrape", "-n", self.namespace, "--from-literal=metricsToken=t0ken-0123")
        self.apply_proxy("watched", metrics=self.MONITORED)
        monitor = wait_until(lambda: self.get("servicemonitor", "watched", check=False), 30, interval=0.2,
                             message="the ServiceMonitor")
        self.assertTrue(controller.find_event("monitoring_api_found"))
        proxy = self.get("cxp", "watched")
        self.assertEqual(monitor["metadata"]["ownerReferences"][0]["uid"], proxy["metadata"]["uid"])
        self.assertEqual(monitor["metadata"]["labels"]["release"], "kps")
        endpoint = monitor["spec"]["endpoints"][0]
        self.assertEqual((endpoint["port"], endpoint["path"], endpoint["interval"]), ("ops", "/metrics", "15s"))
        self.assertEqual(endpoint["authorization"]["credentials"], {"name": "scrape", "key": "metricsToken"})
        self.assertEqual(endpoint["relabelings"][0]["targetLabel"], "codexproxy")
        # the ServiceMonitor selects the Service, which carries the label the relabelling reads
        service = self.get("service", "watched")
        for key, value in monitor["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(service["metadata"]["labels"][key], value)
        self.assertEqual(service["metadata"]["labels"]["codexproxy.io/name"], "watched")
        condition = wait_until(lambda: (lambda c: c if c and c["status"] == "True" else None)(
            self.condition("watched", "ServiceMonitor")), 30, interval=0.2, message="ServiceMonitor True")
        self.assertEqual(condition["reason"], "Created")
        # the pods get the token, so the CodexProxy is no longer reported open on /metrics
        pod = self.get("deployment", "watched")["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        # from the same Secret the ServiceMonitor reads, as a file the pods re-read on rotation
        self.assertEqual(env["PROXY_METRICS_TOKEN_FILE"], "/var/run/secrets/codexproxy/metrics-token/metrics-token")
        volume = next(v for v in pod["volumes"] if v["name"] == "metrics-token")
        self.assertEqual((volume["secret"]["secretName"], volume["secret"]["items"][0]["key"]), ("scrape", "metricsToken"))
        wait_until(lambda: "spec.metrics" not in self.condition("watched", "InsecureConfig")["message"], 30,
                   interval=0.2, message="metrics no longer reported insecure")
        # a change is applied live; turning it off deletes it
        kubectl("patch", "cxp", "watched", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"metrics": {"serviceMonitor": {"interval": "1m"}}}}))
        wait_until(lambda: self.get("servicemonitor", "watched")["spec"]["endpoints"][0]["interval"] == "1m", 30,
                   interval=0.2, message="interval 1m")
        kubectl("patch", "cxp", "watched", "-n", self.namespace, "--type", "merge",
                "-p", json.dumps({"spec": {"metrics": {"serviceMonitor": {"enabled": False}}}}))
        wait_until(lambda: self.get("servicemonitor", "watched", check=False) is None, 30, interval=0.2,
                   message="the ServiceMonitor deleted")
        wait_until(lambda: self.condition_reason("watched", "ServiceMonitor") == "NotRequested", 30, interval=0.2,
                   message="ServiceMonitor NotRequested")
        # someone else's ServiceMonitor of the same name is left alone
        kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "watched"}, "spec": {"selector": {}, "endpoints": [{"port": "web"}]}}))
        kubectl("annotate", "cxp", "watched", "-n", self.namespace, "example.com/touch=1")
        time.sleep(2)  # the measured interval: a reconcile would delete it within it
        self.assertIsNotNone(self.get("servicemonitor", "watched", check=False))

    def test_the_charts_monitoring_objects_are_valid_for_the_prometheus_operator(self):
        self.install_monitoring_api()
        manifest = render("--namespace", self.namespace, "--set", "serviceMonitor.enabled=true",
                          "--set", "prometheusRule.enabled=true",
                          "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
                          "--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
        dry = kubectl("apply", "--dry-run=server", "-n", self.namespace, "-f", "-", input=manifest)
        self.assertIn("servicemonitor.monitoring.coreos.com", dry.stdout)
        self.assertIn("prometheusrule.monitoring.coreos.com", dry.stdout)


if __name__ == "__main__":
    unittest.main()
