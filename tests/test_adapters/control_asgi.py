"""The control site on Starlette: each option a keyword argument of
``TelemetryDeckMiddleware``, requests made with Starlette's test client (real ASGI calls)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

import integration_scenarios
from control_scenarios import SALT, Reply
from ingest_server import IngestServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from test_asgi.asgi_support import APP_ID, TestClient

import td_web
from td_web.asgi import TelemetryDeckMiddleware

PAGE = "<p>page</p>"


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def custom(request: Request) -> Response:
    request.state.telemetry.signal("Custom.done")
    return HTMLResponse(PAGE)


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def opt_out(request: Request) -> Response:
    request.state.telemetry.opt_out()
    return HTMLResponse(PAGE)


async def opt_in(request: Request) -> Response:
    request.state.telemetry.opt_in()
    return HTMLResponse(PAGE)


async def forget(request: Request) -> Response:
    response = HTMLResponse(PAGE)
    td_web.opt_out(response)
    return response


async def consent(request: Request) -> Response:
    response = HTMLResponse(PAGE)
    td_web.opt_in(response)
    return response


async def public(request: Request) -> Response:
    return HTMLResponse(PAGE, headers={"Cache-Control": integration_scenarios.CACHE_CONTROL})


async def public_opt_in(request: Request) -> Response:
    request.state.telemetry.opt_in()
    return await public(request)


ROUTES = [
    Route("/notes/{token}", custom),
    Route("/public", public),
    Route("/public-opt-in", public_opt_in),
    Route("/page", page),
    Route("/items/{item_id:int}", page),
    Route("/custom", custom),
    Route("/boom", boom),
    Route("/opt-out", opt_out),
    Route("/opt-in", opt_in),
    Route("/forget", forget),
    Route("/consent", consent),
]


class ASGIBrowser:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        response = self.client.get(path, headers=dict(headers or {}))
        return Reply(response.status_code, response.headers.get_list("set-cookie"))

    def cookie(self, name: str) -> str | None:
        return self.client.cookies.get(name)


class ASGISite:
    request_type = Request

    def __init__(self, app: TelemetryDeckMiddleware) -> None:
        self.app = app

    def browser(self, client_addr: str = "127.0.0.1") -> ASGIBrowser:
        return ASGIBrowser(
            TestClient(self.app, raise_server_exceptions=False, client=(client_addr, 50000))
        )

    def flush(self) -> None:
        assert self.app.client.flush(10)


def site_maker(ingest: IngestServer, stack: ExitStack) -> Callable[..., ASGISite]:
    """``make(**options)``: a site with those options, torn down by ``stack``."""

    def make(**options: Any) -> ASGISite:
        defaults = {
            "app_id": APP_ID,
            "salt": SALT,
            "endpoint": ingest.url,
            "handle_sigterm": False,
        }
        app = TelemetryDeckMiddleware(Starlette(routes=ROUTES), **{**defaults, **options})
        stack.callback(app.client.close, 1)
        return ASGISite(app)

    return make
