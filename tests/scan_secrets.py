#!/usr/bin/env python3
"""The suite's last test: no secret a test handed the product appears in anything the product wrote.

    scan_secrets.py ARTIFACTS_DIR [ARTIFACTS_DIR ...]

Each folder holds the logs and trace files of a test run (kept by tests/pylib/artifacts.py: proxy
logs and stderr, trace buffers, controller logs) and `.secrets`, the secret values the tests gave
(API keys, admin and metrics tokens, the model key, Secret data, ServiceAccount tokens). Every file
is searched for every secret, as bytes and as its JSON-escaped form. Exits 1 naming each file and
line that holds one (the secret itself shown only by its first 4 characters), or if there was
nothing to scan (a scan of nothing proves nothing)."""
import json
import os
import sys

SECRETS_FILE = ".secrets"


def load_secrets(folders):
    secrets = set()
    for folder in folders:
        path = os.path.join(folder, SECRETS_FILE)
        if os.path.exists(path):
            with open(path) as f:
                secrets |= {line.strip() for line in f if line.strip()}
    return sorted(secrets)


def files_in(folders):
    for folder in folders:
        for directory, _, names in os.walk(folder):
            for name in sorted(names):
                if name != SECRETS_FILE:
                    yield os.path.join(directory, name)


def scan(folders):
    secrets = load_secrets(folders)
    needles = {}
    for secret in secrets:
        needles[secret.encode()] = secret
        needles[json.dumps(secret)[1:-1].encode()] = secret
    files, hits = 0, []
    for path in files_in(folders):
        files += 1
        with open(path, "rb") as f:
            data = f.read()
        for needle, secret in needles.items():
            at = data.find(needle)
            if at >= 0:
                line = data.count(b"\n", 0, at) + 1
                hits.append(f"{path}:{line}: holds the test secret {secret[:4]}… ({len(secret)} characters)")
    return secrets, files, hits


def main():
    folders = [f for f in sys.argv[1:] if os.path.isdir(f)]
    secrets, files, hits = scan(folders)
    print(f"scanned {files} files of {', '.join(folders) or 'nothing'} for {len(secrets)} secrets")
    if not files or not secrets:
        print("nothing to scan: run the test suite first (scripts/test.sh)", file=sys.stderr)
        return 1
    for hit in sorted(set(hits)):
        print(hit, file=sys.stderr)
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
