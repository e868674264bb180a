"""Queued signals survive a SIGTERM that would otherwise kill the process on the spot.

The ``handle_sigterm`` option (on by default, applied by the adapters) installs a handler for
SIGTERM only where nothing else handles it: ``flask run`` without the reloader,
``waitress-serve`` and Django's ``runserver --noreload`` leave it at the default, which kills
the process before the client's atexit flush can run. gunicorn, uWSGI and Werkzeug's reloader
install their own handlers, which this never replaces (gunicorn's, installed after
``--preload`` imports the app, replaces ours). uvicorn restores the handler it found before it
re-raises the signal at the end of its graceful shutdown, so ours then delivers what is left.

The handler delivers what is queued (each client within its ``shutdown_timeout``) and then
ends the process exactly as the default disposition would have: killed by SIGTERM, with the
same exit status a supervisor expects. Only the main thread can install it.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from ._log import logger
from ._sender import close_all_at_exit


def exit_cleanly_on_sigterm() -> bool:
    """Install the flush-then-die SIGTERM handler if SIGTERM is at its default. True if so."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _flush_then_die)
    except (ValueError, OSError, AttributeError):  # no signals here (embedded interpreters)
        return False
    logger.debug("td_web: on SIGTERM, queued signals are delivered before the process ends")
    return True


def _flush_then_die(signum: int, frame: FrameType | None) -> None:
    try:
        close_all_at_exit()
    except Exception:
        logger.exception("td_web: delivering queued signals on SIGTERM failed")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
