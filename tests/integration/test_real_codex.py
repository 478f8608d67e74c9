"""The real Codex CLI as the worker: its configuration (CODEX_HOME, provider, overrides, auth.json),
what it may reach on the network, and a clean stop."""
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from harness import MODEL_KEY, REAL_CODEX, SOURCE_DIR, ProxyTestCase, Proxy, pid_alive, wait_until
import artifacts  # noqa: E402  (tests/pylib)


def chat(proxy, content):
    return proxy.request("POST", "/v1/chat/completions",
                         body=json.dumps({"messages": [{"role": "user", "content": content}]}),
                         headers={"Content-Type": "application/json"}, timeout=30)


class RealCodexTest(ProxyTestCase):
    def test_real_codex_app_server_completes_the_handshake_and_stops_cleanly(self):
        self.assertTrue(os.access(REAL_CODEX, os.X_OK), f"{REAL_CODEX} missing: run scripts/setup.sh")
        proxy = self.start_real_proxy()
        body = proxy.readyz()[1]
        self.assertEqual(body["worker"]["state"], "ready")
        self.assertEqual(body["worker"]["restarts_total"], 0)
        self.assertIsNotNone(body["worker"]["handshake_ms"])
        pid = body["worker"]["pid"]
        proxy.signal(signal.SIGTERM)
        self.assertEqual(proxy.wait_exit(timeout=20), 0)
        wait_until(lambda: not pid_alive(pid), 5, message="the codex process to exit")
        # Nothing of the worker's process group is left behind.
        wait_until(lambda: not [p for p in os.listdir("/proc")
                                if p.isdigit() and _pgid(int(p)) == pid and pid_alive(int(p))],
                   5, message="every process of the worker's group to exit")

    def test_healthz_and_metrics_say_what_is_running_the_proxy_and_its_codex_version(self):
        with open(os.path.join(SOURCE_DIR, "tests/node/package.json")) as f:
            pinned = json.load(f)["dependencies"]["@openai/codex"]
        proxy = self.start_real_proxy()
        status, body = proxy.get_json("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body["codex_version"], pinned)
        self.assertRegex(body["version"], r"^\d+\.\d+\.\d+")
        self.assertGreaterEqual(body["uptime_s"], 0)
        scrape = proxy.request("GET", "/metrics")[2].decode()
        self.assertIn(f'codex_proxy_build_info{{codex_version="{pinned}",version="{body["version"]}"}} 1', scrape)
        for series in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                       "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"):
            self.assertRegex(scrape, rf"(?m)^{series} [0-9.e+]+$")
        started = float(re.search(r"(?m)^process_start_time_seconds (\S+)$", scrape).group(1))
        self.assertLess(abs(started - time.time()), 300)

    def test_codex_home_is_created_and_its_config_toml_and_the_overrides_apply(self):
        root = tempfile.TemporaryDirectory(prefix="cxp-home-root-")
        self.addCleanup(root.cleanup)
        home = os.path.join(root.name, "not", "yet", "there")
        proxy = self.start_real_proxy(env={"CODEX_HOME": home})
        self.assertTrue(os.path.isdir(home))
        self.assertEqual(stat.S_IMODE(os.stat(home).st_mode), 0o700)
        status, _, raw = chat(proxy, "[[reply:ok]]")
        self.assertEqual(status, 200, raw)
        self.assertNotIn("effort", json.dumps(self.model.requests()[-1]["body"].get("reasoning")))
        proxy.close()

        # codex's own config.toml in CODEX_HOME is honoured; an override of the same key wins.
        with open(os.path.join(home, "config.toml"), "w") as f:
            f.write('model_reasoning_effort = "low"\n')
        proxy = self.start_real_proxy(env={"CODEX_HOME": home})
        chat(proxy, "[[reply:ok]]")
        self.assertEqual(self.model.requests()[-1]["body"]["reasoning"]["effort"], "low")
        proxy.close()
        proxy = self.start_real_proxy(env={"CODEX_HOME": home, "WORKER_CONFIG_OVERRIDES":
                                           "model_reasoning_effort=high\n"
                                           "model_providers.codexproxy.request_max_retries=0"})
        chat(proxy, "[[reply:ok]]")
        self.assertEqual(self.model.requests()[-1]["body"]["reasoning"]["effort"], "high")

    def test_a_chatgpt_auth_json_is_copied_private_into_codex_home_and_never_logged(self):
        root = tempfile.TemporaryDirectory(prefix="cxp-auth-")
        self.addCleanup(root.cleanup)
        source = os.path.join(root.name, "mounted-auth.json")
        artifacts.note_secrets(["eyJ-secret-access-token-42"])
        with open(source, "w") as f:
            json.dump({"auth_mode": "chatgpt", "tokens": {"access_token": "eyJ-secret-access-token-42"}}, f)
        os.chmod(source, 0o444)
        home = os.path.join(root.name, "home")
        proxy = self.start_real_proxy(env={"CODEX_HOME": home, "WORKER_AUTH_JSON": source})
        copied = os.path.join(home, "auth.json")
        self.assertEqual(stat.S_IMODE(os.stat(copied).st_mode), 0o600)
        with open(copied) as f:
            self.assertEqual(json.load(f)["tokens"]["access_token"], "eyJ-secret-access-token-42")
        self.assertNotIn("eyJ-secret-access-token-42", proxy.raw_log())

    def test_bad_worker_settings_stop_startup_naming_the_setting(self):
        locked = tempfile.TemporaryDirectory(prefix="cxp-locked-")
        self.addCleanup(locked.cleanup)
        os.chmod(locked.name, 0o500)
        scratch = tempfile.TemporaryDirectory(prefix="cxp-scratch-")
        self.addCleanup(scratch.cleanup)
        cases = {
            "WORKER_PROVIDER_BASE_URL": {"WORKER_PROVIDER_BASE_URL": "api.example.com/v1"},
            "WORKER_PROVIDER_WIRE_API": {"WORKER_PROVIDER_WIRE_API": "chat"},
            "WORKER_CONFIG_OVERRIDES": {"WORKER_CONFIG_OVERRIDES": "model_provider"},
            "WORKER_AUTH_JSON": {"CODEX_HOME": os.path.join(scratch.name, "home"),
                                 "WORKER_AUTH_JSON": "/nonexistent/auth.json"},
        }
        if os.geteuid() != 0:  # root writes anywhere
            cases["CODEX_HOME"] = {"CODEX_HOME": os.path.join(locked.name, "home")}
        for name, env in cases.items():
            with self.subTest(setting=name):
                proxy = Proxy(env=env, codex_bin=REAL_CODEX, wait_listening=False)
                self.addCleanup(proxy.close)
                self.assertEqual(proxy.wait_exit(timeout=10), 2)
                self.assertIn(name, proxy.stderr())
                self.assertEqual(proxy.find_event("config_invalid")["error_code"], "config_invalid")

    @unittest.skipUnless(subprocess.run(["which", "strace"], capture_output=True).returncode == 0,
                         "strace is installed by scripts/setup.sh")
    def test_the_worker_connects_to_nothing_but_its_model(self):
        wrapper, folder = self.worker_wrapper(
            f'exec strace -f -qq -e trace=connect -o "$(dirname "$0")/connect.trace" {REAL_CODEX} "$@"\n')
        trace = os.path.join(folder, "connect.trace")
        proxy = self.start_real_proxy(env={"CODEX_BIN": wrapper})
        status, _, raw = chat(proxy, "[[reply:fine]]")
        self.assertEqual(status, 200, raw)
        proxy.signal(signal.SIGTERM)
        proxy.wait_exit(timeout=20)
        with open(trace) as f:
            inet = [line for line in f if "connect(" in line and "AF_INET" in line]
        self.assertTrue(inet, "no connection to the model was traced")
        model = f'sin_port=htons({self.model.port}), sin_addr=inet_addr("127.0.0.1")'
        self.assertEqual([line for line in inet if model not in line], [],
                         "the worker connected somewhere other than its model (plugin sync, analytics, DNS?)")
        self.assertNotIn(MODEL_KEY, proxy.raw_log())


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


if __name__ == "__main__":
    unittest.main(verbosity=2)
