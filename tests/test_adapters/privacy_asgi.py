"""The canary site on Starlette, called through its test client (real ASGI calls), with the
``client_user`` option or Starlette's AuthenticationMiddleware, in each session mode."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from conftest import APP_ID
from ingest_server import IngestServer
from privacy_canaries import (
    EXCEPTION_MESSAGE,
    FRAMEWORK_SESSION,
    PLANTED,
    USER_ID,
    USER_NAME,
    CanaryRequest,
    canary_cookie_header,
    canary_visit,
)
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from test_adapters.privacy_site import EVERY_SIGNAL, CanaryVisit

from td_web.asgi import TelemetryDeckMiddleware

with warnings.catch_warnings():
    # Starlette 1.x recommends httpx2 for its test client; httpx works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SALT = "asgi-privacy-salt"


class PaymentDeclined(Exception):
    pass


class BearerAuth(AuthenticationBackend):
    """Signed in when the request carries credentials; the user's name is a canary."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        if "authorization" not in conn.headers:
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(USER_NAME)


def client_user(request: Request) -> object:
    return USER_ID if "authorization" in request.headers else None


#: (web options, whether Starlette's AuthenticationMiddleware runs, the user id it hashes)
MODES: dict[str, tuple[dict[str, Any], bool, str]] = {
    "client-user": ({"client_user": client_user}, False, USER_ID),
    "auth-middleware-cookieless": ({"cookieless": True}, True, USER_NAME),
    "auth-middleware-session-cookie": ({"session_from_cookie": "session"}, True, USER_NAME),
}


async def page(request: Request) -> Response:
    user = request.scope.get("user")
    return HTMLResponse(f"<p>signed in: {user is not None and user.is_authenticated}</p>")


async def form(request: Request) -> Response:
    # Parsed by hand: request.form() needs python-multipart, which td_web does not.
    data = parse_qs((await request.body()).decode())
    return PlainTextResponse(f"got {len(data['password'][0])}")


async def json_body(request: Request) -> Response:
    return PlainTextResponse(f"got {len(await request.json())}")


async def custom(request: Request) -> Response:
    request.state.telemetry.signal("Privacy.checked", {"Cart.items": 3}, float_value=1.5)
    return PlainTextResponse("ok")


async def planted(request: Request) -> Response:
    request.state.telemetry.signal("Privacy.planted", {"Note": f"sent on purpose: {PLANTED}"})
    return PlainTextResponse("ok")


async def boom(request: Request) -> Response:
    raise PaymentDeclined(f"card declined: {EXCEPTION_MESSAGE}")


ROUTES = [
    Route("/page/", page),
    Route("/welcome/", page),
    Route("/form/", form, methods=["POST"]),
    Route("/json/", json_body, methods=["POST"]),
    Route("/custom/", custom),
    Route("/planted/", planted),
    Route("/boom/", boom),
]


def send(client: TestClient, request: CanaryRequest) -> int:
    client.cookies.clear()  # only the canary Cookie header, never cookies set before
    response = client.request(
        request.method,
        request.url,
        headers={
            **request.headers,
            **({"Content-Type": request.content_type} if request.content_type else {}),
        },
        content=request.body,
    )
    return response.status_code


class StarletteSite:
    salt = SALT

    def __init__(self, ingest: IngestServer, mode: str, **options: Any) -> None:
        web_options, authenticates, self.user_id = MODES[mode]
        self.mode = mode
        middleware = (
            [Middleware(AuthenticationMiddleware, backend=BearerAuth())] if authenticates else []
        )
        self.app = TelemetryDeckMiddleware(
            Starlette(routes=ROUTES, middleware=middleware),
            app_id=APP_ID,
            salt=SALT,
            endpoint=ingest.url,
            flush_interval=3600,
            **web_options,
            **options,
        )
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def send(self, request: CanaryRequest) -> int:
        return send(self.client, request)

    def flush(self) -> bool:
        return self.app.client.flush(5)

    def canary_visit(self) -> CanaryVisit:
        cookie = canary_cookie_header(("session", FRAMEWORK_SESSION))
        return CanaryVisit(
            canary_visit(cookie, cookie, "testserver"),
            self.user_id,
            token_sessions=EVERY_SIGNAL if self.mode == "client-user" else None,
        )


@contextmanager
def open_site(ingest: IngestServer, mode: str | None = None, **options: Any) -> Iterator[Any]:
    site = StarletteSite(ingest, mode or next(iter(MODES)), **options)
    try:
        yield site
    finally:
        site.app.client.close(5)  # its sender's thread ends with the site
