"""td_web's Flask example: an app factory with blueprints, configured from the environment.

Run it (from the repository root) against a local collector::

    td-web collect --port 8787 &
    TELEMETRYDECK_APP_ID=B97579B6-FFB8-4AC5-AAA7-DA5796CC5DCE \\
    TELEMETRYDECK_ENDPOINT=http://127.0.0.1:8787 \\
        python -m flask --app example_projects/flask_app/app:create_app run

See README.md beside this file for gunicorn and waitress.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)

import td_web
from td_web.flask import TelemetryDeck

td = TelemetryDeck()
log = logging.getLogger("flask_example")

shop = Blueprint("shop", __name__, url_prefix="/shop")
api = Blueprint("api", __name__, url_prefix="/api")

#: Environment variables td_web itself reads (as strings) when the config does not set them.
READ_BY_TD_WEB = frozenset(
    "TELEMETRYDECK_" + name
    for name in ("APP_ID", "SALT", "ENDPOINT", "NAMESPACE", "TEST_MODE", "ENABLED", "APP_VERSION")
)

PRODUCTS = {
    1: {"id": 1, "name": "Paint remover", "price": 9.5},
    2: {"id": 2, "name": "Dog shampoo", "price": 12.0},
    3: {"id": 3, "name": "Cowboy hat", "price": 19.99},
}


@td.user_loader
def current_user_id() -> str | None:
    # The example's "login" keeps a name in Flask's session; td_web hashes it before sending.
    user = session.get("user")
    return str(user) if user else None


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("FLASK_SECRET_KEY", "example-only-not-secret")
    app.config.update(telemetry_config_from_environment())
    app.config.update(config or {})
    td.init_app(app)

    app.register_blueprint(shop)
    app.register_blueprint(api)
    app.add_url_rule("/", "index", index)
    app.add_url_rule("/login", "login", login, methods=["POST"])
    app.add_url_rule("/stream", "stream", stream)
    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/healthz", "healthz", healthz)
    return app


def telemetry_config_from_environment() -> dict[str, Any]:
    """Every other ``TELEMETRYDECK_*`` environment variable as a config key (JSON values such
    as ``0.5`` or ``false`` parsed). td_web reads the common ones itself (app id, endpoint,
    salt, namespace, test mode, enabled, app version); without an app id the example runs
    with td_web switched off."""
    config: dict[str, Any] = {}
    for key, raw in os.environ.items():
        if not key.startswith("TELEMETRYDECK_") or key in READ_BY_TD_WEB:
            continue
        try:
            config[key] = json.loads(raw)
        except ValueError:
            config[key] = raw
    if not os.environ.get("TELEMETRYDECK_APP_ID"):
        log.warning("TELEMETRYDECK_APP_ID is not set: the example runs without td_web")
        config["TELEMETRYDECK_ENABLED"] = False
    return config


# -- pages -----------------------------------------------------------------------------------


def index() -> str:
    return render_template("index.html", products=PRODUCTS.values(), user=session.get("user"))


def login() -> Response:
    session["user"] = request.form.get("name", "").strip() or None
    return redirect(url_for("index"), code=303)


@shop.get("/")
def catalogue() -> str:
    return render_template("shop.html", products=PRODUCTS.values())


@shop.post("/checkout")
def checkout() -> Response:
    items = [PRODUCTS[int(i)] for i in request.form.getlist("item") if int(i) in PRODUCTS]
    total = round(sum(item["price"] for item in items), 2)
    request.telemetry.signal(  # type: ignore[attr-defined]
        "Checkout.completed", {"Cart.items": len(items)}, float_value=total
    )
    return redirect(url_for("shop.catalogue"), code=303)


# -- the API ---------------------------------------------------------------------------------


@api.get("/items/<int:item_id>")
def item(item_id: int) -> dict[str, Any]:
    product = PRODUCTS.get(item_id)
    if product is None:
        abort(404)
    return product


# -- the rest --------------------------------------------------------------------------------


def stream() -> Response:
    """A streamed body: its request signal is timed to the last line."""
    count = min(int(request.args.get("lines", 5)), 100)
    delay = min(float(request.args.get("delay", 0.05)), 1.0)

    def lines() -> Iterator[str]:
        for number in range(count):
            yield f"line {number}\n"
            time.sleep(delay)
        td_web.current().signal("Stream.finished", {"Stream.lines": count})

    return Response(stream_with_context(lines()), mimetype="text/plain")


def boom() -> str:
    raise RuntimeError("the example's deliberate error")


def healthz() -> dict[str, str]:
    # A health-check path: td_web never tracks it (handy for readiness probes).
    return {"status": "ok"}
