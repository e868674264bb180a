"""Starting a server process and waiting until it answers: the demo's example site and the
test suite's real servers (``tests/served.py``) start the same way."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

from .._transport import http_library


class NotAnswering(RuntimeError):
    """The server exited while starting, or did not answer its health check in time."""


def free_port() -> int:
    """A loopback port nobody listens on now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(
    process: subprocess.Popen[Any],
    url: str,
    timeout: float,
    output: Callable[[], str] = str,
) -> None:
    """Return once ``GET {url}/healthz`` answers 200. ``NotAnswering``, with ``output()`` (what
    the server wrote), when ``process`` exits first or ``timeout`` seconds pass."""
    http = http_library()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except http.TransportError:
            pass
        if process.poll() is not None:
            problem = f"the server exited while starting ({process.returncode})"
        elif time.monotonic() > deadline:
            problem = f"the server did not answer within {timeout:g} s"
        else:
            time.sleep(0.1)
            continue
        written = output()
        raise NotAnswering(f"{problem}:\n{written}" if written else problem)
