"""The request's user: td.user_loader, Flask-Login's current_user, the client_user option."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from td_web import hash_client_user
from td_web.flask import TelemetryDeck
from td_web.testing import CapturedSignals

MakeApp = Callable[..., Flask]


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def flask_login_app(make_app: MakeApp, loads: list[str]) -> Flask:
    app = make_app()
    manager = LoginManager(app)

    @manager.user_loader
    def load(user_id: str) -> User:
        loads.append(user_id)  # stands for the database query
        return User(user_id)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        login_user(User(name))
        request.telemetry.signal("User.loggedIn")  # type: ignore[attr-defined]
        return "in"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "out"

    @app.get("/profile")
    def profile() -> str:
        return f"hello {current_user.get_id()}"  # the view loads the user itself

    @app.get("/plain")
    def plain() -> str:
        return "no user needed"

    return app


def users(signals: CapturedSignals, signal_type: str) -> list[str | None]:
    return [s.get("clientUser") for s in signals.of_type(signal_type)]


def test_flask_login_user_without_an_extra_user_query(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    loads: list[str] = []
    client = flask_login_app(make_app, loads).test_client()
    ada = hash_client_user("ada")

    client.post("/login/ada")
    assert users(td_signals, "User.loggedIn") == [ada]
    td_signals.clear()

    client.get("/plain")
    assert users(td_signals, "pageView") == [ada]
    assert loads == []  # the id came from Flask-Login's session entry, no user query

    client.get("/profile")
    assert loads == ["ada"]  # the view's own load, and only that one
    assert users(td_signals, "pageView") == [ada, ada]


def test_flask_login_anonymous_and_logged_out_users_are_anonymous(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    client = flask_login_app(make_app, []).test_client()
    client.get("/profile")
    client.post("/login/ada")
    client.post("/logout")
    client.get("/plain")
    requests = [s for s in td_signals if s["type"] in ("pageView", "HTTP.request")]
    assert [hash_client_user("ada") == s["clientUser"] for s in requests] == [
        False,
        True,  # the login request ends with the user signed in
        False,  # the logout request ends signed out
        False,
    ]
    # Anonymous requests of one session share one anonymous clientUser.
    assert requests[0]["clientUser"] == requests[-1]["clientUser"]


def test_user_loader_decorator_wins_over_flask_login(
    make_app: MakeApp, td: TelemetryDeck, td_signals: CapturedSignals
) -> None:
    @td.user_loader
    def load_user() -> str | None:
        return session.get("account")

    app = flask_login_app(make_app, [])

    @app.post("/account/<name>")
    def account(name: str) -> str:
        session["account"] = name
        return "ok"

    client = app.test_client()
    client.post("/login/ada")
    client.post("/account/acct-42")
    client.get("/plain")
    assert users(td_signals, "pageView")[-1] == hash_client_user("acct-42")


def test_user_loader_may_be_registered_after_init_app(
    make_app: MakeApp, td: TelemetryDeck, td_signals: CapturedSignals
) -> None:
    app = make_app()
    app.add_url_rule("/", "index", lambda: "ok")

    @td.user_loader
    def load_user() -> str:
        return request.headers.get("X-User", "")

    app.test_client().get("/", headers={"X-User": "grace"})
    assert users(td_signals, "pageView") == [hash_client_user("grace")]


def test_client_user_option_gets_the_flask_request(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    def client_user(native: Any) -> str | None:
        return native.headers.get("X-Account")

    app = make_app(client_user=client_user)
    app.add_url_rule("/", "index", lambda: "ok")
    app.test_client().get("/", headers={"X-Account": "team-7"})
    assert users(td_signals, "pageView") == [hash_client_user("team-7")]


def test_a_failing_user_loader_sends_the_request_as_anonymous(
    make_app: MakeApp,
    td: TelemetryDeck,
    td_signals: CapturedSignals,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @td.user_loader
    def broken() -> str:
        raise LookupError("the user store is down")

    app = make_app()
    app.add_url_rule("/", "index", lambda: "ok")
    response = app.test_client().get("/")
    assert response.status_code == 200
    td_signals.one("pageView")
    assert "looking up the request's user failed" in caplog.text


def test_the_user_of_a_streamed_response_is_known_after_the_request_context(
    make_app: MakeApp, td: TelemetryDeck, td_signals: CapturedSignals
) -> None:
    @td.user_loader
    def load_user() -> str | None:
        return request.headers.get("X-User")

    app = make_app()

    @app.get("/stream")
    def stream() -> Any:
        def body() -> Any:
            yield "a"
            # No request context here (no stream_with_context): the user was kept.
            request_telemetry.signal("Stream.chunk")
            yield "b"

        request_telemetry = request.telemetry  # type: ignore[attr-defined]
        return app.response_class(body(), mimetype="text/plain")

    response = app.test_client().get("/stream", headers={"X-User": "lin"})
    assert response.text == "ab"
    response.close()
    assert users(td_signals, "Stream.chunk") == [hash_client_user("lin")]
    assert users(td_signals, "HTTP.request") == [hash_client_user("lin")]


def test_strict_request_signals_raise_in_the_view(
    make_app: MakeApp, td_signals: CapturedSignals
) -> None:
    from td_web import SignalError

    app = make_app(strict=True)
    raised: list[str] = []

    @app.get("/")
    def index() -> str:
        try:
            request.telemetry.signal("")  # type: ignore[attr-defined]
        except SignalError as error:
            raised.append(str(error))
        return "ok"

    assert app.test_client().get("/").status_code == 200
    assert len(raised) == 1
    assert td_signals.types() == ["TelemetryDeck.Session.started", "pageView"]
