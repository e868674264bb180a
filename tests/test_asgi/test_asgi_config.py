"""Options, users, StaticFiles exclusion, and the flush at lifespan shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ingest_server import IngestServer, Reply
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from test_asgi.asgi_support import APP_ID, ASGIServer, TestClient, http_scope

from td_web import ConfigurationError, TelemetryDeck, hash_client_user
from td_web.asgi import TelemetryDeckMiddleware
from td_web.testing import CapturedSignals

SALT = "pepper-for-tests"


def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


# -- options ----------------------------------------------------------------------------------


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigurationError, match="flush_intervall"):
        TelemetryDeckMiddleware(_ok, app_id=APP_ID, flush_intervall=1)


def test_options_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, td_signals: CapturedSignals
) -> None:
    monkeypatch.setenv("TELEMETRYDECK_APP_ID", APP_ID)
    monkeypatch.setenv("TELEMETRYDECK_SALT", SALT)
    middleware = TelemetryDeckMiddleware(Starlette(routes=[Route("/", _ok)]))
    assert middleware.client.config.app_id == APP_ID
    assert middleware.client.config.salt == SALT


def test_web_options_are_keyword_arguments(td_signals: CapturedSignals) -> None:
    app = Starlette(routes=[Route("/private/{x}", _ok), Route("/public", _ok)])
    middleware = TelemetryDeckMiddleware(
        app,
        app_id=APP_ID,
        exclude_paths=["/private/"],
        request_signal="Web.hit",
        session_cookie_name="visit",
        flush_interval=0.5,
    )
    assert middleware.client.config.flush_interval == 0.5
    client = TestClient(middleware)
    client.get("/private/1")
    response = client.get("/public")
    assert td_signals.types() == ["TelemetryDeck.Session.started", "Web.hit"]
    assert response.headers["set-cookie"].startswith("visit=")


def test_an_existing_client_is_reused(td_signals: CapturedSignals) -> None:
    client = TelemetryDeck(app_id=APP_ID, namespace="com.example.shop")
    middleware = TelemetryDeckMiddleware(Starlette(routes=[Route("/", _ok)]), client=client)
    assert middleware.client is client
    with pytest.raises(ConfigurationError, match="not both"):
        TelemetryDeckMiddleware(_ok, client=client, salt="x")


def test_test_mode_follows_starlette_debug(td_signals: CapturedSignals) -> None:
    debug = TelemetryDeckMiddleware(Starlette(debug=True), app_id=APP_ID)
    production = TelemetryDeckMiddleware(Starlette(debug=False), app_id=APP_ID)
    explicit = TelemetryDeckMiddleware(Starlette(debug=True), app_id=APP_ID, test_mode=False)
    assert debug.client.config.test_mode is True
    assert production.client.config.test_mode is False
    assert explicit.client.config.test_mode is False


def test_exclude_callable_receives_a_starlette_request(td_signals: CapturedSignals) -> None:
    seen: list[object] = []

    def exclude(request: Request) -> bool:
        seen.append(request)
        return request.headers.get("x-synthetic") == "1"

    client = TestClient(
        TelemetryDeckMiddleware(Starlette(routes=[Route("/", _ok)]), app_id=APP_ID, exclude=exclude)
    )
    client.get("/", headers={"x-synthetic": "1"})
    client.get("/")
    assert all(isinstance(request, Request) for request in seen)
    assert len(td_signals.of_type("HTTP.request")) == 1


# -- users ------------------------------------------------------------------------------------


class HeaderAuth(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        name = conn.headers.get("x-user")
        if name is None:
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(name)


def authenticated_app(**options: Any) -> Starlette:
    async def whoami(request: Request) -> Response:
        request.state.telemetry.signal("Profile.viewed")
        return PlainTextResponse(request.user.display_name)

    return Starlette(
        routes=[Route("/me", whoami)],
        middleware=[
            Middleware(TelemetryDeckMiddleware, app_id=APP_ID, salt=SALT, **options),
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
        ],
    )


def test_user_from_starlette_authentication_is_hashed(td_signals: CapturedSignals) -> None:
    client = TestClient(authenticated_app())
    assert client.get("/me", headers={"x-user": "alice"}).text == "alice"
    expected = hash_client_user("alice", SALT)
    assert td_signals.one("Profile.viewed")["clientUser"] == expected
    assert td_signals.one("HTTP.request")["clientUser"] == expected
    assert "alice" not in str(td_signals.all)


def test_a_custom_signal_from_an_excluded_request_after_its_end_keeps_the_user(
    td_signals: CapturedSignals,
) -> None:
    """An excluded request holds its request and user lookup weakly once it ends (no
    reference cycle left behind); a background task running after the response, with the
    request still alive, still signals as the request's user."""

    def audit(request: Request) -> None:
        request.state.telemetry.signal("Health.audited")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(audit, request))

    app = Starlette(
        routes=[Route("/health-check", health)],
        middleware=[
            Middleware(
                TelemetryDeckMiddleware, app_id=APP_ID, salt=SALT, exclude_paths=["/health-check"]
            ),
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
        ],
    )
    assert TestClient(app).get("/health-check", headers={"x-user": "carol"}).text == "ok"
    assert td_signals.types() == ["Health.audited"]
    assert td_signals.one("Health.audited")["clientUser"] == hash_client_user("carol", SALT)


def test_unauthenticated_requests_are_anonymous(td_signals: CapturedSignals) -> None:
    client = TestClient(authenticated_app())
    client.get("/me")
    client.get("/me", headers={"x-user": "bob"})
    anonymous, signed_in = td_signals.of_type("HTTP.request")
    assert anonymous["clientUser"] != hash_client_user("", SALT)
    assert signed_in["clientUser"] == hash_client_user("bob", SALT)


def test_client_user_callable_wins(td_signals: CapturedSignals) -> None:
    def account_of(request: Request) -> str | None:
        return request.headers.get("x-account")

    client = TestClient(authenticated_app(client_user=account_of))
    client.get("/me", headers={"x-user": "alice", "x-account": "acct-7"})
    assert td_signals.one("HTTP.request")["clientUser"] == hash_client_user("acct-7", SALT)


# -- StaticFiles mounts -----------------------------------------------------------------------


@pytest.mark.parametrize("style", ["wrapped", "add_middleware"])
def test_staticfiles_mounts_are_excluded(
    style: str, tmp_path: Path, td_signals: CapturedSignals
) -> None:
    (tmp_path / "app.css").write_text("body {}")
    app: Any = Starlette(
        routes=[
            Route("/", _ok),
            Mount("/assets", app=StaticFiles(directory=tmp_path)),
            Mount("/docs", routes=[Mount("/files", app=StaticFiles(directory=tmp_path))]),
        ]
    )
    if style == "wrapped":
        app = TelemetryDeckMiddleware(app, app_id=APP_ID)
    else:
        app.add_middleware(TelemetryDeckMiddleware, app_id=APP_ID)
    client = TestClient(app)
    assert client.get("/assets/app.css").text == "body {}"
    assert client.get("/docs/files/app.css").text == "body {}"
    assert "set-cookie" not in client.get("/assets/app.css").headers
    client.get("/")
    assert [p["path"] for p in td_signals.payloads("HTTP.request")] == ["/"]


# -- flushing at lifespan shutdown ------------------------------------------------------------


async def test_lifespan_shutdown_flushes_before_the_server_is_told(ingest: IngestServer) -> None:
    """With a 60 s flush interval only the shutdown flush can deliver the signals, and it has
    delivered them by the time the server hears shutdown.complete."""
    middleware = TelemetryDeckMiddleware(
        Starlette(routes=[Route("/", _ok)]),
        app_id=APP_ID,
        endpoint=ingest.url,
        flush_interval=60,
    )
    for _ in range(3):
        await ASGIServer().run(middleware, http_scope("/"))
    delivered_at_complete: list[int] = []
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Any:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            delivered_at_complete.append(len(ingest.accepted_signals))

    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    # Three cookieless requests: three session starts and three requests.
    assert delivered_at_complete == [6]
    middleware.client.close()


async def test_shutdown_flush_does_not_block_the_event_loop(ingest: IngestServer) -> None:
    ingest.script(Reply(delay=1.0))
    middleware = TelemetryDeckMiddleware(
        Starlette(routes=[Route("/", _ok)]), app_id=APP_ID, endpoint=ingest.url, flush_interval=60
    )
    await ASGIServer().run(middleware, http_scope("/"))
    ticks = 0
    flushing = True

    async def ticker() -> None:
        nonlocal ticks
        while flushing:
            ticks += 1
            await asyncio.sleep(0.01)

    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    ticks_at_complete: list[int] = []

    async def receive() -> Any:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            ticks_at_complete.append(ticks)

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    start_ticks = ticks
    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    flushing = False
    await ticking
    assert len(ingest.accepted_signals) == 2
    # The loop kept running other tasks while the flush waited for the slow ingest server.
    assert ticks_at_complete[0] > start_ticks + 1
    middleware.client.close()


def _job_done_after_an_excluded_request(user: str, *inner: Middleware, **options: Any) -> None:
    """A job an excluded request started (given its helper, not the request) sends
    ``Job.done`` once the request is gone."""
    jobs: list[Any] = []

    async def start_job(request: Request) -> Response:
        jobs.append(request.state.telemetry)
        return PlainTextResponse("started")

    td_middleware = Middleware(
        TelemetryDeckMiddleware, app_id=APP_ID, salt=SALT, exclude_paths=["/start-job"], **options
    )
    app = Starlette(
        routes=[Route("/start-job", start_job, methods=["POST"])],
        middleware=[td_middleware, *inner],
    )
    assert TestClient(app).post("/start-job", headers={"x-user": user}).text == "started"
    jobs[0].signal("Job.done")  # later, on the job's thread: the request has ended


def test_a_custom_signal_after_an_excluded_request_ended_asks_client_user_with_its_request(
    td_signals: CapturedSignals,
) -> None:
    """``client_user`` is still given Starlette's request (README: "a callable given the
    request"), never None."""
    given: list[str] = []

    def user_of(request: Any) -> str:
        given.append(type(request).__name__)  # (the request itself is not kept here)
        return str(request.headers["x-user"])

    _job_done_after_an_excluded_request("dana", client_user=user_of)
    assert given == ["Request"]
    assert td_signals.one("Job.done")["clientUser"] == hash_client_user("dana", SALT)


def test_a_custom_signal_after_an_excluded_request_ended_keeps_its_user(
    td_signals: CapturedSignals,
) -> None:
    """The job's signal still carries the request's user (scope["user"]), as a job from a
    tracked request does, not an anonymous visitor's id."""
    _job_done_after_an_excluded_request(
        "erin", Middleware(AuthenticationMiddleware, backend=HeaderAuth())
    )
    assert td_signals.one("Job.done")["clientUser"] == hash_client_user("erin", SALT)
