"""What the product wrote during the suite, kept for its last test (tests/scan_secrets.py), which
searches every kept log and trace file for every secret the tests handed the product.

The tests run codex-proxy, the controller and the pods in temporary folders removed afterwards;
when CXP_ARTIFACTS_DIR is set (CTest sets it to <build>/test-artifacts), `keep` copies their logs and
trace files there first, and `note_secrets` records the secret values a test gave them (API keys,
tokens, Secret data) in `SECRETS_FILE` of that folder. Without CXP_ARTIFACTS_DIR both do nothing.
"""
import itertools
import os
import re
import shutil
import tempfile
import uuid

ARTIFACTS_DIR = os.environ.get("CXP_ARTIFACTS_DIR")
SECRETS_FILE = ".secrets"
# A secret shorter than this is a placeholder ("x"), not something a scan can tell from prose.
MIN_SECRET_LENGTH = 8
# The whole suite writes a few MB of logs; one runaway file must not fill the disk.
MAX_KEPT_BYTES = 16 << 20
# Names of settings whose values are credentials (the proxy's Redactor knows the same names).
CREDENTIAL_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_?KEY|CREDENTIALS?)$", re.IGNORECASE)
_counter = itertools.count()


def note_secrets(values):
    """Records secret values for the scan (one per line, short ones skipped)."""
    if not ARTIFACTS_DIR:
        return
    values = [v for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_LENGTH and "\n" not in v]
    if not values:
        return
    os.makedirs(ARTIFACTS_DIR, exist_ok=True)
    with open(os.path.join(ARTIFACTS_DIR, SECRETS_FILE), "a") as f:
        f.write("".join(v.strip() + "\n" for v in values))


def note_env_secrets(env):
    """Records the values of an environment's credential settings, including the model key the
    worker reads from the variable WORKER_PROVIDER_ENV_KEY names."""
    names = {k for k in env if CREDENTIAL_NAME.search(k)}
    if env.get("WORKER_PROVIDER_ENV_KEY"):
        names.add(env["WORKER_PROVIDER_ENV_KEY"])
    note_secrets([env[k] for k in sorted(names) if k in env])


def note_kubeconfig_token(path):
    """Records the bearer token of a kubeconfig (a ServiceAccount's, handed to pods or the controller)."""
    try:
        with open(path) as f:
            note_secrets(re.findall(r"^\s*token:\s*(\S+)\s*$", f.read(), re.M))
    except OSError:
        pass


def keep(kind, paths):
    """Copies the files in `paths` (missing ones skipped) into a new folder of ARTIFACTS_DIR named
    after `kind`, each truncated to MAX_KEPT_BYTES."""
    if not ARTIFACTS_DIR:
        return
    existing = [p for p in paths if os.path.isfile(p)]
    if not existing:
        return
    target = os.path.join(ARTIFACTS_DIR, f"{kind}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}")
    os.makedirs(target, exist_ok=True)
    for index, path in enumerate(existing):
        name = f"{index}-{os.path.basename(path)}"
        with open(path, "rb") as source, open(os.path.join(target, name), "wb") as out:
            shutil.copyfileobj(_limited(source, MAX_KEPT_BYTES), out)


def keep_text(kind, name, text):
    """Keeps `text` (a container's log read through podman or kubectl) as the file `name`."""
    if not ARTIFACTS_DIR:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        keep(kind, [path])


def trace_files(folder):
    """Every file under a folder named like a trace buffer (`trace-buffer`, `trace`) in `folder`."""
    found = []
    for directory, _, files in os.walk(folder):
        parts = os.path.relpath(directory, folder).split(os.sep)
        if any(part.startswith("trace") for part in parts):
            found += [os.path.join(directory, f) for f in files]
    return found


class _limited:
    def __init__(self, f, limit):
        self.f, self.left = f, limit

    def read(self, size=-1):
        if self.left <= 0:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data
