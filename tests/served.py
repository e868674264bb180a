"""Real servers in tests: wait until one answers its health check, and make sure it is gone
afterwards (its workers too), whatever the test did."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()


@contextlib.contextmanager
def answering(
    process: subprocess.Popen[bytes],
    url: str,
    output: Callable[[], str],
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``process`` once ``GET {url}/healthz`` answers 200; killed on the way out.

    ``output`` gives what the server wrote, for the failure message when it exits while
    starting or stays silent for ``timeout`` seconds. A server started in its own session
    (``start_new_session=True``) is killed with its whole process group (gunicorn's workers,
    the reloader's child)."""
    try:
        own_group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:  # already gone: the wait below says so
        own_group = False
    try:
        _wait_for_health(process, url, output, timeout)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            if own_group:  # even after the main process: its workers may outlive it
                os.killpg(process.pid, signal.SIGKILL)
            elif process.poll() is None:
                process.kill()
        process.wait(10)


def _wait_for_health(
    process: subprocess.Popen[bytes], url: str, output: Callable[[], str], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(
                f"the server exited while starting ({process.returncode}):\n{output()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not answer within {timeout:g} s:\n{output()}")
        time.sleep(0.1)
