"""Real servers in tests: wait until one answers its health check, and make sure it is gone
afterwards (its workers too), whatever the test did."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator

from td_web.demo.serving import wait_until_answering


@contextlib.contextmanager
def answering(
    process: subprocess.Popen[bytes],
    url: str,
    output: Callable[[], str],
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``process`` once ``GET {url}/healthz`` answers 200 (``td_web.demo.serving``, which the
    demo's site uses too); killed on the way out.

    ``output`` gives what the server wrote, for the failure message when it exits while
    starting or stays silent for ``timeout`` seconds. A server started in its own session
    (``start_new_session=True``) is killed with its whole process group (gunicorn's workers,
    the reloader's child)."""
    try:
        own_group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:  # already gone: the wait below says so
        own_group = False
    try:
        wait_until_answering(process, url, timeout, output)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            if own_group:  # even after the main process: its workers may outlive it
                os.killpg(process.pid, signal.SIGKILL)
            elif process.poll() is None:
                process.kill()
        process.wait(10)
