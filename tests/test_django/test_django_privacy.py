"""Privacy, tested with canaries: requests full of private values (a signed-in user whose
username is a canary, td_session and other cookies, query strings, Referer queries, form and
JSON bodies, credentials, an exception message) go through Django's real handlers, WSGI and
ASGI, in every session mode; nothing of them may reach the ingest server but salted hashes.

This module is its own ROOT_URLCONF (``urlpatterns`` below)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from ingest_server import IngestServer
from privacy_canaries import (
    ALL_CANARIES,
    CANARY_VISIT_STATUSES,
    EXCEPTION_MESSAGE,
    PLANTED,
    SESSION_TOKEN,
    USER_NAME,
    CanaryRequest,
    assert_canary_visit_arrived,
    assert_no_canary,
    assert_the_error_message_was_sent,
    assert_the_search_finds,
    canary_cookie_header,
    canary_request,
    canary_visit,
    everything_received,
)
from td_django_helpers import APP_ID, SALT

from td_web import hash_client_user
from td_web._hashing import derive_session_id
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


def _settings(ingest: IngestServer, **extra: Any) -> dict[str, Any]:
    return {
        "APP_ID": APP_ID,
        "SALT": SALT,
        "ENDPOINT": ingest.url,
        "FLUSH_INTERVAL": 3600,  # nothing goes out before the test flushes
        "SHUTDOWN_TIMEOUT": 0.5,
        **extra,
    }


@pytest.fixture
def canary_user() -> Any:
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(username=USER_NAME, email="canary@example.com")
    return user


def _session_key(user: Any) -> str:
    """A real Django session for the user: its key is a secret too."""
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def _send(transport: str, request: CanaryRequest) -> tuple[int, bytes]:
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
    return response.status_code, response.content


def _td_web_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "td_web" and r.levelno >= 40]


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
@pytest.mark.parametrize("mode", list(MODES))
def test_no_canary_reaches_the_ingest_server(
    mode: str,
    transport: str,
    ingest: IngestServer,
    canary_user: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session_key = _session_key(canary_user)
    signed_in = canary_cookie_header(("sessionid", session_key))
    requests = canary_visit(signed_in, None, "testserver")
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=_settings(ingest, **MODES[mode])):
        statuses = [_send(transport, request)[0] for request in requests]
        assert get_web_telemetry().client.flush(5)

    assert statuses == CANARY_VISIT_STATUSES
    signals = ingest.accepted_signals
    # The signed-in user is sent as a salted hash of what the adapter reads: the pk by
    # default, the username when CLIENT_USER returns it.
    user_id = USER_NAME if mode == "client-user-username" else str(canary_user.pk)
    expected_user = hash_client_user(user_id, SALT)
    assert_canary_visit_arrived(signals, expected_user)
    if mode == "user-pk":
        # The canary td_session token is the session key; only its keyed hash leaves.
        sessions = Counter(s["sessionID"] for s in signals)
        assert sessions[derive_session_id(SESSION_TOKEN, SALT)] >= 8

    assert_no_canary(everything_received(ingest), (*ALL_CANARIES, session_key))
    assert _td_web_errors(caplog) == []


def test_error_messages_are_sent_when_enabled_and_the_search_sees_them(
    ingest: IngestServer,
) -> None:
    """The opt-in that sends exception messages proves the search sees a canary that leaks."""
    settings = _settings(ingest, SEND_ERROR_MESSAGES=True)
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=settings):
        assert _send("wsgi", canary_request("/boom/"))[0] == 500
        assert get_web_telemetry().client.flush(5)

    assert_the_error_message_was_sent(ingest)


def test_the_search_finds_a_canary_a_view_sends_on_purpose(ingest: IngestServer) -> None:
    """Positive control: a custom signal carrying a canary is caught."""
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=_settings(ingest)):
        assert _send("asgi", canary_request("/planted/"))[0] == 200
        assert get_web_telemetry().client.flush(5)

    assert ingest.accepted_signals
    assert_the_search_finds(PLANTED, ingest)
