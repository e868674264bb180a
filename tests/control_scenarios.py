"""The "users in control" options (issue #16), as scenarios every adapter runs the same way.

Each adapter's ``tests/test_adapters/control_*.py`` builds a :class:`Site` from its
framework's real machinery (Django's test client, Flask's test client, Starlette's test client
over real ASGI calls), configured the framework's way and sending to the real local ingest
server. The site serves:

``/page`` an HTML page; ``/items/<int:item_id>`` a page under a route template; ``/missing``
nothing (404); ``/custom`` a page that sends ``Custom.done``; ``/boom`` an exception;
``/opt-out`` and ``/opt-in`` call ``request.telemetry.opt_out()`` / ``opt_in()``; ``/forget``
and ``/consent`` call ``td_web.opt_out(response)`` / ``td_web.opt_in(response)``.

A scenario drives browsers (each its own cookie jar) through a site, then reads what the
ingest server received.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from ingest_server import IngestServer

from td_web import ConfigurationError
from td_web._hashing import derive_session_id
from td_web._web.sampling import SAMPLE_RATE_KEY, session_fraction

SALT = "control-salt"
SESSION_STARTED = "TelemetryDeck.Session.started"
ERROR = "TelemetryDeck.Error.occurred"


@dataclass
class Reply:
    status: int
    set_cookies: list[str] = field(default_factory=list)

    def cookie(self, name: str) -> str | None:
        """The value this response sets for a cookie, or None."""
        for header in self.set_cookies:
            if header.startswith(name + "="):
                return header[len(name) + 1 :].split(";", 1)[0].strip('"')
        return None


class Browser(Protocol):
    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply: ...

    def cookie(self, name: str) -> str | None: ...


class Site(Protocol):
    #: What the framework hands a callable default_payload (its request class).
    request_type: type

    def browser(self, client_addr: str = "127.0.0.1") -> Browser: ...

    def flush(self) -> None: ...


#: (options in td_web's lower-case names, ingest server) -> a running site.
MakeSite = Callable[..., Site]


def received(site: Site, ingest: IngestServer) -> list[dict[str, Any]]:
    site.flush()
    return ingest.accepted_signals


def types(signals: list[dict[str, Any]]) -> Counter[str]:
    return Counter(signal["type"] for signal in signals)


# -- before_send ------------------------------------------------------------------------------


def before_send_changes_drops_and_sees_the_request(make: MakeSite, ingest: IngestServer) -> None:
    threads: list[str] = []
    seen: list[Any] = []

    def hook(signal: dict[str, Any]) -> dict[str, Any] | None:
        threads.append(threading.current_thread().name)
        seen.append(signal["request"])
        if signal["type"] == "Custom.done":
            return None
        signal["payload"]["Hook.route"] = str(signal["request"] and signal["request"].route)
        signal["payload"]["Hook.nested"] = {"deep": [1, 2]}  # sanitized again: flattened
        return signal

    site = make(before_send=hook)
    browser = site.browser()
    browser.get("/items/7")
    browser.get("/custom")
    signals = received(site, ingest)
    assert types(signals) == {SESSION_STARTED: 1, "pageView": 2}
    item_view = next(s for s in signals if s["payload"].get("path") == "/items/7")
    assert item_view["payload"]["Hook.route"] == "/items/{item_id}"
    assert item_view["payload"]["Hook.nested.deep"] == "[1,2]"
    origins = [origin for origin in seen if origin is not None]
    assert {(o.method, o.path) for o in origins} >= {("GET", "/items/7"), ("GET", "/custom")}
    assert any(o.status == 200 for o in origins)
    assert threading.main_thread().name not in threads


def before_send_errors_send_unchanged_or_drop(
    make: MakeSite, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(signal: dict[str, Any]) -> Any:
        signal["payload"]["path"] = "/mutated"  # on its copy: the original is untouched
        if signal["type"] == "pageView":
            raise RuntimeError("hook bug")
        return ["not", "a", "dict"]

    site = make(before_send=hook)
    site.browser().get("/page")
    signals = received(site, ingest)
    assert types(signals) == {SESSION_STARTED: 1, "pageView": 1}
    assert all(s["payload"].get("path") != "/mutated" for s in signals)
    assert "before_send raised RuntimeError: hook bug" in caplog.text
    assert "returned list" in caplog.text
    ingest.requests.clear()

    dropping = make(before_send=hook, before_send_errors="drop")
    dropping.browser().get("/page")
    assert received(dropping, ingest) == []


def before_send_huge_result_is_bounded(
    make: MakeSite, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(signal: dict[str, Any]) -> dict[str, Any]:
        return {**signal, "payload": {f"Key.k{i}": "v" * 10 for i in range(5000)}}

    site = make(before_send=hook)
    site.browser().get("/page")
    signals = received(site, ingest)
    assert types(signals) == {SESSION_STARTED: 1, "pageView": 1}
    assert all(len(s["payload"]) <= 128 for s in signals)
    assert "the rest were dropped" in caplog.text


def before_send_async_is_refused(make: MakeSite, ingest: IngestServer) -> None:
    async def hook(signal: dict[str, Any]) -> dict[str, Any]:
        return signal

    with pytest.raises(ConfigurationError, match=r"before_send .*async def"):
        make(before_send=hook)


# -- sampling ---------------------------------------------------------------------------------


def sampling_keeps_or_drops_whole_sessions(make: MakeSite, ingest: IngestServer) -> None:
    site = make(sample_rate=0.5)
    expected_kept: set[str] = set()
    dropped: set[str] = set()
    for _ in range(16):
        browser = site.browser()
        for path in ("/page", "/items/1", "/custom"):
            browser.get(path)
        key = browser.cookie("td_session")
        assert key is not None, "a sampled-out session keeps its cookie (and so its decision)"
        session_id = derive_session_id(key, SALT)
        (expected_kept if session_fraction(key) < 0.5 else dropped).add(session_id)
    assert expected_kept and dropped, "16 sessions at 0.5 should include both outcomes"
    by_session: dict[str, Counter[str]] = defaultdict(Counter)
    for signal in received(site, ingest):
        by_session[signal["sessionID"]][signal["type"]] += 1
        assert signal["payload"][SAMPLE_RATE_KEY] == "0.5"
    assert set(by_session) == expected_kept
    for counts in by_session.values():
        assert counts == {SESSION_STARTED: 1, "pageView": 3, "Custom.done": 1}


def sampler_decides_and_bad_answers_fall_back(
    make: MakeSite, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    answers: dict[str, Any] = {
        "/page": 0.0,
        "/items/1": 2,
        "/items/2": -1,
        "/items/3": float("nan"),
    }

    def sampler(view: Any) -> Any:
        if view.path == "/custom":
            raise LookupError("sampler bug")
        return answers[view.path]

    site = make(sampler=sampler)
    browser = site.browser()
    browser.get("/page")  # rate 0.0: nothing
    assert received(site, ingest) == []
    for path in ("/items/1", "/items/2", "/items/3", "/custom"):
        browser.get(path)  # unusable: sample_rate (1.0) applies, and the log says so
    signals = received(site, ingest)
    assert types(signals) == {"pageView": 4, "Custom.done": 1}
    assert all(SAMPLE_RATE_KEY not in s["payload"] for s in signals)
    assert "the sampler returned 2, not a rate" in caplog.text
    assert "the sampler raised LookupError: sampler bug" in caplog.text


# -- consent and opt-out ---------------------------------------------------------------------


def opt_out_stops_everything_and_opt_in_resumes(make: MakeSite, ingest: IngestServer) -> None:
    site = make()
    browser = site.browser()
    browser.get("/page")
    reply = browser.get("/opt-out")
    assert reply.cookie("td_consent") == "no"
    assert any("Max-Age=31536000" in h for h in reply.set_cookies if h.startswith("td_consent="))
    before = types(received(site, ingest))
    assert before == {SESSION_STARTED: 1, "pageView": 1}
    for path in ("/page", "/custom", "/boom", "/items/4"):
        browser.get(path)
    assert types(received(site, ingest)) == before, "an opted-out browser sends nothing"
    assert browser.get("/opt-in").cookie("td_consent") == "yes"
    browser.get("/page")
    assert types(received(site, ingest))["pageView"] == 2
    # Another browser was never affected.
    other = site.browser()
    other.get("/page")
    assert types(received(site, ingest))["pageView"] == 3


def opt_out_on_the_response_deletes_the_session_cookie(
    make: MakeSite, ingest: IngestServer
) -> None:
    site = make()
    browser = site.browser()
    browser.get("/page")
    reply = browser.get("/forget")
    assert reply.cookie("td_consent") == "no"
    assert reply.cookie("td_session") in ("", None)
    session_header = [h for h in reply.set_cookies if h.startswith("td_session=")]
    assert session_header and ("Max-Age=0" in session_header[0] or "expires" in session_header[0])
    browser.get("/page")
    browser.get("/boom")
    assert types(received(site, ingest)) == {SESSION_STARTED: 1, "pageView": 1}
    assert browser.get("/consent").cookie("td_consent") == "yes"
    browser.get("/page")
    assert types(received(site, ingest))["pageView"] == 2


def consent_cookie_name_is_the_sites_choice(make: MakeSite, ingest: IngestServer) -> None:
    site = make(consent_cookie_name="analytics_choice")
    browser = site.browser()
    reply = browser.get("/opt-out")
    assert reply.cookie("analytics_choice") == "no"
    assert reply.cookie("td_consent") is None
    browser.get("/page")
    assert received(site, ingest) == []
    site.browser().get("/page", {"Cookie": "td_consent=no"})  # not the configured name
    assert types(received(site, ingest))["pageView"] == 1


def consent_required_sends_nothing_and_sets_no_cookie_until_consent(
    make: MakeSite, ingest: IngestServer
) -> None:
    site = make(consent_required=True)
    browser = site.browser()
    for path in ("/page", "/custom", "/boom"):
        assert browser.get(path).set_cookies == []
    assert received(site, ingest) == []
    assert browser.get("/opt-in").cookie("td_consent") == "yes"
    browser.get("/page")
    browser.get("/custom")
    assert types(received(site, ingest)) == {SESSION_STARTED: 1, "pageView": 2, "Custom.done": 1}


def junk_consent_cookie_counts_as_no_consent(
    make: MakeSite, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    site = make()
    site.browser().get("/page", {"Cookie": "td_consent=%00%ff<script>"})
    assert received(site, ingest) == []
    assert "the td_consent cookie holds" in caplog.text
    site.browser().get("/page")
    assert types(received(site, ingest)) == {SESSION_STARTED: 1, "pageView": 1}


def do_not_track_is_respected_when_asked(make: MakeSite, ingest: IngestServer) -> None:
    ignoring = make()
    ignoring.browser().get("/page", {"DNT": "1"})
    assert types(received(ignoring, ingest))["pageView"] == 1
    ingest.requests.clear()
    site = make(respect_dnt=True)
    assert site.browser().get("/page", {"DNT": "1"}).set_cookies == []
    site.browser().get("/boom", {"DNT": "1"})
    assert received(site, ingest) == []
    site.browser().get("/page", {"DNT": "0"})
    assert types(received(site, ingest))["pageView"] == 1


# -- per-request properties ------------------------------------------------------------------


def callable_default_payload_is_per_request_and_under_the_signals_keys(
    make: MakeSite, ingest: IngestServer
) -> None:
    given: list[Any] = []

    def properties(request: Any) -> dict[str, Any]:
        given.append(request)
        return {"Tenant.name": "acme", "path": "/not-the-path", "Tenant.threads": 1}

    site = make(default_payload=properties)
    browser = site.browser()
    browser.get("/custom")
    signals = received(site, ingest)
    assert types(signals) == {SESSION_STARTED: 1, "pageView": 1, "Custom.done": 1}
    assert all(s["payload"]["Tenant.name"] == "acme" for s in signals)
    page_view = next(s for s in signals if s["type"] == "pageView")
    assert page_view["payload"]["path"] == "/custom"
    assert len(given) == 1, "evaluated once per request"
    assert isinstance(given[0], site.request_type)


def default_payload_that_fails_loses_only_its_keys(
    make: MakeSite, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    def properties(request: Any) -> Any:
        raise KeyError("tenant")

    site = make(default_payload=properties)
    site.browser().get("/page")
    assert types(received(site, ingest)) == {SESSION_STARTED: 1, "pageView": 1}
    assert "the default_payload callable raised KeyError" in caplog.text


# -- status and route filters ---------------------------------------------------------------


def status_and_route_filters(make: MakeSite, ingest: IngestServer) -> None:
    site = make(exclude_status=[404, "5xx"], exclude_routes=["/items/{item_id}"])
    browser = site.browser()
    browser.get("/items/1")  # the session starts here: its start is still sent
    for path in ("/items/2", "/missing", "/boom", "/page"):
        browser.get(path)
    signals = received(site, ingest)
    assert types(signals) == {SESSION_STARTED: 1, "pageView": 1}
    assert next(s for s in signals if s["type"] == "pageView")["payload"]["path"] == "/page"


# -- trusted proxies ------------------------------------------------------------------------


def _cookieless_sessions(
    make: MakeSite, ingest: IngestServer, peer: str, headers: list[dict[str, str]], **options: Any
) -> list[dict[str, Any]]:
    site = make(cookieless=True, **options)
    for extra in headers:
        site.browser(peer).get("/page", extra)
    signals = [s for s in received(site, ingest) if s["type"] == "pageView"]
    ingest.requests.clear()
    return signals


def trusted_proxies_give_client_scheme_and_host(make: MakeSite, ingest: IngestServer) -> None:
    forwarded = [
        {
            "X-Forwarded-For": "198.51.100.1, 10.0.0.5",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example",
        },
        {"X-Forwarded-For": "198.51.100.2, 10.0.0.5"},
        {"X-Forwarded-For": "198.51.100.1, 10.0.0.5"},
    ]
    for options in ({"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}, {"trusted_proxies": 2}):
        signals = _cookieless_sessions(make, ingest, "127.0.0.1", forwarded, **options)
        assert signals[0]["payload"]["url"] == "https://shop.example/page"
        first, second, third = (s["sessionID"] for s in signals)
        assert first != second, "two clients behind the proxy are two visitors"
        assert first == third
    rfc = _cookieless_sessions(
        make,
        ingest,
        "127.0.0.1",
        [{"Forwarded": 'for="[2001:db8::1]:4711";proto=https;host=rfc.example'}],
        trusted_proxies="127.0.0.1",
    )
    assert rfc[0]["payload"]["url"] == "https://rfc.example/page"


def forwarded_headers_are_ignored_without_a_trusted_hop(
    make: MakeSite, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    forged = [
        {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-For": "198.51.100.2", "X-Forwarded-Proto": "https"},
    ]
    by_default = _cookieless_sessions(make, ingest, "127.0.0.1", forged)
    untrusted = _cookieless_sessions(
        make, ingest, "127.0.0.1", forged, trusted_proxies=["10.0.0.0/8"]
    )
    for signals in (by_default, untrusted):
        assert signals[0]["sessionID"] == signals[1]["sessionID"]
        assert "evil.example" not in signals[0]["payload"]["url"]
        assert not signals[1]["payload"]["url"].startswith("https:")
    assert "forwarded headers from 127.0.0.1 ignored" in caplog.text


# -- validation -----------------------------------------------------------------------------

BAD_OPTIONS: list[tuple[str, Any]] = [
    ("sample_rate", 1.5),
    ("sample_rate", "half"),
    ("sampler", 0.5),
    ("before_send", "not callable"),
    ("before_send_errors", "explode"),
    ("consent_required", "perhaps"),
    ("respect_dnt", "maybe"),
    ("exclude_status", ["4yy"]),
    ("exclude_routes", [42]),
    ("trusted_proxies", ["not-an-address"]),
    ("trusted_proxies", 0),
    ("default_payload", 42),
]


def bad_options_are_refused_naming_setting_and_value(make: MakeSite, ingest: IngestServer) -> None:
    for name, value in BAD_OPTIONS:
        with pytest.raises(ConfigurationError) as raised:
            make(**{name: value})
        message = str(raised.value)
        assert name in message.lower(), message
        shown = [repr(value), *(repr(item) for item in value)] if isinstance(value, list) else []
        assert any(text in message for text in shown or [repr(value)]), message


SCENARIOS = [
    before_send_changes_drops_and_sees_the_request,
    before_send_errors_send_unchanged_or_drop,
    before_send_huge_result_is_bounded,
    before_send_async_is_refused,
    sampling_keeps_or_drops_whole_sessions,
    sampler_decides_and_bad_answers_fall_back,
    opt_out_stops_everything_and_opt_in_resumes,
    opt_out_on_the_response_deletes_the_session_cookie,
    consent_cookie_name_is_the_sites_choice,
    consent_required_sends_nothing_and_sets_no_cookie_until_consent,
    junk_consent_cookie_counts_as_no_consent,
    do_not_track_is_respected_when_asked,
    callable_default_payload_is_per_request_and_under_the_signals_keys,
    default_payload_that_fails_loses_only_its_keys,
    status_and_route_filters,
    trusted_proxies_give_client_scheme_and_host,
    forwarded_headers_are_ignored_without_a_trusted_hop,
    bad_options_are_refused_naming_setting_and_value,
]


def run(
    scenario: Callable[..., None],
    make: MakeSite,
    ingest: IngestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Runs a scenario, giving it the log capture when it asks for one."""
    caplog.set_level(logging.DEBUG, logger="td_web")
    if "caplog" in scenario.__code__.co_varnames[: scenario.__code__.co_argcount]:
        scenario(make, ingest, caplog)
    else:
        scenario(make, ingest)
