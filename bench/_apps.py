"""The hello-world apps: one parametrised route, ``/items/{item_id}``, answering a line of HTML
(so td_web's automatic signal is a page view, its most expensive kind), with a variant applied.

``build(framework, variant, sink)`` returns a driver (see :mod:`_drive`) ready to be timed.
Each app is built once per process: the SDKs under test patch frameworks and install global
providers, so every (framework, variant) pair runs in a process of its own.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from _drive import ASGIDriver, WSGIDriver
from _variants import Variant

try:  # FastAPI resolves the view's annotations in this module's globals
    from starlette.requests import Request
except ImportError:  # pragma: no cover - the bench extra installs it
    Request = Any  # type: ignore[assignment,misc]

FRAMEWORKS = ("starlette", "fastapi", "flask", "django-wsgi", "django-asgi")
SIGNAL = "Item.viewed"

Driver = ASGIDriver | WSGIDriver


def build(framework: str, variant: Variant, sink: str) -> Driver:
    variant.setup(sink, framework)
    if framework in ("starlette", "fastapi"):
        return _starlette(framework, variant, sink)
    if framework == "flask":
        return _flask(variant, sink)
    if framework in ("django-wsgi", "django-asgi"):
        return _django(framework == "django-asgi", variant, sink)
    raise ValueError(f"unknown framework {framework!r}; one of {', '.join(FRAMEWORKS)}")


def _starlette(framework: str, variant: Variant, sink: str) -> Driver:
    from starlette.responses import HTMLResponse

    signal = variant.custom_signal
    app: Any
    if framework == "fastapi":
        from fastapi import FastAPI

        app = FastAPI()

        @app.get("/items/{item_id}", response_class=HTMLResponse)
        async def fastapi_item(item_id: int, request: Request) -> str:
            if signal:
                request.state.telemetry.signal(SIGNAL, {"Item.id": item_id})
            return f"<p>item {item_id}</p>"

    else:
        from starlette.applications import Starlette
        from starlette.routing import Route

        async def item(request: Request) -> HTMLResponse:
            item_id = request.path_params["item_id"]
            if signal:
                request.state.telemetry.signal(SIGNAL, {"Item.id": item_id})
            return HTMLResponse(f"<p>item {item_id}</p>")

        app = Starlette(routes=[Route("/items/{item_id:int}", item)])
    variant.asgi(app, sink, framework)
    driver = ASGIDriver(app)
    driver.start_lifespan()
    variant.loop_started(driver)
    return driver


def _flask(variant: Variant, sink: str) -> Driver:
    from flask import Flask, request

    app = Flask("bench")
    signal = variant.custom_signal

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        if signal:
            request.telemetry.signal(SIGNAL, {"Item.id": item_id})  # type: ignore[attr-defined]
        return f"<p>item {item_id}</p>"

    variant.flask(app, sink)
    return WSGIDriver(app)


def _django(asgi: bool, variant: Variant, sink: str) -> Driver:
    import django
    from django.conf import settings
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    signal = variant.custom_signal

    def item(request: HttpRequest, item_id: int) -> HttpResponse:
        if signal:
            request.telemetry.signal(SIGNAL, {"Item.id": item_id})  # type: ignore[attr-defined]
        return HttpResponse(f"<p>item {item_id}</p>")

    async def async_item(request: HttpRequest, item_id: int) -> HttpResponse:
        return item(request, item_id)

    # An async view under ASGI: a sync one would cost every variant a thread hop.
    urls = types.ModuleType("bench_urls")
    urls.urlpatterns = [path("items/<int:item_id>", async_item if asgi else item)]  # type: ignore[attr-defined]
    sys.modules["bench_urls"] = urls
    options: dict[str, Any] = {
        "DEBUG": False,
        "SECRET_KEY": "bench-only-not-secret",
        "ALLOWED_HOSTS": ["*"],
        "ROOT_URLCONF": "bench_urls",
        "MIDDLEWARE": [],
        "INSTALLED_APPS": [],
        "USE_TZ": True,
        "LOGGING_CONFIG": None,
    }
    variant.django_settings(options, sink)
    settings.configure(**options)
    variant.django_ready(sink)
    django.setup()
    if asgi:
        from django.core.handlers.asgi import ASGIHandler

        return ASGIDriver(ASGIHandler())
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIDriver(WSGIHandler())
