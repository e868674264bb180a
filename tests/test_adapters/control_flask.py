"""The control site on Flask: each option a ``TELEMETRYDECK_*`` config key, requests made
with Flask's test client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

import integration_scenarios
from conftest import APP_ID
from control_scenarios import SALT, Reply
from flask import Flask, Request, request
from flask.testing import FlaskClient
from ingest_server import IngestServer

import td_web
from td_web.flask import TelemetryDeck

PAGE = "<p>page</p>"


def build_app(ingest: IngestServer, options: Mapping[str, Any]) -> Flask:
    app = Flask(__name__)
    config = {
        "APP_ID": APP_ID,
        "SALT": SALT,
        "ENDPOINT": ingest.url,
        "HANDLE_SIGTERM": False,
        **{name.upper(): value for name, value in options.items()},
    }
    for name, value in config.items():
        app.config[f"TELEMETRYDECK_{name}"] = value

    @app.get("/page")
    def page() -> str:
        return PAGE

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return PAGE

    @app.get("/custom")
    def custom() -> str:
        request.telemetry.signal("Custom.done")  # type: ignore[attr-defined]
        return PAGE

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/opt-out")
    def opt_out() -> str:
        request.telemetry.opt_out()  # type: ignore[attr-defined]
        return PAGE

    @app.get("/opt-in")
    def opt_in() -> str:
        request.telemetry.opt_in()  # type: ignore[attr-defined]
        return PAGE

    @app.get("/forget")
    def forget() -> Any:
        response = app.make_response(PAGE)
        td_web.opt_out(response)
        return response

    @app.get("/consent")
    def consent() -> Any:
        response = app.make_response(PAGE)
        td_web.opt_in(response)
        return response

    @app.get("/notes/<token>")
    def note(token: str) -> str:
        request.telemetry.signal("Custom.done")  # type: ignore[attr-defined]
        return PAGE

    @app.get("/public")
    def public() -> Any:
        return PAGE, {"Cache-Control": integration_scenarios.CACHE_CONTROL}

    @app.get("/public-opt-in")
    def public_opt_in() -> Any:
        request.telemetry.opt_in()  # type: ignore[attr-defined]
        return PAGE, {"Cache-Control": integration_scenarios.CACHE_CONTROL}

    TelemetryDeck(app)
    return app


class FlaskBrowser:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        headers = dict(headers or {})
        raw_cookie = headers.pop("Cookie", None)
        if raw_cookie is not None:
            # Werkzeug's client writes the Cookie header from its jar only.
            name, _, value = raw_cookie.partition("=")
            self.client.set_cookie(name, value)
        response = self.client.get(path, headers=headers)
        return Reply(response.status_code, response.headers.getlist("Set-Cookie"))

    def cookie(self, name: str) -> str | None:
        found = self.client.get_cookie(name)
        return None if found is None else found.value


class FlaskSite:
    request_type = Request

    def __init__(self, app: Flask) -> None:
        self.app = app

    def browser(self, client_addr: str = "127.0.0.1") -> FlaskBrowser:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = client_addr
        return FlaskBrowser(client)

    def flush(self) -> None:
        assert TelemetryDeck.state_for(self.app).client.flush(10)


def site_maker(ingest: IngestServer, stack: ExitStack) -> Callable[..., FlaskSite]:
    """``make(**options)``: a site with those options, torn down by ``stack``."""

    def make(**options: Any) -> FlaskSite:
        site = FlaskSite(build_app(ingest, options))
        stack.callback(lambda: TelemetryDeck.state_for(site.app).client.close(1))
        return site

    return make
