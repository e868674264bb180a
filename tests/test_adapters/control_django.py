"""The control site on Django: each option a key of ``settings.TELEMETRYDECK``, requests
made with Django's test client through the middleware.

This module is the site's ROOT_URLCONF (``urlpatterns`` below)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

import integration_scenarios
from control_scenarios import SALT, Reply
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path
from ingest_server import IngestServer
from td_django_helpers import APP_ID

import td_web
from td_web.django import TelemetryHttpRequest, get_web_telemetry

PAGE = "<p>page</p>"


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return HttpResponse(PAGE)


def custom(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.signal("Custom.done")
    return HttpResponse(PAGE)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def opt_out(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.opt_out()
    return HttpResponse(PAGE)


def opt_in(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.opt_in()
    return HttpResponse(PAGE)


def forget(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(PAGE)
    td_web.opt_out(response)
    return response


def consent(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(PAGE)
    td_web.opt_in(response)
    return response


def note(request: TelemetryHttpRequest, token: str) -> HttpResponse:
    request.telemetry.signal("Custom.done")
    return HttpResponse(PAGE)


def public(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE, headers={"Cache-Control": integration_scenarios.CACHE_CONTROL})


def public_opt_in(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.opt_in()
    return public(request)


urlpatterns = [
    path("notes/<str:token>", note),
    path("public", public),
    path("public-opt-in", public_opt_in),
    path("page", page),
    path("items/<int:item_id>", item),
    path("custom", custom),
    path("boom", boom),
    path("opt-out", opt_out),
    path("opt-in", opt_in),
    path("forget", forget),
    path("consent", consent),
]


class DjangoBrowser:
    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        response = self.client.get(path, headers=dict(headers or {}))
        return Reply(
            response.status_code, [morsel.OutputString() for morsel in response.cookies.values()]
        )

    def cookie(self, name: str) -> str | None:
        morsel = self.client.cookies.get(name)
        return None if morsel is None else morsel.value


class DjangoSite:
    request_type = HttpRequest

    def browser(self, client_addr: str = "127.0.0.1") -> DjangoBrowser:
        return DjangoBrowser(Client(raise_request_exception=False, REMOTE_ADDR=client_addr))

    def flush(self) -> None:
        assert get_web_telemetry().client.flush(10)


def site_maker(ingest: IngestServer, stack: ExitStack) -> Callable[..., DjangoSite]:
    """``make(**options)``: a site with those options, torn down by ``stack``."""

    def make(**options: Any) -> DjangoSite:
        telemetrydeck = {
            "APP_ID": APP_ID,
            "SALT": SALT,
            "ENDPOINT": ingest.url,
            "HANDLE_SIGTERM": False,
            "SHUTDOWN_TIMEOUT": 1,
            **{name.upper(): value for name, value in options.items()},
        }
        stack.enter_context(override_settings(TELEMETRYDECK=telemetrydeck, ROOT_URLCONF=__name__))
        get_web_telemetry()  # builds now: a bad setting raises here, at start-up
        return DjangoSite()

    return make
