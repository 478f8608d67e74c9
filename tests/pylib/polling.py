"""Polling helper shared by the Python test tiers: tests wait on conditions, never sleep and hope."""
import subprocess
import time


def wait_until(predicate, timeout, interval=0.005, message="condition"):
    """Polls `predicate` until it returns a truthy value (returned); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


def stop_process(process, grace=10):
    """Stops a child process as Kubernetes stops a container: SIGTERM, SIGKILL after `grace` s."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
