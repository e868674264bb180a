"""Privacy and delivery hardening (issue 13) through Django's real handlers and the real ingest
server: secrets in paths, cookieless and session_from_cookie keyed with a real secret, the
per-site cache, async user callables, what a queued request keeps, and a settings change while
a request is in flight.

This module is its own ROOT_URLCONF (``urlpatterns`` below)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path, re_path
from ingest_server import IngestServer
from td_django_helpers import APP_ID, MIDDLEWARE, SALT

from td_web._hashing import derive_session_id
from td_web._web.request_signals import RequestSignals
from td_web.django import TelemetryHttpRequest, get_web_telemetry
from td_web.django.checks import check_middleware, check_settings

SECRETS = ("SECRETJSESSION", "alice@example.com", "TOKENSECRET", "550e8400", "4111111111111111")
#: A path no route template describes, carrying every kind of secret the issue lists.
LEAKY_PATH = (
    "/files/report;jsessionid=SECRETJSESSION/alice@example.com"
    "/550e8400-e29b-41d4-a716-446655440000/4111111111111111"
    "/9f86d081884c7d659a2feaa0c55ad015/reset%3Ftoken=TOKENSECRET"
)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>page</p>")


def cached_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>cached</p>")


def public_page(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("<p>public</p>")
    response["Cache-Control"] = "public, max-age=600"
    return response


def settings_change_mid_request(request: TelemetryHttpRequest) -> HttpResponse:
    with override_settings(DEBUG=True):  # a test toggling a setting while a request runs
        pass
    request.telemetry.signal("Mid.request")
    return HttpResponse("<p>changed</p>")


urlpatterns = [
    path("page/", page),
    path("cached/", cached_page),
    path("public/", public_page),
    path("settings-change/", settings_change_mid_request),
    re_path(r"^files/", page),  # matched, but the path still carries the secrets
]


def _settings(ingest: IngestServer, **extra: Any) -> dict[str, Any]:
    return {
        "APP_ID": APP_ID,
        "SALT": SALT,
        "ENDPOINT": ingest.url,
        "FLUSH_INTERVAL": 3600,
        "SHUTDOWN_TIMEOUT": 0.5,
        **extra,
    }


def _flushed(ingest: IngestServer) -> list[dict[str, Any]]:
    assert get_web_telemetry().client.flush(30)
    return ingest.accepted_signals


# -- 1. secrets in the path -------------------------------------------------------------------


def test_secrets_in_the_path_and_the_referer_never_reach_the_ingest(ingest: IngestServer) -> None:
    referer = f"http://testserver{LEAKY_PATH}?q=1"
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=_settings(ingest)):
        for url in (LEAKY_PATH, "/no-route" + LEAKY_PATH):
            Client().get(url, HTTP_REFERER=referer)
        signals = _flushed(ingest)

    sent = repr(signals)
    for secret in SECRETS:
        assert secret not in sent
    page_view = next(s for s in signals if s["type"] == "pageView")["payload"]
    expected = "/files/report/{email}/{uuid}/{number}/{token}/reset"
    assert page_view["path"] == expected
    assert page_view["url"] == "http://testserver" + expected
    assert page_view["referer"] == "http://testserver" + expected
    assert page_view["TelemetryDeck.Navigation.sourcePath"] == expected
    assert page_view["TelemetryDeck.Navigation.destinationPath"] == expected


def test_redact_paths_can_be_turned_off_and_extended(ingest: IngestServer) -> None:
    options = _settings(ingest, REDACT_PATHS=False, REDACT_PATTERNS=[r"^acct_"])
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=options):
        Client().get("/files/alice@example.com/acct_42;jsessionid=X/")
        signals = _flushed(ingest)
    # Off: the e-mail address stays; matrix parameters go whatever the option says.
    assert signals[-1]["payload"]["path"] == "/files/alice@example.com/{redacted}/"


def test_an_invalid_redact_pattern_is_reported_at_start_up() -> None:
    with override_settings(TELEMETRYDECK={"APP_ID": APP_ID, "REDACT_PATTERNS": ["("]}):
        [error] = check_settings()
        assert error.id == "td_web.E003"
        assert "redact_patterns" in error.msg
        with pytest.raises(Exception, match="redact_patterns"):
            get_web_telemetry()


# -- 2. and 3. sessions keyed with a real secret ----------------------------------------------


def test_cookieless_without_a_salt_is_keyed_with_a_derivation_of_secret_key(
    ingest: IngestServer,
) -> None:
    options = _settings(ingest, SALT=None, COOKIELESS=True)
    sessions = []
    for secret_key in ("first-secret-key", "second-secret-key"):
        with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=options, SECRET_KEY=secret_key):
            response = Client().get("/page/", REMOTE_ADDR="198.51.100.23", HTTP_USER_AGENT="UA")
            assert "td_session" not in response.cookies
            sessions.append(_flushed(ingest)[-1]["sessionID"])

    # What main sent: a hash keyed with a public constant of the day, address and agent,
    # which a brute force over the address space reverses.
    day = int(time.time() // 86400)
    assert derive_session_id(f"cookieless:{day}:198.51.100.23:UA", "") not in sessions
    assert sessions[0] != sessions[1]  # keyed: another SECRET_KEY, another session ID


def test_session_from_cookie_falls_back_to_td_webs_own_cookie(ingest: IngestServer) -> None:
    options = _settings(ingest, SESSION_FROM_COOKIE="sessionid")
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=options):
        first = Client().get("/page/", REMOTE_ADDR="198.51.100.23", HTTP_USER_AGENT="UA")
        second = Client().get("/page/", REMOTE_ADDR="198.51.100.23", HTTP_USER_AGENT="UA")
        signals = _flushed(ingest)

    tokens = [response.cookies["td_session"].value for response in (first, second)]
    page_views = [s for s in signals if s["type"] == "pageView"]
    # Same address and agent, no session cookie: two visitors, two sessions, each from its
    # own td_session cookie (main derived one session from the address for both).
    assert [s["sessionID"] for s in page_views] == [derive_session_id(t, SALT) for t in tokens]


# -- 4. the per-site cache --------------------------------------------------------------------

CACHE_INSIDE = [
    "django.middleware.cache.UpdateCacheMiddleware",
    *MIDDLEWARE,
    "django.middleware.cache.FetchFromCacheMiddleware",
]


def test_the_per_site_cache_never_stores_a_td_session_cookie(ingest: IngestServer) -> None:
    cache.clear()
    with override_settings(
        ROOT_URLCONF=__name__,
        TELEMETRYDECK=_settings(ingest),
        MIDDLEWARE=CACHE_INSIDE,
        CACHE_MIDDLEWARE_SECONDS=600,
    ):
        stored = Client().get("/cached/", REMOTE_ADDR="198.51.100.1")
        replays = [Client().get("/cached/", REMOTE_ADDR=f"198.51.100.{i}") for i in (2, 3)]
        signals = _flushed(ingest)
        # Not stored by the cache (a POST): the response keeps its cookie.
        assert "td_session" in Client().post("/page/", REMOTE_ADDR="198.51.100.4").cookies
    cache.clear()

    # The response the cache stored carries no cookie (main: the first visitor's session,
    # replayed to everyone after); a page served from the cache gets the visitor's own.
    assert "td_session" not in stored.cookies
    tokens = {response.cookies["td_session"].value for response in replays}
    assert len(tokens) == 2
    sessions = {s["sessionID"] for s in signals if s["type"] == "pageView"}
    assert len(sessions) == 3  # three visitors, three sessions (the first address-derived)


def test_a_system_check_flags_td_web_inside_the_per_site_cache() -> None:
    with override_settings(MIDDLEWARE=CACHE_INSIDE):
        assert "td_web.W004" in [message.id for message in check_middleware()]
    with override_settings(MIDDLEWARE=[*MIDDLEWARE[:1], *CACHE_INSIDE[:1], *CACHE_INSIDE[2:]]):
        assert "td_web.W004" not in [message.id for message in check_middleware()]


def test_a_public_response_gets_no_session_cookie(ingest: IngestServer) -> None:
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=_settings(ingest)):
        response = Client().get("/public/")
        _flushed(ingest)
    assert "td_session" not in response.cookies


# -- 7. what a queued request keeps -----------------------------------------------------------


def test_a_queued_request_keeps_no_cookie_no_address_and_no_raw_query(
    ingest: IngestServer,
) -> None:
    ingest.stop()  # an outage: requests wait in the queue
    cookie = "sessionid=" + "c" * 40_000
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=_settings(ingest)):
        Client().get(
            "/page/?token=SECRET&utm_source=news",
            HTTP_COOKIE=cookie,
            HTTP_REFERER="http://x/" + "r" * 40_000,
            REMOTE_ADDR="198.51.100.9",
        )
        sender = get_web_telemetry().client._sender
        assert sender is not None
        [record] = [r for r, _ in list(sender._queue) if isinstance(r, RequestSignals)]
    view = record.view
    assert view.cookies is None and view.client_addr is None
    assert view.query_string == "utm_source=news"
    assert record.approx_size() < 10_000  # 80 kB of headers arrived


def test_a_queued_request_keeps_a_trusted_country_header_bounded(ingest: IngestServer) -> None:
    """country_headers (#12) meets the queue's bounds (#13): a client can send a trusted
    header itself, and 40 kB of it must not wait in the queue through an outage."""
    ingest.stop()
    settings = {**_settings(ingest), "COUNTRY_HEADERS": ["CF-IPCountry"]}
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=settings):
        Client().get("/page/", HTTP_CF_IPCOUNTRY="DE" + "x" * 40_000)
        sender = get_web_telemetry().client._sender
        assert sender is not None
        [record] = [r for r, _ in list(sender._queue) if isinstance(r, RequestSignals)]
    [country] = record.view.countries
    assert country is not None and country.startswith("DE") and len(country) <= 64
    assert record.approx_size() < 10_000


# -- 11. async user callables -----------------------------------------------------------------


async def _async_user(request: HttpRequest) -> str:
    return "user-1"


def test_an_async_client_user_is_refused_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(TELEMETRYDECK={"APP_ID": APP_ID, "CLIENT_USER": _async_user}):
        [error] = check_settings()
        assert error.id == "td_web.E003"
        assert "async" in error.msg and "client_user" in error.msg


# -- 14. a settings change while a request is in flight ---------------------------------------


def test_a_settings_change_mid_request_loses_none_of_its_signals(ingest: IngestServer) -> None:
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=_settings(ingest)):
        response = Client().get("/settings-change/")
        assert response.status_code == 200
        signals = ingest.wait_for_signals(2, timeout=30)
    assert {s["type"] for s in signals} >= {"pageView", "Mid.request"}


# -- 9. IPv6 hosts ----------------------------------------------------------------------------


def test_an_ipv6_server_without_a_host_header_is_sent_as_a_url(ingest: IngestServer) -> None:
    with override_settings(ROOT_URLCONF=__name__, TELEMETRYDECK=_settings(ingest)):
        Client().get(
            "/page/",
            SERVER_NAME="::1",
            SERVER_PORT="8000",
            HTTP_REFERER="http://[::1]:8000/from",
        )
        signals = _flushed(ingest)
    payload = signals[-1]["payload"]
    assert payload["host"] == "[::1]:8000"  # main: "::1:8000"
    assert payload["referer"] == "http://[::1]:8000/from"
