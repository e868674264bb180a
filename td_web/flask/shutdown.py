"""A clean exit on SIGTERM for servers that leave SIGTERM at its default.

The default disposition kills the process on the spot, so the client's atexit flush never
runs and queued signals are lost. ``flask run`` without the reloader and ``waitress-serve``
install no SIGTERM handler; gunicorn, uWSGI and Werkzeug's reloader install their own, which
this never replaces (gunicorn's, installed after ``--preload`` imports the app, replaces ours).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from .._log import logger


def exit_cleanly_on_sigterm() -> bool:
    """Turn SIGTERM into ``SystemExit(143)`` if nothing else handles it. True if installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _raise_system_exit)
    except (ValueError, OSError, AttributeError):  # no signals here (embedded interpreters)
        return False
    logger.debug("td_web: SIGTERM now exits cleanly, so queued signals are flushed at exit")
    return True


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    # 128 + signal number: what a shell reports for a process ended by that signal.
    raise SystemExit(128 + signum)
