"""The apps as real servers load them (``latency.py`` starts the servers).

    uvicorn --app-dir bench --factory _served:starlette_app
    gunicorn --chdir bench "_served:flask_app()"
    gunicorn --chdir bench "_served:django_app()"

Each framework serves ``/items/{item_id}`` as one of two views, chosen by ``BENCH_VIEW``:

* ``hello`` (the default): a line of HTML, nothing else;
* ``page``: a realistic view: one SQLite query (the item and its category's other items, from
  a small table the process creates at start) rendered into a small HTML page through the
  framework's template engine (Jinja2 for Starlette and Flask, Django's for Django).

``BENCH_TD_WEB=1`` adds td_web, configured from the ``TELEMETRYDECK_*`` environment variables
(app id, salt, endpoint) exactly as a deployed app would be. ``GET /healthz`` answers td_web's
counters in this process (queued, sent, dropped) as JSON, for the delivered share: td_web
skips health-check paths by default, so asking adds no signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from typing import Any

from _worker import _td_web_counters

VIEWS = ("hello", "page")
COUNTERS_PATH = "/healthz"
PRODUCTS = 200
CATEGORIES = 10

# One template for both engines: Jinja2 and Django read this subset the same way.
PAGE_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ item.name }} · Bench Shop</title></head>
<body>
<header><nav><a href="/">Home</a> · <a href="/items/">All items</a></nav></header>
<main>
<h1>{{ item.name }}</h1>
<p class="price">{{ item.price }} EUR</p>
<p>{{ item.description }}</p>
<h2>More in this category</h2>
<ul>
{% for other in related %}  <li><a href="/items/{{ other.id }}">{{ other.name }}</a>
    ({{ other.price }} EUR)</li>
{% endfor %}</ul>
</main>
<footer>© Bench Shop</footer>
</body>
</html>
"""

QUERY = (
    "SELECT id, name, price, description, category FROM products "
    "WHERE category = (SELECT category FROM products WHERE id = ?) ORDER BY id LIMIT 11"
)


def _with_td_web() -> bool:
    return os.environ.get("BENCH_TD_WEB") == "1"


def _view() -> str:
    view = os.environ.get("BENCH_VIEW", "hello")
    if view not in VIEWS:
        raise ValueError(f"BENCH_VIEW={view!r}; one of {', '.join(VIEWS)}")
    return view


def _sender_cpu_seconds() -> float:
    """CPU time of td_web's sender threads so far (the rest of the server's CPU is the
    request path and the server itself)."""
    total = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith("td_web") and thread.ident is not None:
            with contextlib.suppress(OSError):  # it ended meanwhile
                total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return total


def _counters_json() -> str:
    counters = _td_web_counters()
    if counters is None:
        return "{}"
    return json.dumps({**counters, "sender_cpu_s": _sender_cpu_seconds()})


def _experiment() -> None:
    # An experiment knob, not a deployment setting: the interpreter's thread switch interval
    # decides how long the event loop may wait for the lock the sender thread holds.
    interval = os.environ.get("BENCH_SWITCH_INTERVAL")
    if interval:
        sys.setswitchinterval(float(interval))


def _create_database() -> str:
    """A small products table in a file of this process's own, filled once at start."""
    path = os.path.join(tempfile.mkdtemp(prefix="td-web-bench-"), "shop.sqlite3")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price TEXT, "
            "description TEXT, category INTEGER)"
        )
        connection.execute("CREATE INDEX products_category ON products (category)")
        connection.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?, ?)",
            [
                (n, f"Item {n}", f"{n % 97 + 0.99:.2f}", f"The description of item {n}.", n % 10)
                for n in range(1, PRODUCTS + 1)
            ],
        )
    return path


def _page_context(rows: list[tuple[Any, ...]], item_id: int) -> dict[str, Any]:
    products = [
        {"id": row[0], "name": row[1], "price": row[2], "description": row[3]} for row in rows
    ]
    item = next((p for p in products if p["id"] == item_id), products[0])
    return {"item": item, "related": [p for p in products if p is not item][:10]}


class _Shop:
    """The SQLite file and one connection per thread (gthread serves from several)."""

    def __init__(self) -> None:
        self.path = _create_database()
        self._local = threading.local()

    def rows(self, item_id: int) -> list[tuple[Any, ...]]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = sqlite3.connect(self.path)
        return list(connection.execute(QUERY, (item_id,)))


def starlette_app() -> Any:
    _experiment()
    import jinja2
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    async def hello(request: Request) -> HTMLResponse:
        return HTMLResponse(f"<p>item {request.path_params['item_id']}</p>")

    shop = _Shop() if _view() == "page" else None
    template = jinja2.Environment(autoescape=True).from_string(PAGE_TEMPLATE)

    async def page(request: Request) -> HTMLResponse:
        assert shop is not None
        item_id = request.path_params["item_id"]
        return HTMLResponse(template.render(_page_context(shop.rows(item_id), item_id)))

    async def counters(request: Request) -> Response:
        return Response(_counters_json(), media_type="application/json")

    routes = [
        Route("/items/{item_id:int}", page if shop else hello),
        Route(COUNTERS_PATH, counters),
    ]
    app = Starlette(routes=routes)
    if _with_td_web():
        from td_web.asgi import TelemetryDeckMiddleware

        app.add_middleware(TelemetryDeckMiddleware)
    return app


def flask_app() -> Any:
    _experiment()
    import jinja2
    from flask import Flask, render_template

    app = Flask("bench")
    # A loaded template, compiled once and cached, as from an app's templates folder.
    app.jinja_loader = jinja2.DictLoader({"item.html": PAGE_TEMPLATE})
    shop = _Shop() if _view() == "page" else None

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        if shop is None:
            return f"<p>item {item_id}</p>"
        return render_template("item.html", **_page_context(shop.rows(item_id), item_id))

    @app.get(COUNTERS_PATH)
    def counters() -> tuple[str, int, dict[str, str]]:
        return _counters_json(), 200, {"Content-Type": "application/json"}

    if _with_td_web():
        from td_web.flask import TelemetryDeck

        TelemetryDeck().init_app(app)
    return app


def django_app() -> Any:
    _experiment()
    import django
    from django.conf import settings
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    page = _view() == "page"
    options: dict[str, Any] = {
        "DEBUG": False,
        "SECRET_KEY": "bench-only-not-secret",
        "ALLOWED_HOSTS": ["*"],
        "ROOT_URLCONF": __name__,
        # CommonMiddleware (in every new project) sets Content-Length; without it gunicorn
        # would answer chunked.
        "MIDDLEWARE": [
            *(["td_web.django.TelemetryDeckMiddleware"] if _with_td_web() else []),
            "django.middleware.common.CommonMiddleware",
        ],
        "INSTALLED_APPS": [],
        "USE_TZ": True,
        "LOGGING_CONFIG": None,
        "TEMPLATES": [{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    }
    if page:
        options["DATABASES"] = {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _create_database()}
        }
    settings.configure(**options)
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.template import engines

    template = engines["django"].from_string(PAGE_TEMPLATE)

    def item(request: HttpRequest, item_id: int) -> HttpResponse:
        if not page:
            return HttpResponse(f"<p>item {item_id}</p>")
        with connection.cursor() as cursor:
            cursor.execute(QUERY, [item_id])
            rows = cursor.fetchall()
        return HttpResponse(template.render(_page_context(rows, item_id), request))

    def counters(request: HttpRequest) -> HttpResponse:
        return HttpResponse(_counters_json(), content_type="application/json")

    # This module is the URLconf: Django reads ``urlpatterns`` from it.
    sys.modules[__name__].urlpatterns = [  # type: ignore[attr-defined]
        path("items/<int:item_id>", item),
        path(COUNTERS_PATH[1:], counters),
    ]
    return WSGIHandler()
