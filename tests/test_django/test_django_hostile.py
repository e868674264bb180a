"""Hostile requests through Django's real handlers: huge and malformed headers, invalid and
forged cookies, odd Accept-Language, Referer and Host values, invalid UTF-8 in paths, under
WSGI (PEP 3333 latin-1 environ, and surrogate-escaped as some servers build it) and ASGI (raw
bytes). Each is answered exactly as the same site answers it without td_web; td_web logs no
error, drops nothing, and what it sends passes the collector's validation.

This module is its own ROOT_URLCONF: one catch-all view that echoes what Django parsed."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import re_path
from ingest_server import IngestServer
from privacy_canaries import (
    HostileRequest,
    IngestWindow,
    asgi_cases,
    asgi_scope,
    call_asgi,
    call_wsgi,
    check_hostile_outcome,
    wsgi_cases,
    wsgi_environ,
)
from td_django_helpers import MIDDLEWARE

from td_web import TelemetryDeck


def echo(request: HttpRequest) -> HttpResponse:
    """What Django made of the request: td_web must not change any of it."""
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


urlpatterns = [re_path(r"", echo)]

#: Requests Django's handler answers itself, before any middleware runs: td_web never sees
#: them (ASGIRequest decodes the query string as UTF-8 and answers 400 when it is not).
ANSWERED_BEFORE_MIDDLEWARE = {"asgi-query-invalid-utf8-bytes"}


def _settings(client: TelemetryDeck, with_td_web: bool) -> dict[str, Any]:
    return {
        "ROOT_URLCONF": __name__,
        "MIDDLEWARE": MIDDLEWARE if with_td_web else MIDDLEWARE[1:],
        "TELEMETRYDECK": {"CLIENT": client, "RESPECT_GPC": True},
    }


@pytest.mark.parametrize(("case", "decoding"), wsgi_cases())
def test_hostile_request_under_wsgi(
    case: HostileRequest,
    decoding: Any,
    module_ingest: IngestServer,
    module_client: TelemetryDeck,
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = IngestWindow(module_ingest)
    outcomes = {}
    for with_td_web in (False, True):
        with override_settings(**_settings(module_client, with_td_web)):
            outcomes[with_td_web] = call_wsgi(WSGIHandler(), wsgi_environ(case, decoding))

    check_hostile_outcome(
        case,
        outcomes[True],
        outcomes[False],
        module_client,
        window,
        caplog.records,
        seen_by_td_web=case.id not in ANSWERED_BEFORE_MIDDLEWARE,
    )


@pytest.mark.parametrize("case", asgi_cases())
async def test_hostile_request_under_asgi(
    case: HostileRequest,
    module_ingest: IngestServer,
    module_client: TelemetryDeck,
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = IngestWindow(module_ingest)
    outcomes = {}
    for with_td_web in (False, True):
        with override_settings(**_settings(module_client, with_td_web)):
            outcomes[with_td_web] = await call_asgi(ASGIHandler(), asgi_scope(case))

    check_hostile_outcome(
        case,
        outcomes[True],
        outcomes[False],
        module_client,
        window,
        caplog.records,
        seen_by_td_web=case.id not in ANSWERED_BEFORE_MIDDLEWARE,
    )
