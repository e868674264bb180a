"""``td_web.job("Nightly.export")``: a cron job, management command or script as two signals.

::

    with td_web.job("Nightly.export", client=td):
        export()

    @td_web.job("Nightly.export")          # a client from TELEMETRYDECK_* environment variables
    def main() -> None: ...

``Job.started`` when it begins and ``Job.finished`` when it ends, both with ``Job.name``; the
second with ``Job.outcome`` (``succeeded``, ``failed``, ``interrupted``),
``TelemetryDeck.Signal.durationInSeconds`` and ``floatValue`` (seconds), and for a failure
``TelemetryDeck.Error.id`` (the exception's class, never its message). Inside,
``td_web.current().signal(...)`` shares the job's session. At the end everything queued is
delivered within ``flush_timeout`` (default: the client's ``shutdown_timeout``), because a
short script may be gone before the background sender's next round. The job's own outcome,
return value and exception are never changed; td_web's problems are logged, not raised.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import Token
from typing import Any, TypeVar

from ._client import TelemetryDeck
from ._context import RunTelemetry
from ._log import logger, throttled
from ._web.telemetry import Telemetry, _qualified_name, current

F = TypeVar("F", bound=Callable[..., Any])

STARTED_SIGNAL = "Job.started"
FINISHED_SIGNAL = "Job.finished"

_default_lock = threading.Lock()
_default_client: TelemetryDeck | None = None


class _Run:
    """One execution: its helper (activated for ``td_web.current()``) and start time."""

    __slots__ = ("helper", "start", "token")

    def __init__(self, helper: RunTelemetry | None, token: Token[Telemetry | None] | None) -> None:
        self.helper = helper
        self.token = token
        self.start = time.perf_counter()


class Job:
    """A context manager and decorator (sync and ``async def``); see the module docs."""

    def __init__(
        self,
        name: str,
        *,
        client: TelemetryDeck | None = None,
        payload: Mapping[str, Any] | None = None,
        flush_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.payload = dict(payload or {})
        self.flush_timeout = flush_timeout
        self._runs: list[_Run] = []

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> Job:
        self._runs.append(self._begin())
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if self._runs:
            self._end(self._runs.pop(), exc)

    async def __aenter__(self) -> Job:
        return self.__enter__()

    async def __aexit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if self._runs:
            run = self._runs.pop()
            self._finish(run, exc)
            await asyncio.to_thread(self._flush, run)

    # -- decorator ---------------------------------------------------------------------------

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                run = self._begin()
                try:
                    result = await function(*args, **kwargs)
                except BaseException as exc:
                    self._finish(run, exc)
                    await asyncio.to_thread(self._flush, run)
                    raise
                self._finish(run, None)
                await asyncio.to_thread(self._flush, run)
                return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with Job(
                self.name,
                client=self.client,
                payload=self.payload,
                flush_timeout=self.flush_timeout,
            ):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]

    # -- the signals -------------------------------------------------------------------------

    def _begin(self) -> _Run:
        try:
            helper = self._helper()
            if helper is None:
                return _Run(None, None)
            run = _Run(helper, helper.activate())
            helper.signal(STARTED_SIGNAL, {**self.payload, "Job.name": self.name})
            return run
        except Exception:
            logger.exception("td_web: starting the telemetry of job %r failed", self.name)
            return _Run(None, None)

    def _end(self, run: _Run, exc: BaseException | None) -> None:
        self._finish(run, exc)
        self._flush(run)

    def _finish(self, run: _Run, exc: BaseException | None) -> None:
        helper = run.helper
        if helper is None:
            return
        try:
            if run.token is not None:
                Telemetry.deactivate(run.token)
            duration = time.perf_counter() - run.start
            payload: dict[str, Any] = {
                **self.payload,
                "Job.name": self.name,
                "Job.outcome": _outcome(exc),
                "TelemetryDeck.Signal.durationInSeconds": f"{duration:.3f}",
            }
            if exc is not None and _outcome(exc) == "failed":
                payload["TelemetryDeck.Error.id"] = _qualified_name(type(exc))
            helper.signal(FINISHED_SIGNAL, payload, float_value=duration)
        except Exception:
            logger.exception("td_web: recording the end of job %r failed", self.name)

    def _flush(self, run: _Run) -> None:
        helper = run.helper
        if helper is None:
            return
        client = helper.client
        try:
            timeout = (
                self.flush_timeout
                if self.flush_timeout is not None
                else client.config.shutdown_timeout
            )
            if not client.flush(timeout):
                logger.warning(
                    "td_web: job %r ended before its signals were delivered (flush_timeout "
                    "%ss); they are delivered at exit if the ingest server answers by then",
                    self.name,
                    timeout,
                )
        except Exception:
            logger.exception("td_web: delivering the signals of job %r failed", self.name)

    def _helper(self) -> RunTelemetry | None:
        """Where the job's signals go: inside a task or another job, its visitor and session;
        else the given client, else one configured from the environment."""
        outer = current()
        if isinstance(outer, RunTelemetry) and (self.client in (None, outer.client)):
            return RunTelemetry(
                outer.client,
                outer.session_id,
                outer.client_user_hash,
                quiet=not outer.active,
                sample_rate=outer.sample_rate,
            )
        client = self.client or _client_from_environment()
        return None if client is None else RunTelemetry(client)


def job(
    name: str,
    *,
    client: TelemetryDeck | None = None,
    payload: Mapping[str, Any] | None = None,
    flush_timeout: float | None = None,
) -> Job:
    """A job's telemetry as a context manager or decorator; see :mod:`td_web.jobs`."""
    return Job(name, client=client, payload=payload, flush_timeout=flush_timeout)


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "succeeded"
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return "succeeded"
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return "interrupted"
    return "failed"


def _client_from_environment() -> TelemetryDeck | None:
    """One client per process from ``TELEMETRYDECK_*`` variables; None (warned) without."""
    global _default_client
    with _default_lock:
        if _default_client is None:
            try:
                _default_client = TelemetryDeck()
            except Exception as exc:
                throttled.warning(
                    "job-no-client",
                    "td_web: td_web.job() has no client (pass client= or set "
                    "TELEMETRYDECK_APP_ID): %s; the job runs without telemetry",
                    exc,
                )
                return None
        return _default_client
