"""Process life for every sender: exit, SIGTERM, fork.

At exit (atexit, or the SIGTERM handler below) every live sender is closed in parallel within
one budget; after ``os.fork()`` each sender starts afresh in the child.

Queued signals survive a SIGTERM that would otherwise kill the process on the spot.

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

import atexit
import os
import signal
import sys
import threading
import time
import weakref
from types import FrameType
from typing import Any, Protocol

from ._log import logger


class Closable(Protocol):
    """What process life needs of a sender."""

    @property
    def shutdown_timeout(self) -> float: ...

    def begin_close(self, *, drain: bool = False) -> None: ...

    def close(self, timeout: float, *, drain: bool = False) -> bool: ...

    def after_fork_in_child(self) -> None: ...


#: Every sender that may hold signals; each adds itself and leaves when closed.
live_senders: weakref.WeakSet[Closable] = weakref.WeakSet()


def close_all_at_exit() -> None:
    """Deliver what every client has queued, all in parallel, within one shared budget: the
    longest ``shutdown_timeout`` among them (each sender still stops at its own)."""
    senders = list(live_senders)
    started = time.monotonic()
    for sender in senders:
        try:
            sender.begin_close(drain=True)
        except Exception:
            logger.exception("td_web: closing a client at exit failed")
    for sender in senders:
        remaining = started + sender.shutdown_timeout - time.monotonic()
        try:
            sender.close(max(remaining, 0.0), drain=True)
        except Exception:
            logger.exception("td_web: closing a client at exit failed")


def _after_fork_in_child() -> None:
    for sender in list(live_senders):
        sender.after_fork_in_child()


def warn_if_threads_disabled() -> None:
    """uWSGI without threads silently never runs our worker thread (a known trap)."""
    uwsgi = sys.modules.get("uwsgi")  # uWSGI injects it; importing it elsewhere fails
    if uwsgi is None:
        return
    options: dict[str, Any] = getattr(uwsgi, "opt", {})
    if not (options.get("enable-threads") or options.get("threads")):
        logger.warning(
            "td_web: uWSGI runs without --enable-threads, so the background sender cannot run "
            "and no signal will be delivered; start uWSGI with --enable-threads"
        )


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


atexit.register(close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
