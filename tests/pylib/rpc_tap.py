#!/usr/bin/env python3
"""Sits between codex-proxy and its worker and records every JSON-RPC line both ways.

    rpc_tap.py LOG WORKER [ARGS...]

codex-proxy runs `$CODEX_BIN app-server -c …`; a two-line shell wrapper (see `tap_wrapper`) makes
this tap the CODEX_BIN. Each line the proxy writes is appended to LOG as
{"direction":"to_worker","line":…} before it is forwarded, each line the worker prints as
{"direction":"from_worker","line":…}. stderr, exit code and signals pass through (the tap and the
worker share the proxy's process group for the worker)."""
import json
import os
import subprocess
import sys
import threading


def tap_wrapper(directory, log, worker):
    """Writes an executable that runs `worker` behind the tap; returns its path."""
    path = os.path.join(directory, "tapped-worker")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec "{sys.executable}" "{os.path.abspath(__file__)}" "{log}" "{worker}" "$@"\n')
    os.chmod(path, 0o755)
    return path


def read_tap(log):
    """The recorded lines as (direction, parsed JSON) pairs; unparsable lines are skipped."""
    out = []
    with open(log) as f:
        for raw in f:
            entry = json.loads(raw)
            try:
                out.append((entry["direction"], json.loads(entry["line"])))
            except ValueError:
                pass
    return out


def main():
    log_path, worker, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    child = subprocess.Popen([worker, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    lock = threading.Lock()
    log = open(log_path, "a")

    def record(direction, line):
        with lock:
            log.write(json.dumps({"direction": direction, "line": line.decode("utf-8", "replace").rstrip("\n")}) + "\n")
            log.flush()

    def upstream():
        for line in sys.stdin.buffer:
            record("to_worker", line)
            try:
                child.stdin.write(line)
                child.stdin.flush()
            except BrokenPipeError:
                break
        try:
            child.stdin.close()
        except BrokenPipeError:
            pass

    threading.Thread(target=upstream, daemon=True).start()
    out = sys.stdout.buffer
    for line in child.stdout:
        record("from_worker", line)
        out.write(line)
        out.flush()
    sys.exit(child.wait() if child.wait() >= 0 else 128 - child.returncode)


if __name__ == "__main__":
    main()
