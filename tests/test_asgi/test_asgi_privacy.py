"""Privacy, tested with canaries: requests full of private values (a signed-in user whose name
is a canary, td_session and other cookies, query strings, Referer queries, form and JSON
bodies, credentials, an exception message) go through a Starlette app and its test client (real
ASGI calls), with the ``client_user`` option and with Starlette's AuthenticationMiddleware, in
each session mode; nothing of them may reach the ingest server but salted hashes."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

import pytest
from conftest import APP_ID
from ingest_server import IngestServer
from privacy_canaries import (
    CANARY_VISIT_STATUSES,
    EXCEPTION_MESSAGE,
    FRAMEWORK_SESSION,
    PLANTED,
    SESSION_TOKEN,
    USER_ID,
    USER_NAME,
    CanaryRequest,
    assert_canary_visit_arrived,
    assert_no_canary,
    assert_the_error_message_was_sent,
    assert_the_search_finds,
    canary_cookie_header,
    canary_request,
    canary_visit,
    everything_received,
)
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from td_web import TelemetryDeck, hash_client_user
from td_web._hashing import derive_session_id
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


def _client_user(request: Request) -> object:
    return USER_ID if "authorization" in request.headers else None


#: (web options, whether Starlette's AuthenticationMiddleware runs, the user id it hashes)
MODES: dict[str, tuple[dict[str, Any], bool, str]] = {
    "client-user": ({"client_user": _client_user}, False, USER_ID),
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


def _app(
    ingest: IngestServer, mode: str = "client-user", **options: Any
) -> TelemetryDeckMiddleware:
    """The Starlette app wrapped in td_web's middleware (its ``client`` flushes)."""
    web_options, authenticates, _ = MODES[mode]
    middleware = (
        [Middleware(AuthenticationMiddleware, backend=BearerAuth())] if authenticates else []
    )
    app = Starlette(routes=ROUTES, middleware=middleware)
    return TelemetryDeckMiddleware(
        app,
        app_id=APP_ID,
        salt=SALT,
        endpoint=ingest.url,
        flush_interval=3600,
        **web_options,
        **options,
    )


def _send(client: TestClient, request: CanaryRequest) -> int:
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


@pytest.mark.parametrize("mode", list(MODES))
def test_no_canary_reaches_the_ingest_server(
    mode: str, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(ingest, mode)
    cookie = canary_cookie_header(("session", FRAMEWORK_SESSION))
    requests = canary_visit(cookie, cookie, "testserver")
    client = TestClient(app, raise_server_exceptions=False)
    statuses = [_send(client, r) for r in requests]
    assert app.client.flush(5)

    assert statuses == CANARY_VISIT_STATUSES
    signals = ingest.accepted_signals
    expected_user = hash_client_user(MODES[mode][2], SALT)
    assert_canary_visit_arrived(signals, expected_user)
    if mode == "client-user":
        sessions = Counter(s["sessionID"] for s in signals)
        assert sessions[derive_session_id(SESSION_TOKEN, SALT)] == len(signals)

    assert_no_canary(everything_received(ingest))
    assert [r for r in caplog.records if r.name == "td_web" and r.levelno >= 40] == []


def test_error_messages_are_sent_when_enabled_and_the_search_sees_them(
    ingest: IngestServer,
) -> None:
    """The opt-in that sends exception messages proves the search sees a canary that leaks."""
    app = _app(ingest, send_error_messages=True)
    assert _send(TestClient(app, raise_server_exceptions=False), canary_request("/boom/")) == 500
    assert app.client.flush(5)

    assert_the_error_message_was_sent(ingest)


def test_the_search_finds_a_canary_a_view_sends_on_purpose(ingest: IngestServer) -> None:
    """Positive control: a custom signal carrying a canary is caught."""
    app = _app(ingest)
    assert _send(TestClient(app), canary_request("/planted/")) == 200
    assert app.client.flush(5)

    assert_the_search_finds(PLANTED, ingest)


def test_a_shared_client_with_an_existing_td_web_client_sends_nothing_raw(
    ingest: IngestServer,
) -> None:
    """``client=`` an existing TelemetryDeck (the documented way to share one)."""
    client = TelemetryDeck(app_id=APP_ID, salt=SALT, endpoint=ingest.url, flush_interval=3600)
    try:
        app = Starlette(
            routes=ROUTES,
            middleware=[
                Middleware(TelemetryDeckMiddleware, client=client, client_user=_client_user)
            ],
        )
        assert _send(TestClient(app), canary_request("/custom/")) == 200
        assert client.flush(5)
    finally:
        client.close(1)

    assert {s["type"] for s in ingest.accepted_signals} >= {"Privacy.checked", "HTTP.request"}
    assert_no_canary(everything_received(ingest))
