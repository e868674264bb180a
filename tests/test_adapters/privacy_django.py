"""The canary site on Django, through its real handlers (the test Client for WSGI, the
AsyncClient for ASGI), in every session mode, the canary user signed in with a real session.

This module is the site's ROOT_URLCONF (``urlpatterns`` below)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from ingest_server import IngestServer
from privacy_canaries import (
    EXCEPTION_MESSAGE,
    PLANTED,
    USER_NAME,
    CanaryRequest,
    canary_cookie_header,
    canary_visit,
)
from td_django_helpers import APP_ID, SALT
from test_adapters.privacy_site import CanaryVisit

from td_web.django import TelemetryHttpRequest, get_web_telemetry


class PaymentDeclined(Exception):
    pass


def _touch_user(request: HttpRequest) -> bool:
    # Loading the user makes the request its user's (td_web never loads it itself).
    return bool(request.user.is_authenticated)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<p>signed in: {_touch_user(request)}</p>")


def form(request: HttpRequest) -> HttpResponse:
    _touch_user(request)
    return HttpResponse(f"got {len(request.POST['password'])}", content_type="text/plain")


def json_body(request: HttpRequest) -> HttpResponse:
    _touch_user(request)
    return HttpResponse(f"got {len(json.loads(request.body))}", content_type="text/plain")


def custom(request: TelemetryHttpRequest) -> HttpResponse:
    _touch_user(request)
    request.telemetry.signal("Privacy.checked", {"Cart.items": 3}, float_value=1.5)
    return HttpResponse("ok", content_type="text/plain")


def planted(request: TelemetryHttpRequest) -> HttpResponse:
    request.telemetry.signal("Privacy.planted", {"Note": f"sent on purpose: {PLANTED}"})
    return HttpResponse("ok", content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    _touch_user(request)
    raise PaymentDeclined(f"card declined: {EXCEPTION_MESSAGE}")


urlpatterns = [
    path("page/", page),
    path("welcome/", page),
    path("form/", form),
    path("json/", json_body),
    path("custom/", custom),
    path("planted/", planted),
    path("boom/", boom),
]


def _username(request: HttpRequest) -> object:
    """A site that identifies its users by username (here, a canary)."""
    return request.user.get_username() if request.user.is_authenticated else None


MODES: dict[str, dict[str, Any]] = {
    "user-pk": {},
    "client-user-username": {"CLIENT_USER": _username},
    "cookieless": {"COOKIELESS": True},
    "session-from-cookie": {"SESSION_FROM_COOKIE": "sessionid"},
}


def _send(transport: str, request: CanaryRequest) -> int:
    content_type = request.content_type or "application/octet-stream"
    if transport == "wsgi":
        response = Client(raise_request_exception=False).generic(
            request.method, request.url, request.body, content_type, headers=request.headers
        )
    else:
        client = AsyncClient(raise_request_exception=False)

        async def call() -> Any:
            return await client.generic(
                request.method, request.url, request.body, content_type, headers=request.headers
            )

        response = async_to_sync(call)()
    return response.status_code


class DjangoSite:
    salt = SALT

    def __init__(self, transport: str, mode: str) -> None:
        self.transport = transport
        self.mode = mode

    def send(self, request: CanaryRequest) -> int:
        return _send(self.transport, request)

    def flush(self) -> bool:
        return get_web_telemetry().client.flush(5)

    def canary_visit(self) -> CanaryVisit:
        from django.contrib.auth.models import User

        user, _ = User.objects.get_or_create(username=USER_NAME, email="canary@example.com")
        # A real Django session for the user: its key is a secret too.
        login = Client()
        login.force_login(user)
        session_key = str(login.cookies["sessionid"].value)
        return CanaryVisit(
            canary_visit(canary_cookie_header(("sessionid", session_key)), None, "testserver"),
            # The pk by default, the username when CLIENT_USER returns it.
            USER_NAME if self.mode == "client-user-username" else str(user.pk),
            secrets=(session_key,),
            # The canary td_session token is the session key; only its keyed hash leaves.
            token_sessions=8 if self.mode == "user-pk" else None,
        )


def opener(transport: str) -> Any:
    """``open_site`` for Django served over ``transport`` ("wsgi" or "asgi")."""

    @contextmanager
    def open_site(ingest: IngestServer, mode: str | None = None, **options: Any) -> Iterator[Any]:
        mode = mode or next(iter(MODES))
        settings = {
            "APP_ID": APP_ID,
            "SALT": SALT,
            "ENDPOINT": ingest.url,
            "FLUSH_INTERVAL": 3600,  # nothing goes out before the test flushes
            "SHUTDOWN_TIMEOUT": 0.5,
            **MODES[mode],
            **{name.upper(): value for name, value in options.items()},
        }
        with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=settings):
            yield DjangoSite(transport, mode)

    return open_site
