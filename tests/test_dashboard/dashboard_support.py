"""A Flask app in front of the real local ingest server, for the dashboard-key tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from conftest import APP_ID
from flask import Flask, Response, request
from ingest_server import IngestServer

from td_web import TelemetryDeck as Client
from td_web.flask import TelemetryDeck, TelemetryRequest

SALT = "dashboard-salt"
#: Every client ``dashboard_app`` built, oldest first, until ``close_clients`` closes it.
built: list[Client] = []


def close_clients(first: int = 0) -> None:
    """Close the clients built since the ``first``-th (their senders' threads end)."""
    while len(built) > first:
        built.pop().close(5)


def dashboard_app(
    ingest: IngestServer, flask_debug: bool = False, **options: Any
) -> tuple[Flask, Callable[[], bool]]:
    """The app and a ``flush()`` that waits until the ingest server has every signal."""
    td = TelemetryDeck()
    app = Flask(__name__)
    app.debug = flask_debug
    app.config.update(TELEMETRYDECK_HANDLE_SIGTERM=False)
    settings: dict[str, Any] = {"app_id": APP_ID, "salt": SALT, "flush_interval": 3600}
    settings.update(options)
    td.init_app(app, endpoint=ingest.url, **settings)

    @app.get("/")
    @app.get("/page/<name>")
    def page(name: str = "home") -> str:
        return f"<p>{name}</p>"

    @app.post("/buy")
    def buy() -> Response:
        telemetry = cast(TelemetryRequest, request).telemetry
        telemetry.purchase(
            12.5,
            purchase_type=request.args.get("type", "one-time-purchase"),
            country_code="DE",
            currency_code="EUR",
            product_id="pro-plan",
        )
        with telemetry.duration("Report.generated", {"Report.kind": "monthly"}):
            pass
        telemetry.error("Form.emailInvalid", category=request.args.get("category", "user-input"))
        return Response("ok", mimetype="text/plain")

    client = td.state_for(app).client
    built.append(client)

    def flush() -> bool:
        return client.flush(30)  # returns as soon as delivered; generous for a loaded machine

    return app, flush


def page_views(ingest: IngestServer) -> list[dict[str, Any]]:
    return [s for s in ingest.accepted_signals if s["type"] == "pageView"]
