"""td_web for Celery workers (Celery 5.3 and newer): ``pip install "td_web[celery]"``.

Setup, in the module that builds the Celery app (imported by the web processes and the
workers alike)::

    app = Celery("proj")
    td_web.celery.setup(app, app_id="...", salt="...")   # or the Django settings below

What it does
    - Tasks sent while a request is handled (or from inside another task) carry the request's
      session ID and clientUser hash in a message header (``td_web``); only those derived,
      one-way values, never the session cookie or the raw user id. Inside the task,
      ``td_web.current().signal(...)`` then counts for the same visitor and session. Tasks sent
      outside a request (beat, a shell) use the worker's own session. A request td_web sends
      nothing for (``Sec-GPC``, opted out, sampled out) marks its tasks quiet: they send
      nothing either.
    - One signal per task run, ``Celery.task`` (``task_signal=`` renames it, ``None`` turns it
      off): ``Celery.task.name``, ``Celery.task.outcome`` (``succeeded``, ``failed``,
      ``retried``, ``rejected``, ``ignored``), ``Celery.task.queue``, ``Celery.task.retries``,
      ``TelemetryDeck.Signal.durationInSeconds`` and ``floatValue`` (the run's duration), and
      for failures ``TelemetryDeck.Error.id`` (the exception's class). Never the task's
      arguments, result or exception message. A task whose pool process died (killed, hard
      time limit) is reported ``failed`` by the worker's main process, without a duration.
      Celery's own ``celery.*`` tasks are not reported.
    - Delivery: each prefork child builds its own sender after the fork (nothing of the
      parent's queue is sent twice) and delivers what it holds when it exits (``os._exit``
      skips atexit, so td_web hooks ``worker_process_shutdown``); the main process delivers at
      ``worker_shutdown``. Both within the client's ``shutdown_timeout``.
    - Either side without td_web works: a worker that does not call ``setup()`` ignores the
      header; a task without the header runs with the worker's own session.

Options (keyword arguments of ``setup()``)
    Every client option (``app_id``, ``salt``, ``endpoint``, ``test_mode``,
    ``flush_interval``, ``shutdown_timeout``, ...; environment variables as for the client) or
    ``client=`` (an existing :class:`td_web.TelemetryDeck`), plus ``task_signal`` (default
    ``"Celery.task"``) and ``carry_context`` (default True).

Django
    ``td_web.celery.setup(app)`` without arguments reads the client's keys from
    ``settings.TELEMETRYDECK`` (its request-only keys are ignored) and this integration's keys,
    upper-cased, from ``settings.TELEMETRYDECK_CELERY`` (``{"TASK_SIGNAL": None}``), which may
    also override client keys for workers. ``TEST_MODE`` defaults to ``DEBUG``. Keyword
    arguments win over both.

Bad input
    A task argument the serializer refuses, a broker that is down, a task that raises or kills
    its worker: the task's outcome and the exception the caller sees are exactly those without
    td_web. A malformed ``td_web`` header is ignored with a warning naming what is wrong.
"""

from __future__ import annotations

from typing import Any

from ._hooks import HEADER, CeleryTelemetry
from ._options import CeleryOptions

__all__ = ["HEADER", "CeleryOptions", "CeleryTelemetry", "setup", "teardown"]

#: One integration per Celery app: calling setup() again replaces it.
_installed: dict[int, CeleryTelemetry] = {}


def setup(app: Any, **options: Any) -> CeleryTelemetry:
    """Connect td_web to ``app``'s tasks and workers; see the module documentation.

    Raises :class:`td_web.ConfigurationError` for unknown option names or invalid values; an
    invalid client configuration found later (a missing app id) is logged and leaves tasks
    untouched.
    """
    integration = CeleryTelemetry(app, options)
    teardown(app)
    integration.connect()
    _installed[id(app)] = integration
    return integration


def teardown(app: Any) -> None:
    """Disconnect what :func:`setup` connected for ``app`` (tests, reconfiguration)."""
    previous = _installed.pop(id(app), None)
    if previous is not None:
        previous.disconnect()
