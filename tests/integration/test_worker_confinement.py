"""The worker is a model, not a shell on the pod: codex's own tools are off by default, the worker's
environment is an allow-list, and the proxy's secrets stay out of reach of anything the model runs —
proven from what reached the (scripted) model."""
import json
import os
import subprocess
import unittest

from harness import MODEL_KEY, ProxyTestCase

API_KEY = "sk-proxy-api-key-confined-0123456789"
ADMIN_TOKEN = "admin-token-confined-0123456789"
METRICS_TOKEN = "metrics-token-confined-0123456789"
SECRETS = {"PROXY_API_KEY": API_KEY, "PROXY_ADMIN_TOKEN": ADMIN_TOKEN, "PROXY_METRICS_TOKEN": METRICS_TOKEN,
           "KUBERNETES_SERVICE_HOST": "10.96.0.1", "POD_NAMESPACE_SECRET_HINT": "x"}
BUILTIN = {"exec_command", "write_stdin", "view_image", "multi_agent_v1", "get_goal", "create_goal",
           "update_goal", "web_search", "shell", "apply_patch"}
# What a hostile prompt would have the model run: its environment, its parent's, every process's.
SNOOP = "env; echo; cat /proc/self/environ; echo; cat /proc/$PPID/environ; echo; " \
        "for p in /proc/[0-9]*; do tr '\\\\0' '\\\\n' < $p/environ; done 2>/dev/null; " \
        "cat /var/run/secrets/kubernetes.io/serviceaccount/token 2>&1"


def ask(proxy, prompt, timeout=60):
    return proxy.request("POST", "/v1/chat/completions",
                         body=json.dumps({"messages": [{"role": "user", "content": prompt}]}),
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
                         timeout=timeout)


def tree(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return out


class ConfinementTest(ProxyTestCase):
    def seen_by_model(self):
        """Everything the model read (the request bodies; the provider key travels in a header)."""
        return json.dumps([r["body"] for r in self.model.requests()])

    def offered_tools(self):
        return {t.get("name") or t.get("type") for r in self.model.requests() for t in r["body"].get("tools", [])}

    def test_by_default_the_model_is_offered_no_builtin_tool_and_a_shell_call_runs_nothing(self):
        proxy = self.start_real_proxy(env=SECRETS)
        status, _, raw = ask(proxy, '[[call:exec_command:{"cmd":"env"}]]')
        self.assertEqual(status, 200, raw)
        self.assertEqual(self.offered_tools() & BUILTIN, set())
        # The call went nowhere: what came back to the model is a refusal, not an environment.
        outputs = [i for r in self.model.requests() for i in r["body"]["input"] if i.get("type") == "function_call_output"]
        self.assertTrue(outputs)
        self.assertNotIn("PATH=", json.dumps(outputs))
        for secret in (API_KEY, ADMIN_TOKEN, METRICS_TOKEN, MODEL_KEY):
            self.assertNotIn(secret, self.seen_by_model())

    def test_the_workers_environment_is_an_allow_list(self):
        proxy = self.start_real_proxy(env=SECRETS)
        worker = proxy.readyz()[1]["worker"]["pid"]
        for pid in tree(worker):
            with open(f"/proc/{pid}/environ", "rb") as f:
                names = {e.split(b"=", 1)[0].decode() for e in f.read().split(b"\0") if e}
            self.assertEqual({n for n in names if n.startswith(("PROXY_", "KUBERNETES_", "POD_", "WORKER_"))}, set(),
                             f"pid {pid}")
            self.assertIn("CODEX_HOME", names)

    def test_request_user_input_is_refused_and_the_turn_goes_on(self):
        proxy = self.start_real_proxy(env=SECRETS)
        status, _, raw = ask(proxy, '[[call:request_user_input:{"questions":[{"id":"q","header":"Q",'
                                    '"question":"which?","options":[{"label":"a","description":"a"}]}]}]]', timeout=30)
        self.assertEqual(status, 200, raw)
        self.assertIn("The tool said", json.loads(raw)["choices"][0]["message"]["content"])

    @unittest.skipUnless(os.geteuid() == 0, "runs the proxy as an unprivileged user, which needs root to start")
    def test_other_processes_of_the_pods_user_cannot_read_the_proxys_environment(self):
        # The worker, and anything a model runs outside codex's sandbox, is such a process.
        proxy = self.start_real_proxy(env=SECRETS, run_as=65534)
        snoop = subprocess.run(["cat", f"/proc/{proxy.process.pid}/environ"], capture_output=True,
                               user=65534, group=65534, extra_groups=[])
        self.assertNotEqual(snoop.returncode, 0)
        self.assertNotIn(API_KEY.encode(), snoop.stdout)
        worker = proxy.readyz()[1]["worker"]["pid"]
        readable = subprocess.run(["cat", f"/proc/{worker}/environ"], capture_output=True,
                                  user=65534, group=65534, extra_groups=[])
        self.assertEqual(readable.returncode, 0, "the check itself works: the worker's own is readable")
        self.assertNotIn(API_KEY.encode(), readable.stdout)

    @unittest.skipUnless(os.geteuid() == 0, "runs the proxy as an unprivileged user, which needs root to start")
    def test_with_builtin_tools_the_models_commands_still_reach_no_proxy_secret(self):
        # As a pod runs it: an unprivileged user. Root could read every process's memory.
        proxy = self.start_real_proxy(env={**SECRETS, "WORKER_BUILTIN_TOOLS": "true"}, run_as=65534)
        status, _, raw = ask(proxy, "[[call:exec_command:" + json.dumps({"cmd": SNOOP, "login": False}) + "]]")
        self.assertEqual(status, 200, raw)
        self.assertIn("exec_command", self.offered_tools())
        outputs = json.dumps([i for r in self.model.requests() for i in r["body"]["input"]
                              if i.get("type") == "function_call_output"])
        self.assertIn("PATH=", outputs, "the command ran")
        for secret in (API_KEY, ADMIN_TOKEN, METRICS_TOKEN):
            self.assertNotIn(secret, outputs)
        self.assertNotIn("KUBERNETES_SERVICE_HOST", outputs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
