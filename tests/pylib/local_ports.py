"""Loopback ports for processes the tests start with a fixed port in their configuration."""
import socket


def free_port():
    """A port free on 127.0.0.1 right now (the kernel's choice; the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
