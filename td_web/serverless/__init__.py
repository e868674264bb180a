"""td_web for serverless functions (AWS Lambda, Google Cloud Functions, Vercel).

A function's process is frozen the moment its handler returns: a background sender would
be stopped mid-batch and a signal queued last would wait, maybe forever. So here signals wait
in memory during the invocation and are sent *before the handler returns*, on the handler's
thread, over one keep-alive connection, within a budget you set::

    from td_web.serverless import TelemetryDeck, handler

    td = TelemetryDeck(app_id="...", salt="...")      # no background thread, ever

    @handler(td, budget=0.5)                           # AWS Lambda, any (event, context)
    def lambda_handler(event, context):
        td.signal("Invoice.created", {"Invoice.lines": 3})
        return {"statusCode": 200}

An ASGI app (FastAPI, Starlette) behind Mangum or another adapter::

    app = FastAPI()
    app.add_middleware(td_web.asgi.TelemetryDeckMiddleware, client=td)
    lambda_handler = handler(td)(Mangum(app))          # or asgi(app, td) where the platform
                                                       # calls the ASGI app itself (Vercel)

Google Cloud Functions (``functions-framework``) and Vercel's ``handler`` functions: decorate
the function the platform calls the same way.

Contract
    - Everything queued before the handler returns is sent before it returns, within
      ``budget`` seconds (default 0.5); each request's timeout is cut to what is left.
    - What the budget did not cover (the ingest server slow or down) stays queued and is sent
      at the end of the next invocation, oldest first; the queue is bounded by
      ``max_queue_size``. A 429 or 503 with ``Retry-After`` is honoured across invocations.
    - No thread outlives an invocation, so a freeze never catches td_web mid-request, and a
      keep-alive connection that died while the process was frozen is replaced once within
      the same invocation.
    - The handler's return value and exceptions are exactly its own: a handler that raises
      still has its signals delivered, then its exception propagates; td_web's problems are
      logged under ``td_web``, never raised.
    - At process exit (when the platform lets it run) what is left is delivered within
      ``shutdown_timeout``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .._client import TelemetryDeck as _BackgroundTelemetryDeck
from .._client import _Shared
from .._config import ClientConfig
from .._log import logger, throttled
from ._sender import InvocationSender

F = TypeVar("F", bound=Callable[..., Any])
ASGIApp = Callable[..., Any]

#: Seconds the end of an invocation may spend delivering, by default.
DEFAULT_BUDGET = 0.5

__all__ = ["DEFAULT_BUDGET", "TelemetryDeck", "asgi", "deliver", "handler"]


class TelemetryDeck(_BackgroundTelemetryDeck):
    """A :class:`td_web.TelemetryDeck` for functions: the same options and methods, but
    ``signal()`` only queues and ``flush(budget)`` sends on the calling thread."""

    @staticmethod
    def _acquire_sender(config: ClientConfig) -> _Shared:
        # Never shared: a function's signals are sent by its own invocations only.
        shared = _Shared(None, config, InvocationSender)
        shared.users = 1
        return shared

    @property
    def sends_in_background(self) -> bool:
        return False

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        if self._sender is not None:
            if self.config.spool_path:
                logger.warning(
                    "td_web: spool_path is ignored by td_web.serverless (a function's disk "
                    "does not outlive it); undelivered signals wait in memory instead"
                )
            if self.config.sync:
                logger.info("td_web: sync=True is implied by td_web.serverless; ignored")


def deliver(client: _BackgroundTelemetryDeck, budget: float = DEFAULT_BUDGET) -> bool:
    """Send what ``client`` holds within ``budget`` seconds; never raises. True when
    everything was delivered."""
    try:
        return client.flush(budget)
    except Exception:
        logger.exception("td_web: delivering signals at the end of the invocation failed")
        return False


def handler(client: _BackgroundTelemetryDeck, budget: float = DEFAULT_BUDGET) -> Callable[[F], F]:
    """Decorate a function handler (sync or ``async def``) so that its signals are delivered
    before it returns or raises."""
    _check(client)

    def decorate(function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await function(*args, **kwargs)
                finally:
                    # On this thread: a helper thread would outlive the invocation.
                    deliver(client, budget)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            finally:
                deliver(client, budget)

        return run  # type: ignore[return-value]

    return decorate


def asgi(app: ASGIApp, client: _BackgroundTelemetryDeck, budget: float = DEFAULT_BUDGET) -> ASGIApp:
    """Wrap an ASGI app so that each HTTP or WebSocket call delivers its signals before the
    call returns (lifespan messages pass through untouched)."""
    _check(client)

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        try:
            await app(scope, receive, send)
        finally:
            deliver(client, budget)

    return wrapped


def _check(client: object) -> None:
    if not isinstance(client, _BackgroundTelemetryDeck):
        raise TypeError(f"client must be a td_web TelemetryDeck, got {type(client).__name__}")
    if not isinstance(client, TelemetryDeck):
        throttled.warning(
            "serverless-background-client",
            "td_web: a td_web.TelemetryDeck keeps a background thread between invocations, "
            "which a freeze can stop mid-request; use td_web.serverless.TelemetryDeck",
        )
