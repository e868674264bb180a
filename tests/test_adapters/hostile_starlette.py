"""The echo app on Starlette: it echoes what Starlette made of the request, which td_web must
not change. The hostile-request tests compare its answers with td_web (sending through a given
client) and without."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from td_web import TelemetryDeck as Client
from td_web.asgi import TelemetryDeckMiddleware


async def _starlette_echo(request: Request) -> HTMLResponse:
    facts = {
        "method": request.method,
        "path": request.scope["path"],
        "raw_path": request.scope.get("raw_path"),
        "query": request.query_params.multi_items(),
        "cookies": sorted(request.cookies.items()),
        "headers": request.headers.items(),
        "body": await request.body(),
    }
    return HTMLResponse(f"<pre>{facts!a}</pre>")


def starlette_app(client: Client | None) -> Starlette:
    middleware = []
    if client is not None:
        middleware.append(Middleware(TelemetryDeckMiddleware, client=client, respect_gpc=True))
    return Starlette(routes=[Route("/{rest:path}", _starlette_echo)], middleware=middleware)


@contextmanager
def serve_starlette(client: Client | None) -> Iterator[Starlette]:
    yield starlette_app(client)
