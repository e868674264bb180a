"""Where the features of #12, #13, #16 and #17 meet, as scenarios every adapter runs the same way.

Each feature was written against the old main and tested alone; these scenarios combine them
(visitor cookie with a shared cache and an opt-out, ``before_send`` with path redaction, a
callable default payload with the key limit and sampling, the geo database behind trusted
proxies, every option under its name). They use the control sites of ``control_scenarios``
(Django's test client, Flask's test client, Starlette's over real ASGI calls, each sending to
the real local ingest server), which also serve:

``/notes/<token>`` a page that sends ``Custom.done`` from a path that may hold a secret;
``/public`` a page with ``Cache-Control: public, max-age=60``; ``/public-opt-in`` the same
page calling ``request.telemetry.opt_in()``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from conftest import APP_ID
from control_scenarios import SALT, MakeSite, received, types
from ingest_server import IngestServer

from td_web import ConfigurationError
from td_web._sanitize import MAX_KEYS
from td_web._transport import http_library
from td_web._web.sampling import SAMPLE_RATE_KEY
from td_web._web.settings import ALL_OPTION_NAMES
from td_web._web.visitors import NEW_VISITOR_SIGNAL

CACHE_CONTROL = "public, max-age=60"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIRST_SESSION_DATE = "TelemetryDeck.Acquisition.firstSessionDate"


def _deleted(set_cookies: list[str], name: str) -> bool:
    return any(
        header.startswith(name + "=") and "max-age=0" in header.lower() for header in set_cookies
    )


def before_send_sees_custom_signals_paths_redacted(make: MakeSite, ingest: IngestServer) -> None:
    seen: list[Any] = []

    def hook(signal: dict[str, Any]) -> dict[str, Any]:
        seen.append((signal["type"], signal["request"]))
        return signal

    site = make(before_send=hook)
    site.browser().get("/notes/jane.doe@example.com")
    signals = received(site, ingest)
    assert types(signals)["Custom.done"] == 1
    origins = {signal_type: origin for signal_type, origin in seen}
    custom = origins["Custom.done"]
    assert custom.path == "/notes/{email}", custom
    assert custom.route in (None, "/notes/{token}"), custom  # normalized where known
    assert all("jane" not in str(origin) for _, origin in seen)


def opt_out_deletes_the_visitor_and_session_cookies(make: MakeSite, ingest: IngestServer) -> None:
    site = make(visitor_cookie=True)
    for opt_out_path in ("/opt-out", "/forget"):
        browser = site.browser()
        first = browser.get("/page", {"User-Agent": CHROME})
        assert first.cookie("td_visitor") and first.cookie("td_session")
        reply = browser.get(opt_out_path, {"User-Agent": CHROME})
        assert reply.cookie("td_consent") == "no", (opt_out_path, reply.set_cookies)
        assert _deleted(reply.set_cookies, "td_visitor"), (opt_out_path, reply.set_cookies)
        assert _deleted(reply.set_cookies, "td_session"), (opt_out_path, reply.set_cookies)
        assert not browser.cookie("td_visitor"), opt_out_path
        later = browser.get("/page", {"User-Agent": CHROME})
        assert later.set_cookies == [], (opt_out_path, later.set_cookies)
    signals = received(site, ingest)
    assert types(signals)["pageView"] == 2  # the two first pages only
    # Cookieless mode: the opt-out cookie is the one cookie td_web writes, nothing to delete.
    reply = make(cookieless=True).browser().get("/opt-out")
    assert [header.partition("=")[0] for header in reply.set_cookies] == ["td_consent"]


def sampled_out_session_counts_no_visitor(make: MakeSite, ingest: IngestServer) -> None:
    site = make(visitor_cookie=True, sample_rate=0.0)
    browser = site.browser()
    for _ in range(2):
        reply = browser.get("/page", {"User-Agent": CHROME})
        assert reply.cookie("td_visitor") is None
    # Its session cookie is kept (the same decision next time), never on a cached response.
    assert site.browser().get("/public", {"User-Agent": CHROME}).set_cookies == []
    assert received(site, ingest) == []


def excluded_first_visit_is_still_counted(make: MakeSite, ingest: IngestServer) -> None:
    """A visitor whose first page is excluded by status gets the visitor cookie: without the
    newInstallDetected signal of that page, it would never count as new."""
    for session_started in ("TelemetryDeck.Session.started", None):
        site = make(
            visitor_cookie=True, exclude_status=[404], session_started_signal=session_started
        )
        browser = site.browser()
        assert browser.get("/missing", {"User-Agent": CHROME}).cookie("td_visitor")
        browser.get("/page", {"User-Agent": CHROME})
        counts = types(received(site, ingest))
        ingest.requests.clear()
        assert counts[NEW_VISITOR_SIGNAL] == 1, (session_started, counts)
        assert counts["pageView"] == 1, (session_started, counts)


def cached_page_counts_no_new_visitor(make: MakeSite, ingest: IngestServer) -> None:
    site = make(visitor_cookie=True)
    browser = site.browser()
    for _ in range(3):
        reply = browser.get("/public", {"User-Agent": CHROME})
        assert reply.set_cookies == []
    signals = received(site, ingest)
    assert types(signals)["pageView"] == 3
    # Without the cookie every cached page would be a visitor's first.
    assert NEW_VISITOR_SIGNAL not in types(signals)
    assert all(FIRST_SESSION_DATE not in signal["payload"] for signal in signals)


def consent_choice_is_not_replayed_by_a_shared_cache(
    make: MakeSite, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    site = make(consent_required=True)
    reply = site.browser().get("/public-opt-in")
    assert reply.cookie("td_consent") is None, reply.set_cookies
    assert "opt_in() on a response a shared cache may store" in caplog.text
    assert received(site, ingest) == []


def default_payload_of_many_keys_never_pushes_out_td_webs_keys(
    make: MakeSite, ingest: IngestServer
) -> None:
    def many(request: object) -> dict[str, str]:
        return {f"Custom.key{i:03}": "v" for i in range(MAX_KEYS + 20)}

    site = make(
        default_payload=many,
        sample_rate=0.999999999,
        visitor_cookie=True,
        country_headers=["CF-IPCountry"],
    )
    site.browser().get("/page", {"User-Agent": CHROME, "CF-IPCountry": "DE"})
    signals = received(site, ingest)
    assert types(signals)["pageView"] == 1
    for signal in signals:
        payload = signal["payload"]
        assert len(payload) <= MAX_KEYS
        for key in (
            SAMPLE_RATE_KEY,
            "TelemetryDeck.Calendar.hourOfDay",
            "TelemetryDeck.SDK.name",
            "TelemetryDeck.Device.platform",
            "country.isoCode",
            FIRST_SESSION_DATE,
        ):
            assert key in payload, (signal["type"], key)
        assert "Custom.key000" in payload  # the default payload keeps what fits
    page_view = next(s for s in signals if s["type"] == "pageView")["payload"]
    for key in ("path", "url", "HTTP.method", "HTTP.statusCode"):
        assert key in page_view, key


def _geo_database() -> str:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB"}})
    handle, path = tempfile.mkstemp(suffix=".mmdb")
    os.close(handle)
    writer.to_db_file(path)
    return path


def geo_database_reads_the_address_trusted_proxies_resolved(
    make: MakeSite, ingest: IngestServer
) -> None:
    database = _geo_database()
    try:
        site = make(geoip_database=database, trusted_proxies=["10.0.0.0/8"])
        site.browser("10.0.0.7").get("/page", {"X-Forwarded-For": "81.2.69.10"})
        # Not through a trusted proxy: the forged header is ignored, and so is its country.
        site.browser("127.0.0.1").get("/page", {"X-Forwarded-For": "81.2.69.11"})
        views = [s["payload"] for s in received(site, ingest) if s["type"] == "pageView"]
    finally:
        os.unlink(database)
    assert [view.get("country.isoCode") for view in views] == ["GB", None]


# -- every option under its name -------------------------------------------------------------


def _spool_path() -> str:
    return os.path.join(tempfile.mkdtemp(), "spool.sqlite3")


#: name -> (a good value other than the default, a bad value the message must show).
OPTIONS: dict[str, tuple[Callable[[], Any], Any]] = {
    # client
    "app_id": (lambda: APP_ID, 42),
    "salt": (lambda: SALT + "-2", 42),
    "endpoint": (lambda: None, "ftp://ingest.example"),
    "namespace": (lambda: "com.example", "not a namespace!"),
    "test_mode": (lambda: True, "perhaps"),
    "enabled": (lambda: False, "perhaps"),
    "default_payload": (lambda: {"Site.tier": "gold"}, 42),
    "app_version": (lambda: "1.2.3", 42),
    "strict": (lambda: True, "perhaps"),
    "sync": (lambda: True, "perhaps"),
    "transport": (lambda: None, 42),
    "max_queue_size": (lambda: 100, 0),
    "max_queue_bytes": (lambda: 2_000_000, 10),
    # The library that is installed: 3.11+ has httpx2 only, 3.10 httpx only.
    "http_client": (lambda: http_library().__name__, "curl"),
    "max_batch_size": (lambda: 10, -1),
    "max_in_flight": (lambda: 4, 0),
    "max_batch_bytes": (lambda: 10_000, "big"),
    "flush_interval": (lambda: 1.0, -1),
    "timeout": (lambda: 2, "slow"),
    "max_retries": (lambda: 3, -1),
    "initial_backoff": (lambda: 0.5, -1),
    "max_backoff": (lambda: 10, -1),
    "shutdown_timeout": (lambda: 1, -1),
    "spool_path": (_spool_path, 42),
    "spool_max_signals": (lambda: 10, 0),
    "before_send": (lambda: lambda signal: signal, "not callable"),
    "before_send_errors": (lambda: "drop", "explode"),
    "build_number": (lambda: "42", 42),
    "environment": (lambda: "staging", 42),
    "debug": (lambda: True, "perhaps"),
    "time_zone": (lambda: "Europe/Berlin", "Mars/Olympus_Mons"),
    "on_signal": (lambda: lambda signal: None, 42),
    # web
    "page_view_signal": (lambda: "Page.viewed", 42),
    "request_signal": (lambda: None, ""),
    "session_started_signal": (lambda: "Session.began", 3),
    "error_signal": (lambda: None, ""),
    "send_error_messages": (lambda: True, "perhaps"),
    "session_cookie_name": (lambda: "td_sid", "bad name"),
    "session_cookie_max_age": (lambda: 60, -1),
    "session_cookie_path": (lambda: "/app", 42),
    "session_cookie_domain": (lambda: "example.com", 42),
    "session_cookie_samesite": (lambda: "strict", "sideways"),
    "session_cookie_httponly": (lambda: False, "perhaps"),
    "session_cookie_secure": (lambda: True, "perhaps"),
    "session_from_cookie": (lambda: "sessionid", "bad name"),
    "cookieless": (lambda: True, "perhaps"),
    "respect_gpc": (lambda: True, "perhaps"),
    "exclude_paths": (lambda: ["/admin/"], ["admin"]),
    "exclude_patterns": (lambda: [r"^/private"], ["("]),
    "exclude": (lambda: lambda request: False, 42),
    "include_paths": (lambda: ["/static/app/"], ["static"]),
    "exclude_methods": (lambda: ["POST"], [42]),
    "track_bots": (lambda: True, "perhaps"),
    "handle_sigterm": (lambda: False, "perhaps"),
    "client_user": (lambda: lambda request: None, 42),
    "sample_rate": (lambda: 0.5, 1.5),
    "sampler": (lambda: lambda view: 1.0, 0.5),
    "consent_required": (lambda: True, "perhaps"),
    "consent_cookie_name": (lambda: "cc", "bad name"),
    "respect_dnt": (lambda: True, "maybe"),
    "exclude_status": (lambda: [404, "5xx"], ["4yy"]),
    "exclude_routes": (lambda: ["/items/{item_id}"], [42]),
    "trusted_proxies": (lambda: ["10.0.0.0/8"], ["not-an-address"]),
    "redact_paths": (lambda: False, "perhaps"),
    "redact_patterns": (lambda: [r"secret"], ["("]),
    "device_keys": (lambda: False, "perhaps"),
    "country_headers": (lambda: ["CF-IPCountry"], ["not a header"]),
    "geoip_database": (lambda: None, "/nonexistent/GeoLite2-Country.mmdb"),
    "send_click_ids": (lambda: True, "perhaps"),
    "visitor_cookie": (lambda: True, "perhaps"),
    "visitor_cookie_name": (lambda: "td_v", "bad name"),
    "visitor_cookie_max_age": (lambda: 86400, 0),
}


def every_option_is_accepted_by_its_name_and_refused_when_bad(
    make: MakeSite, ingest: IngestServer
) -> None:
    assert set(OPTIONS) == ALL_OPTION_NAMES - {"client"}, "a new option needs a row here"
    for name, (good, bad) in OPTIONS.items():
        value = good()
        if value is not None:
            make(**{name: value})  # raises if the adapter does not know the name
        with pytest.raises(ConfigurationError) as raised:
            make(**{name: bad})
        message = str(raised.value)
        assert name in message.lower(), (name, message)
        shown = [repr(item) for item in bad] if isinstance(bad, list) else []
        assert any(text in message for text in [*shown, repr(bad), type(bad).__name__]), (
            name,
            message,
        )


def cookie_names_that_collide_are_refused(make: MakeSite, ingest: IngestServer) -> None:
    for options, names in (
        ({"consent_cookie_name": "td_session"}, ("session_cookie_name", "consent_cookie_name")),
        ({"session_from_cookie": "td_consent"}, ("consent_cookie_name", "session_from_cookie")),
        (
            {"visitor_cookie": True, "consent_cookie_name": "td_visitor"},
            ("consent_cookie_name", "visitor_cookie_name"),
        ),
        (
            {"visitor_cookie": True, "session_from_cookie": "td_visitor"},
            ("session_from_cookie", "visitor_cookie_name"),
        ),
    ):
        with pytest.raises(ConfigurationError) as raised:
            make(**options)
        message = str(raised.value).lower()
        assert all(name in message for name in names), message
    make(session_from_cookie="td_session")  # td_web sets no cookie of its own then


SCENARIOS = [
    before_send_sees_custom_signals_paths_redacted,
    opt_out_deletes_the_visitor_and_session_cookies,
    sampled_out_session_counts_no_visitor,
    excluded_first_visit_is_still_counted,
    cached_page_counts_no_new_visitor,
    consent_choice_is_not_replayed_by_a_shared_cache,
    default_payload_of_many_keys_never_pushes_out_td_webs_keys,
    geo_database_reads_the_address_trusted_proxies_resolved,
    every_option_is_accepted_by_its_name_and_refused_when_bad,
    cookie_names_that_collide_are_refused,
]
