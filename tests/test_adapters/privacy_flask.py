"""The canary site on Flask, through its test client, with each of the adapter's user sources
(``@td.user_loader``, the ``client_user`` option, Flask-Login signed in for real) and session
modes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from conftest import APP_ID
from flask import Flask, Request, Response, request
from flask_login import LoginManager, UserMixin, current_user, login_user
from ingest_server import IngestServer
from privacy_canaries import (
    EXCEPTION_MESSAGE,
    FRAMEWORK_SESSION,
    PLANTED,
    USER_ID,
    CanaryRequest,
    canary_cookie_header,
    canary_visit,
)
from test_adapters.privacy_site import EVERY_SIGNAL, CanaryVisit

from td_web.flask import TelemetryDeck, TelemetryRequest

SALT = "flask-privacy-salt"


class PaymentDeclined(Exception):
    pass


class CanaryUser(UserMixin):
    def get_id(self) -> str:
        return USER_ID


def _with_user_loader(td: TelemetryDeck, app: Flask) -> dict[str, Any]:
    @td.user_loader
    def load_user_id() -> object:
        return USER_ID if "Authorization" in request.headers else None

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


def _app(ingest: IngestServer, mode: str, **options: Any) -> tuple[Flask, Any]:
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


class FlaskSite:
    salt = SALT

    def __init__(self, ingest: IngestServer, mode: str, **options: Any) -> None:
        self.mode = mode
        self.app, self.client = _app(ingest, mode, **options)
        self.browser = self.app.test_client(use_cookies=False)

    def send(self, request: CanaryRequest) -> int:
        response = self.browser.open(
            request.url,
            method=request.method,
            headers=request.headers,
            data=request.body,
            content_type=request.content_type,
        )
        return response.status_code

    def flush(self) -> bool:
        return bool(self.client.flush(5))

    def canary_visit(self) -> CanaryVisit:
        session = FRAMEWORK_SESSION  # forged
        if self.mode.startswith("flask-login"):
            # Signed in for real: Flask's session cookie holds the user's id (a secret too).
            login = self.app.test_client()
            assert login.post("/login/").status_code == 200
            session = cast(Any, login.get_cookie("session")).value
        assert self.flush()
        cookie = canary_cookie_header(("session", session))
        signed_out = canary_cookie_header(("session", FRAMEWORK_SESSION))
        return CanaryVisit(
            canary_visit(cookie, signed_out, "localhost"),
            USER_ID,
            secrets=(session,),
            token_sessions=EVERY_SIGNAL if self.mode == "user-loader" else None,
        )


@contextmanager
def open_site(ingest: IngestServer, mode: str | None = None, **options: Any) -> Iterator[Any]:
    site = FlaskSite(ingest, mode or next(iter(MODES)), **options)
    try:
        yield site
    finally:
        site.client.close(5)  # its sender's thread ends with the site
