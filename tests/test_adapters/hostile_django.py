"""The echo app on Django, this module its ROOT_URLCONF: it echoes what Django made of the
request, which td_web must not change. The hostile-request tests compare its answers with
td_web (sending through a given client) and without."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import re_path
from td_django_helpers import MIDDLEWARE

from td_web import TelemetryDeck as Client


def _django_echo(request: HttpRequest) -> HttpResponse:
    meta = request.META
    facts = {
        "method": request.method,
        "path": request.path,
        "path_info": request.path_info,
        "GET": sorted(request.GET.lists()),
        "COOKIES": sorted(request.COOKIES.items()),
        "headers": [
            meta.get(name)
            for name in ("HTTP_ACCEPT_LANGUAGE", "HTTP_REFERER", "HTTP_SEC_GPC", "HTTP_USER_AGENT")
        ],
    }
    return HttpResponse(f"<pre>{facts!a}</pre>", content_type="text/html; charset=utf-8")


urlpatterns = [re_path(r"", _django_echo)]

#: Requests Django's handler answers itself, before any middleware runs: td_web never sees
#: them (ASGIRequest decodes the query string as UTF-8 and answers 400 when it is not).
DJANGO_ANSWERS_BEFORE_MIDDLEWARE = {"asgi-query-invalid-utf8-bytes"}


def _settings(client: Client | None) -> Any:
    return override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=MIDDLEWARE if client is not None else MIDDLEWARE[1:],
        TELEMETRYDECK={"CLIENT": client, "RESPECT_GPC": True},
    )


@contextmanager
def serve_django_wsgi(client: Client | None) -> Iterator[WSGIHandler]:
    with _settings(client):
        yield WSGIHandler()


@contextmanager
def serve_django_asgi(client: Client | None) -> Iterator[ASGIHandler]:
    with _settings(client):
        yield ASGIHandler()
