"""HTTP.route from Starlette's and FastAPI's routing: mounts, nested mounts, included routers
with prefixes, root_path, 404 and 405, for both ways of installing the middleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import starlette
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Host, Mount, Route, Router
from test_asgi.asgi_support import APP_ID, TestClient

from td_web.asgi import TelemetryDeckMiddleware
from td_web.testing import CapturedSignals

STARLETTE_VERSION = tuple(int(part) for part in starlette.__version__.split(".")[:2])
# Since Starlette 0.35 (and uvicorn 0.26) ``path`` includes ``root_path``, as the ASGI spec
# says; before, servers sent the path below the root path.
ROOT_PATH_IN_PATH = STARLETTE_VERSION >= (0, 35)


def below(root_path: str, path: str) -> str:
    """The URL a server following this Starlette's convention hands over for ``path``."""
    return root_path + path if ROOT_PATH_IN_PATH else path


def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _raw_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"raw"})


def starlette_app() -> Starlette:
    sub = Starlette(routes=[Route("/page/{n:int}", _ok)])
    return Starlette(
        routes=[
            Route("/", _ok),
            Route("/items/{item_id:int}", _ok, methods=["GET"]),
            Mount(
                "/api",
                routes=[
                    Route("/users/{user_id}", _ok),
                    Mount("/v2", routes=[Route("/things/{thing}", _ok)]),
                ],
            ),
            Mount("/orgs/{org}", routes=[Route("/repos/{repo}", _ok)]),
            Mount("/sub", app=sub),
            Mount("/raw", app=_raw_app),
            Host("api.example.com", app=Router(routes=[Route("/hosted/{x}", _ok)])),
        ]
    )


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    users = APIRouter(prefix="/v1")

    @users.get("/users/{user_id}")
    def user(user_id: str) -> dict[str, str]:
        return {"user_id": user_id}

    inner = APIRouter(prefix="/inner")

    @inner.get("/x/{y}")
    def inner_x(y: str) -> dict[str, str]:
        return {"y": y}

    users.include_router(inner)
    users.add_route("/plain/{p}", _ok)
    app.include_router(users, prefix="/api")

    sub = FastAPI()

    @sub.get("/hello/{name}")
    def hello(name: str) -> dict[str, str]:
        return {"name": name}

    app.mount("/sub", sub)
    app.mount("/legacy", Starlette(routes=[Route("/old/{old_id}", _ok)]))
    app.add_route("/starlette-route/{p}", _ok)
    return app


Style = Callable[[Any], Any]


def wrapped(app: Any) -> Any:
    return TelemetryDeckMiddleware(app, app_id=APP_ID)


def added(app: Any) -> Any:
    app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)
    return app


STYLES = [pytest.param(wrapped, id="wrapped"), pytest.param(added, id="add_middleware")]


def route_of(signals: CapturedSignals) -> str | None:
    payloads = signals.payloads("HTTP.request") + signals.payloads("pageView")
    assert len(payloads) == 1, signals.types()
    route: str | None = payloads[0].get("HTTP.route")
    return route


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("url", "route"),
    [
        ("/", "/"),
        ("/items/42", "/items/{item_id}"),
        ("/api/users/alice", "/api/users/{user_id}"),
        ("/api/v2/things/lamp", "/api/v2/things/{thing}"),
        ("/orgs/acme/repos/rocket", "/orgs/{org}/repos/{repo}"),
        ("/sub/page/7", "/sub/page/{n}"),
        ("/raw/any/where", "/raw/{path}"),
    ],
)
def test_starlette_routes(style: Style, url: str, route: str, td_signals: CapturedSignals) -> None:
    client = TestClient(style(starlette_app()))
    assert client.get(url).status_code == 200
    assert route_of(td_signals) == route


@pytest.mark.parametrize("style", STYLES)
def test_parameterized_mount_never_puts_the_value_in_the_route(
    style: Style, td_signals: CapturedSignals
) -> None:
    TestClient(style(starlette_app())).get("/orgs/secret-org-name/repos/r")
    signal = td_signals.one("HTTP.request")
    assert signal["payload"]["HTTP.route"] == "/orgs/{org}/repos/{repo}"
    assert "secret-org-name" not in signal["payload"]["HTTP.route"]


@pytest.mark.parametrize("style", STYLES)
def test_host_routes(style: Style, td_signals: CapturedSignals) -> None:
    client = TestClient(style(starlette_app()), base_url="http://api.example.com")
    assert client.get("/hosted/1").status_code == 200
    assert route_of(td_signals) == "/hosted/{x}"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("url", ["/nowhere", "/api/nothing/here", "/sub/unknown"])
def test_unmatched_requests_have_no_route(
    style: Style, url: str, td_signals: CapturedSignals
) -> None:
    assert TestClient(style(starlette_app())).get(url).status_code == 404
    signal = td_signals.one("HTTP.request")
    assert signal["payload"]["HTTP.statusCode"] == "404"
    assert "HTTP.route" not in signal["payload"]


@pytest.mark.parametrize("style", STYLES)
def test_method_not_allowed_keeps_the_route(style: Style, td_signals: CapturedSignals) -> None:
    assert TestClient(style(starlette_app())).post("/items/3").status_code == 405
    assert route_of(td_signals) == "/items/{item_id}"


@pytest.mark.parametrize("style", STYLES)
def test_root_path_is_in_the_path_but_not_the_route(
    style: Style, td_signals: CapturedSignals
) -> None:
    client = TestClient(style(starlette_app()), root_path="/behind-proxy")
    assert client.get(below("/behind-proxy", "/api/users/bob")).status_code == 200
    payload = td_signals.one("HTTP.request")["payload"]
    assert payload["HTTP.route"] == "/api/users/{user_id}"
    assert payload["path"] == "/behind-proxy/api/users/bob"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("url", "route"),
    [
        ("/items/5", "/items/{item_id}"),
        ("/api/v1/users/carol", "/api/v1/users/{user_id}"),
        ("/api/v1/inner/x/9", "/api/v1/inner/x/{y}"),
        ("/api/plain/q", "/api/plain/{p}"),
        ("/sub/hello/dave", "/sub/hello/{name}"),
        ("/legacy/old/12", "/legacy/old/{old_id}"),
        ("/starlette-route/z", "/starlette-route/{p}"),
    ],
)
def test_fastapi_routes(style: Style, url: str, route: str, td_signals: CapturedSignals) -> None:
    client = TestClient(style(fastapi_app()))
    assert client.get(url).status_code == 200
    assert route_of(td_signals) == route


@pytest.mark.parametrize("style", STYLES)
def test_fastapi_root_path_and_404(style: Style, td_signals: CapturedSignals) -> None:
    client = TestClient(style(fastapi_app()), root_path="/gateway")
    assert client.get(below("/gateway", "/api/v1/users/erin")).status_code == 200
    assert client.get(below("/gateway", "/api/v1/missing")).status_code == 404
    found, missing = td_signals.payloads("HTTP.request")
    assert found["HTTP.route"] == "/api/v1/users/{user_id}"
    assert found["path"] == "/gateway/api/v1/users/erin"
    assert "HTTP.route" not in missing


def test_a_plain_asgi_app_gets_no_route(td_signals: CapturedSignals) -> None:
    client = TestClient(TelemetryDeckMiddleware(_raw_app, app_id=APP_ID))
    assert client.get("/anything/123").text == "raw"
    payload = td_signals.one("HTTP.request")["payload"]
    assert payload["path"] == "/anything/123"
    assert "HTTP.route" not in payload


def test_json_endpoint_is_a_request_not_a_page_view(td_signals: CapturedSignals) -> None:
    async def api(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/api", api), Route("/", _page)])
    client = TestClient(TelemetryDeckMiddleware(app, app_id=APP_ID))
    client.get("/api")
    client.get("/")
    assert td_signals.one("HTTP.request")["payload"]["HTTP.route"] == "/api"
    assert td_signals.one("pageView")["payload"]["HTTP.route"] == "/"


def _page(request: Request) -> Response:
    return Response("<h1>hi</h1>", media_type="text/html")
