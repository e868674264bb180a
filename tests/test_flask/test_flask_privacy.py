"""Privacy, tested with canaries: requests full of private values (a signed-in user whose id is
a canary, td_session, Flask session and other cookies, query strings, Referer queries, form and
JSON bodies, credentials, an exception message) go through a Flask app's test client, with each
of the adapter's user sources and session modes; nothing of them may reach the ingest server
but salted hashes."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import pytest
from conftest import APP_ID
from flask import Flask, Request, Response, request
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, current_user, login_user
from ingest_server import IngestServer
from privacy_canaries import (
    ALL_CANARIES,
    CANARY_VISIT_STATUSES,
    EXCEPTION_MESSAGE,
    FRAMEWORK_SESSION,
    PLANTED,
    QUERY,
    SESSION_TOKEN,
    USER_ID,
    CanaryRequest,
    IngestWindow,
    assert_canary_visit_arrived,
    assert_no_canary,
    assert_the_error_message_was_sent,
    assert_the_search_finds,
    canary_cookie_header,
    canary_request,
    canary_visit,
    everything_received,
    find_canaries,
)

from td_web import hash_client_user
from td_web._hashing import derive_session_id
from td_web.flask import TelemetryDeck, TelemetryRequest

SALT = "flask-privacy-salt"


class PaymentDeclined(Exception):
    pass


class CanaryUser(UserMixin):
    def get_id(self) -> str:
        return USER_ID


def _signed_in() -> bool:
    return "Authorization" in request.headers


def _with_user_loader(td: TelemetryDeck, app: Flask) -> dict[str, Any]:
    @td.user_loader
    def load_user_id() -> object:
        return USER_ID if _signed_in() else None

    return {}


def _with_client_user(td: TelemetryDeck, app: Flask) -> dict[str, Any]:
    def client_user(native: Request) -> object:
        return USER_ID if "Authorization" in native.headers else None

    return {"client_user": client_user, "cookieless": True}


def _with_flask_login(td: TelemetryDeck, app: Flask) -> dict[str, Any]:
    manager = LoginManager(app)

    @manager.user_loader
    def from_session(user_id: str) -> CanaryUser | None:
        return CanaryUser() if user_id == USER_ID else None

    @app.post("/login/")
    def login() -> str:
        login_user(CanaryUser())
        return "welcome"

    return {"session_from_cookie": "session"}


MODES: dict[str, Callable[[TelemetryDeck, Flask], dict[str, Any]]] = {
    "user-loader": _with_user_loader,
    "client-user-cookieless": _with_client_user,
    "flask-login-session-cookie": _with_flask_login,
}


def _app(ingest: IngestServer, mode: str = "user-loader", **options: Any) -> tuple[Flask, Any]:
    """The app, and its td_web client (to flush)."""
    td = TelemetryDeck()
    app = Flask(__name__)
    app.config.update(SECRET_KEY="flask-privacy", TELEMETRYDECK_HANDLE_SIGTERM=False)
    mode_options = MODES[mode](td, app)
    td.init_app(
        app,
        app_id=APP_ID,
        salt=SALT,
        endpoint=ingest.url,
        flush_interval=3600,
        **mode_options,
        **options,
    )

    def telemetry() -> Any:
        return cast(TelemetryRequest, request).telemetry

    def touch_user() -> bool:
        # What a view of a Flask-Login app does: load the user (td_web never loads it).
        return bool(current_user.is_authenticated) if mode.startswith("flask-login") else False

    @app.get("/page/")
    @app.get("/welcome/")
    def page() -> str:
        return f"<p>signed in: {touch_user()}</p>"

    @app.post("/form/")
    def form() -> Response:
        touch_user()
        return Response(f"got {len(request.form['password'])}", mimetype="text/plain")

    @app.post("/json/")
    def json_body() -> Response:
        touch_user()
        return Response(f"got {len(request.get_json())}", mimetype="text/plain")

    @app.get("/custom/")
    def custom() -> Response:
        touch_user()
        telemetry().signal("Privacy.checked", {"Cart.items": 3}, float_value=1.5)
        return Response("ok", mimetype="text/plain")

    @app.get("/planted/")
    def planted() -> Response:
        telemetry().signal("Privacy.planted", {"Note": f"sent on purpose: {PLANTED}"})
        return Response("ok", mimetype="text/plain")

    @app.get("/boom/")
    def boom() -> str:
        touch_user()
        raise PaymentDeclined(f"card declined: {EXCEPTION_MESSAGE}")

    return app, td.state_for(app).client


def _send(client: FlaskClient, request: CanaryRequest) -> int:
    response = client.open(
        request.url,
        method=request.method,
        headers=request.headers,
        data=request.body,
        content_type=request.content_type,
    )
    return response.status_code


@pytest.mark.parametrize("mode", list(MODES))
def test_no_canary_reaches_the_ingest_server(
    mode: str, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, td_client = _app(ingest, mode)
    session = FRAMEWORK_SESSION  # forged
    if mode.startswith("flask-login"):
        # Signed in for real: Flask's session cookie holds the user's id (a secret too).
        login = app.test_client()
        assert login.post("/login/").status_code == 200
        session = cast(Any, login.get_cookie("session")).value
    assert td_client.flush(5)
    window = IngestWindow(ingest)  # the canary requests' signals, not the login's
    cookie = canary_cookie_header(("session", session))
    signed_out = canary_cookie_header(("session", FRAMEWORK_SESSION))
    requests = canary_visit(cookie, signed_out, "localhost")
    client = app.test_client(use_cookies=False)
    statuses = [_send(client, r) for r in requests]
    assert td_client.flush(5)

    assert statuses == CANARY_VISIT_STATUSES
    signals = window.signals
    expected_user = hash_client_user(USER_ID, SALT)
    assert_canary_visit_arrived(signals, expected_user)
    if mode == "user-loader":
        sessions = Counter(s["sessionID"] for s in signals)
        assert sessions[derive_session_id(SESSION_TOKEN, SALT)] == len(signals)

    assert_no_canary(everything_received(ingest), (*ALL_CANARIES, session))
    assert [r for r in caplog.records if r.name == "td_web" and r.levelno >= 40] == []


def test_error_messages_are_sent_when_enabled_and_the_search_sees_them(
    ingest: IngestServer,
) -> None:
    """The opt-in that sends exception messages proves the search sees a canary that leaks."""
    app, td_client = _app(ingest, send_error_messages=True)
    assert _send(app.test_client(use_cookies=False), canary_request("/boom/")) == 500
    assert td_client.flush(5)

    assert_the_error_message_was_sent(ingest)


def test_the_search_finds_a_canary_a_view_sends_on_purpose(ingest: IngestServer) -> None:
    """Positive control: a custom signal carrying a canary is caught."""
    app, td_client = _app(ingest)
    assert _send(app.test_client(use_cookies=False), canary_request("/planted/")) == 200
    assert td_client.flush(5)

    assert_the_search_finds(PLANTED, ingest)


@pytest.mark.parametrize(
    ("sent", "form"),
    [
        pytest.param(QUERY, "raw", id="raw"),
        pytest.param(QUERY.lower(), "raw", id="other-case"),
        pytest.param("x" + QUERY.replace("-", "%2D"), "url-decoded", id="percent-encoded"),
        pytest.param("".join(f"\\u{ord(c):04x}" for c in QUERY), "json strings", id="u-escaped"),
        pytest.param("CANARY-query-7f", "marker", id="cut-short"),
        pytest.param(base64.b64encode(QUERY.encode()).decode(), "base64", id="base64"),
        pytest.param(hashlib.sha256(QUERY.encode()).hexdigest(), "unsalted sha256", id="sha256"),
    ],
)
def test_the_search_sees_encoded_and_partial_canaries(sent: str, form: str) -> None:
    """The helper itself, on a body as the ingest server would receive it."""
    body = ('[{"type": "x", "payload": {"value": "' + sent + '"}}]').encode()

    leaks = find_canaries([body])

    assert any(form in leak.form for leak in leaks), leaks
    assert find_canaries([b'[{"type": "x", "payload": {"value": "clean"}}]']) == []
