"""The Celery signal receivers: context into task messages, a helper and a signal per task run,
and delivery when a worker process ends.

Every receiver catches everything: Celery logs what a receiver raises, but a task's outcome
and a publisher's exception must stay exactly what they are without td_web.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextvars import Token
from typing import Any

from celery import signals

from .._client import TelemetryDeck
from .._context import RunTelemetry, carried_context, helper_for
from .._log import logger
from .._web.telemetry import Telemetry, _qualified_name, current
from ._options import CeleryOptions, build_client, django_settings_loaded, resolve

#: The message header carrying a request's session ID and clientUser hash.
HEADER = "td_web"
#: Celery's own bookkeeping tasks (chord_unlock polls every second) are not the app's work.
_INTERNAL_PREFIX = "celery."
_OUTCOMES = {
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "RETRY": "retried",
    "REJECTED": "rejected",
    "IGNORED": "ignored",
}
#: Runs whose postrun never came (a receiver of someone else's raised first) are forgotten
#: beyond this many, so the bookkeeping stays bounded.
_MAX_RUNNING = 1024


class _Run:
    __slots__ = ("helper", "start", "token")

    def __init__(self, helper: Telemetry, token: Token[Telemetry | None] | None) -> None:
        self.helper = helper
        self.token = token
        self.start = time.perf_counter()


class CeleryTelemetry:
    """What ``td_web.celery.setup()`` connected for one Celery app."""

    def __init__(self, app: Any, options: Mapping[str, Any]) -> None:
        self.app = app
        self._given = dict(options)
        # Checked now, so that a wrong name fails at setup(); with Django's settings too when
        # they are loaded already, else on first use (a worker imports the app module before
        # Django has read its settings).
        self._options: CeleryOptions | None = (
            resolve(self._given) if django_settings_loaded() else None
        )
        if self._options is None:
            resolve(self._given, django=False)
        self._client: TelemetryDeck | None = None
        self._client_failed = False
        self._lock = threading.Lock()
        self._running: dict[str, _Run] = {}
        self._uid = f"td_web.celery:{id(self)}"

    # -- wiring ------------------------------------------------------------------------------

    def connect(self) -> None:
        for signal, receiver in self._receivers():
            signal.connect(receiver, weak=False, dispatch_uid=self._uid)

    def disconnect(self) -> None:
        for signal, receiver in self._receivers():
            signal.disconnect(receiver, dispatch_uid=self._uid)

    def _receivers(self) -> list[tuple[Any, Any]]:
        return [
            (signals.before_task_publish, self._on_publish),
            (signals.task_prerun, self._on_prerun),
            (signals.task_postrun, self._on_postrun),
            (signals.task_failure, self._on_failure),
            (signals.worker_process_shutdown, self._on_process_shutdown),
            (signals.worker_shutdown, self._on_worker_shutdown),
        ]

    @property
    def options(self) -> CeleryOptions:
        if self._options is None:
            try:
                self._options = resolve(self._given)
            except Exception:
                logger.exception(
                    "td_web: the Celery integration's Django settings are invalid; using the "
                    "arguments of td_web.celery.setup() alone"
                )
                self._options = resolve(self._given, django=False)
        return self._options

    @property
    def client(self) -> TelemetryDeck | None:
        """The worker's client, built on first use (a web process that only sends tasks never
        builds one); None, logged once, when its configuration is invalid."""
        if self._client is None and not self._client_failed:
            with self._lock:
                if self._client is None and not self._client_failed:
                    try:
                        self._client = build_client(self.options)
                    except Exception:
                        self._client_failed = True
                        logger.exception(
                            "td_web: the Celery integration's client could not be built; tasks "
                            "run without td_web"
                        )
        return self._client

    # -- the sending side --------------------------------------------------------------------

    def _on_publish(self, headers: dict[str, Any] | None = None, **_: Any) -> None:
        if not self.options.carry_context or headers is None:
            return
        try:
            carried = carried_context()
            if carried is not None:
                headers[HEADER] = carried
        except Exception:
            logger.exception("td_web: carrying the request's context into a task failed")

    # -- the worker side ---------------------------------------------------------------------

    def _on_prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if task_id is None or task is None or self._foreign(task):
            return
        try:
            request = task.request
            helper = current()
            if getattr(request, "is_eager", False) and helper.active:
                # Run inline by the request itself: it already has the request's helper.
                self._remember(task_id, _Run(helper, None))
                return
            client = self.client
            if client is None:
                return
            helper = self._helper(client, request)
            self._remember(task_id, _Run(helper, helper.activate()))
        except Exception:
            logger.exception("td_web: preparing a task's telemetry failed")

    def _on_postrun(
        self,
        task_id: str | None = None,
        task: Any = None,
        retval: Any = None,
        state: str | None = None,
        **_: Any,
    ) -> None:
        if task_id is None:
            return
        with self._lock:
            run = self._running.pop(task_id, None)
        if run is None:
            return
        try:
            if run.token is not None:
                Telemetry.deactivate(run.token)
            outcome = _OUTCOMES.get(state or "", (state or "unknown").lower())
            error = retval if outcome == "failed" and isinstance(retval, BaseException) else None
            self._task_signal(run.helper, task, outcome, time.perf_counter() - run.start, error)
        except Exception:
            logger.exception("td_web: recording a task run failed")

    def _on_failure(
        self, task_id: str | None = None, exception: Any = None, sender: Any = None, **_: Any
    ) -> None:
        """Failures postrun never sees: the pool process running the task died (killed, hard
        time limit) and the worker's main process reports it."""
        if task_id is None or sender is None or self._foreign(sender):
            return
        with self._lock:
            if task_id in self._running:
                return  # ran here: postrun reports it
        try:
            client = self.client
            if client is None:
                return
            helper = self._helper(client, sender.request)
            error = exception if isinstance(exception, BaseException) else None
            self._task_signal(helper, sender, "failed", None, error)
        except Exception:
            logger.exception("td_web: recording a failed task failed")

    def _helper(self, client: TelemetryDeck, request: Any) -> RunTelemetry:
        carried = getattr(request, HEADER, None) if self.options.carry_context else None
        return helper_for(client, carried, f"the task header {HEADER!r}")

    def _task_signal(
        self,
        helper: Telemetry,
        task: Any,
        outcome: str,
        duration: float | None,
        error: BaseException | None,
    ) -> None:
        signal_type = self.options.task_signal
        if signal_type is None:
            return
        request = task.request
        delivery = getattr(request, "delivery_info", None) or {}
        payload: dict[str, Any] = {
            "Celery.task.name": task.name,
            "Celery.task.outcome": outcome,
            "Celery.task.retries": getattr(request, "retries", None) or 0,
            "Celery.task.queue": delivery.get("routing_key")
            if isinstance(delivery, dict)
            else None,
        }
        if duration is not None:
            payload["TelemetryDeck.Signal.durationInSeconds"] = f"{duration:.3f}"
        if error is not None:
            payload["TelemetryDeck.Error.id"] = _qualified_name(type(error))
        helper.signal(signal_type, payload, float_value=duration)

    def _remember(self, task_id: str, run: _Run) -> None:
        with self._lock:
            if len(self._running) >= _MAX_RUNNING:
                self._running.clear()
            self._running[task_id] = run

    def _foreign(self, task: Any) -> bool:
        """A task of another Celery app in the same process, or one of Celery's own."""
        name = getattr(task, "name", None) or ""
        return getattr(task, "app", self.app) is not self.app or name.startswith(_INTERNAL_PREFIX)

    # -- process ends ------------------------------------------------------------------------

    def _on_process_shutdown(self, **_: Any) -> None:
        # A prefork child leaves with os._exit: no atexit, so this is its only chance.
        self._deliver("a worker process exits")

    def _on_worker_shutdown(self, **_: Any) -> None:
        self._deliver("the worker shuts down")

    def _deliver(self, when: str) -> None:
        client = self._client
        if client is None:
            return
        try:
            timeout = client.config.shutdown_timeout
            if not client.flush(timeout):
                logger.warning(
                    "td_web: not every signal was delivered within shutdown_timeout (%ss) when %s; "
                    "raise shutdown_timeout or set spool_path",
                    timeout,
                    when,
                )
        except Exception:
            logger.exception("td_web: delivering queued signals when %s failed", when)
