"""Applications whose lifespan startup fails, each bare and wrapped by td_web, for the tests
that run them under a real uvicorn: the server must see the failure exactly as without td_web.

The td_web-wrapped ones (``<name>_td``) are configured from the environment like a deployment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from td_web.asgi import TelemetryDeckMiddleware


class DatabaseUnreachable(Exception):
    pass


async def crashing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Speaks lifespan, and its startup raises instead of answering."""
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        raise DatabaseUnreachable("the database is unreachable")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class BrokenMiddleware:
    """Starlette's test_exception_in_middleware: raises before the app says anything."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise DatabaseUnreachable("the middleware is broken")


def broken_middleware_app(*, telemetry: bool) -> Starlette:
    app = Starlette(middleware=[Middleware(BrokenMiddleware)])
    if telemetry:
        app.add_middleware(TelemetryDeckMiddleware)
    return app


@asynccontextmanager
async def _failing_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise DatabaseUnreachable("the database is unreachable")
    yield  # pragma: no cover


broken = broken_middleware_app(telemetry=False)
failing_lifespan = Starlette(lifespan=_failing_lifespan)


def __getattr__(name: str) -> Any:
    """The td_web-wrapped variants, built only when uvicorn asks for one (the tests import
    this module without the environment that configures td_web)."""
    if name == "crashing_td":
        return TelemetryDeckMiddleware(crashing)
    if name == "broken_td":
        return broken_middleware_app(telemetry=True)
    if name == "failing_lifespan_td":
        return TelemetryDeckMiddleware(Starlette(lifespan=_failing_lifespan))
    raise AttributeError(name)
