"""td_web's own signals written as JSON from parts encoded once (``_signal_json``) are the
signals the general path builds as dicts and encodes: the same keys in the same order, the
same values, the same warnings. Each request here goes through the real request path (begin,
finish) and its queued record is encoded both ways."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer
from test_core.test_core_fast_path import BROWSER, CASES, VISITOR, _records, _view, _web

from td_web import _signal_json as signal_json_module
from td_web._calendar import CalendarKeys
from td_web._encoding import RecordEncoder, encode_json_bytes
from td_web._log import throttled
from td_web._sanitize import MAX_KEYS
from td_web._signal_json import SignalJSON
from td_web._web import RequestView, WebTelemetry
from td_web._web.request_signals import RequestSignals
from td_web.testing import capture

SESSION = "tds"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)
PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)

# Beyond test_core_fast_path's requests (each of which is compared here too): what the parts
# are made of, and each reason the shortcut has to decline.
MORE_CASES: dict[str, tuple[dict[str, Any], Any, dict[str, Any]]] = {
    "returning session": ({}, lambda: _view("/a", cookies={SESSION: "s" * 32}), {}),
    "signed-in user": ({"client_user": lambda request: "user-17"}, lambda: _view("/me"), {}),
    "test mode, another time zone": (
        {"test_mode": True, "time_zone": "Asia/Kolkata"},
        lambda: _view("/tz"),
        {},
    ),
    "app version, build and environment": (
        {"app_version": "2.1", "build_number": "77", "environment": "staging", "debug": False},
        lambda: _view("/ctx"),
        {},
    ),
    "default payload of other keys": (
        {"default_payload": {"Plan": "pro", "Region.code": "eu"}},
        lambda: _view("/plan"),
        {},
    ),
    "default floatValue": ({"default_payload": {"floatValue": 2.5}}, lambda: _view("/f"), {}),
    "default payload naming a device key": (
        {"default_payload": {"browserName": "mine"}},
        lambda: _view("/b"),
        {},
    ),
    "properties naming a calendar key": (
        {"default_payload": lambda request: {"TelemetryDeck.Calendar.hourOfDay": "0"}},
        lambda: _view("/cal"),
        {},
    ),
    "properties naming a request key": (
        {"default_payload": lambda request: {"path": "/mine", "Team": "a"}},
        lambda: _view("/p"),
        {},
    ),
    "properties the sanitizer reported on the request thread": (
        {"default_payload": lambda request: {"Nested": {"deep": {"deeper": {"x": object()}}}}},
        lambda: _view("/n"),
        {},
    ),
    "properties with a number and a flag": (
        {"default_payload": lambda request: {"Cart.items": 3, "Beta": True, "Score": 0.5}},
        lambda: _view("/num"),
        {},
    ),
    "many properties, within the key limit": (
        {"default_payload": lambda request: {f"P.{n}": "v" for n in range(MAX_KEYS - 80)}},
        lambda: _view("/many"),
        {},
    ),
    "more keys than a payload may hold": (
        {"default_payload": lambda request: {f"P.{n}": "v" for n in range(MAX_KEYS - 40)}},
        lambda: _view("/more"),
        {},
    ),
    "characters JSON escapes": (
        {},
        lambda: _view(
            '/q"uo\\te/\x01ctl\x7f',
            referer='https://shop.example/"x"\\y',
            query_string='utm_source=a"b%5C&utm_medium=%01',
        ),
        {},
    ),
    "no User-Agent": ({}, lambda: _view("/none", user_agent=None), {}),
    "a phone": ({}, lambda: _view("/m", user_agent=PHONE), {}),
    "a User-Agent longer than the cache keeps": (
        {},
        lambda: _view("/long", user_agent=BROWSER + " x" * 400),
        {},
    ),
    "a crawler the library knows, bots tracked": (
        {"track_bots": True},
        lambda: _view("/bot", user_agent=CRAWLER),
        {},
    ),
    "a headless browser, bots tracked": (
        {"track_bots": True},
        lambda: _view("/headless", user_agent=HEADLESS),
        {},
    ),
    "a country header": (
        {"country_headers": ["CF-IPCountry"]},
        lambda: _with_countries(_view("/c"), "CH"),
        {},
    ),
    "click ids": (
        {"send_click_ids": True},
        lambda: _view("/ad", query_string="gclid=abc&utm_source=google"),
        {},
    ),
    "request signal only": (
        {"session_started_signal": None},
        lambda: _view("/api", method="POST"),
        {"status": 204, "content_type": None},
    ),
    "session start only": ({"request_signal": None}, lambda: _view("/x", method="PUT"), {}),
    "an excluded status": ({"exclude_status": [404]}, lambda: _view("/gone"), {"status": 404}),
    "an error": ({}, lambda: _view("/boom"), {"error": RuntimeError("x"), "status": 500}),
}
ALL_CASES = {**CASES, **MORE_CASES}
#: Requests the shortcut writes itself (the rest decline, and take the general path).
WRITTEN = {
    "page view from a search engine, campaign parameters",
    "page view within the site",
    "API request, no page view",
    "error with its message",
    "error with a message at the length limit",
    "an error",
    "new visitor",
    "returning visitor, new session",
    "custom per-request payload",
    "sampled session",
    "returning session",
    "signed-in user",
    "test mode, another time zone",
    "app version, build and environment",
    "default payload of other keys",
    "properties with a number and a flag",
    "many properties, within the key limit",
    "properties the sanitizer reported on the request thread",
    "characters JSON escapes",
    "no User-Agent",
    "a phone",
    "a User-Agent longer than the cache keeps",
    "a crawler the library knows, bots tracked",
    "a headless browser, bots tracked",
    "a country header",
    "click ids",
    "request signal only",
    "session start only",
}


def _with_countries(request: RequestView, *codes: str) -> RequestView:
    request.countries = codes  # as the adapters fill it from the trusted headers
    return request


def _parsed(encoded: list[bytes]) -> list[list[tuple[str, Any]]]:
    """Each signal's JSON as lists of (key, value) pairs: order and duplicates kept."""
    return [json.loads(data, object_pairs_hook=list) for data in encoded]


@pytest.fixture
def nothing_sent() -> Iterator[None]:
    with capture():
        yield


def _record(name: str) -> tuple[WebTelemetry, RequestSignals]:
    options, make_view, finish = ALL_CASES[name]
    if options.get("visitor_cookie"):
        options = {**options, "visitor_cookie_name": VISITOR}
    web = _web(session_cookie_name=SESSION, **options)
    request = make_view()
    if request.cookies == {VISITOR: "returning"}:
        telemetry = web.begin(_view("/first"), native=None)
        header = telemetry.visitor_cookie_header()
        telemetry.finish(200, "text/html")
        assert header is not None
        request.cookies = {VISITOR: header.split(";", 1)[0].split("=", 1)[1]}
    (record,) = _records(web, request, **finish)
    return web, record


@pytest.mark.parametrize("name", list(ALL_CASES))
@pytest.mark.usefixtures("nothing_sent")
def test_written_json_equals_the_built_signals(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    web, record = _record(name)
    written: list[list[bytes] | None] = []
    write = RequestSignals.encoded_signals

    def spy(self: RequestSignals, writer: SignalJSON) -> list[bytes] | None:
        written.append(write(self, writer))
        return written[-1]

    monkeypatch.setattr(RequestSignals, "encoded_signals", spy)
    builder = web.client.builder
    encoder = RecordEncoder(web.client.config, builder, lambda reason, count: None)
    with caplog.at_level(logging.WARNING, logger="td_web"):
        caplog.clear()
        throttled.reset()
        general = [encode_json_bytes(signal) for signal in record.signals(builder)]
        general_warnings = _built_here(caplog)
        caplog.clear()
        throttled.reset()  # the same warning again, not throttled away
        sent = [data for data, _ in encoder.entries(record, 1)]
        sent_warnings = _built_here(caplog)

    if name in WRITTEN:
        assert written and written[0] is not None, "the sender built what it should write"
    else:  # declined, or not asked (a hook needs dicts)
        assert written in ([], [None]), "the sender wrote what it should build"
    assert _parsed(sent) == _parsed(general)
    assert sent_warnings == general_warnings


def _clocked() -> tuple[WebTelemetry, list[float], SignalJSON]:
    """An application whose calendar reads ``clock[0]`` (13:00 UTC), and its writer."""
    web = _web(session_cookie_name=SESSION)
    clock = [1_764_590_400.0]
    web.client.builder.calendar = CalendarKeys(clock=lambda: clock[0])
    return web, clock, SignalJSON(web.client.builder)


@pytest.mark.parametrize("name", list(ALL_CASES))
@pytest.mark.usefixtures("nothing_sent")
def test_a_request_written_again_from_what_was_kept(name: str) -> None:
    """What a browser's first request kept (``SignalJSON.keep``, ``PayloadJSON.own_parts``)
    gives the next requests the general path's JSON: the same one again, another session, a
    new session or not, another duration, another user, another page, no page view."""
    web, record = _record(name)
    builder = web.client.builder
    encoder = RecordEncoder(web.client.config, builder, lambda reason, count: None)
    for session_key, new_session, duration, user in (
        (record.session_key, record.new_session, record.duration, record.user),
        ("k" * 32, not record.new_session, 0.25, record.user),
        ("j" * 32, record.new_session, 12.0000005, "user-9"),
        (None, False, 3e-07, None),
    ):
        record.session_key, record.new_session = session_key, new_session
        record.duration, record.user = duration, user
        sent = [data for data, _ in encoder.entries(record, 1)]
        general = [encode_json_bytes(signal) for signal in record.signals(builder)]
        assert _parsed(sent) == _parsed(general)
    record.view.path += "other/"
    for page_view, status in ((False, 201), (True, 200)):
        record.page_view, record.status = page_view, status
        sent = [data for data, _ in encoder.entries(record, 1)]
        general = [encode_json_bytes(signal) for signal in record.signals(builder)]
        assert _parsed(sent) == _parsed(general)


@pytest.mark.usefixtures("nothing_sent")
def test_the_usual_request_is_written_from_what_was_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page view of a browser seen before skips the parts' calls (two lookups); one with
    visitor keys, properties, an error or a country never does (those differ by request)."""
    from_parts: list[str] = []
    encoded = RequestSignals._encoded

    def spy(self: RequestSignals, writer: SignalJSON) -> list[bytes] | None:
        from_parts.append(self.view.path)
        return encoded(self, writer)

    monkeypatch.setattr(RequestSignals, "_encoded", spy)
    for name in ("page view within the site", "a country header", "custom per-request payload"):
        web, record = _record(name)
        writer = SignalJSON(web.client.builder)
        from_parts.clear()
        for _ in range(3):
            assert record.encoded_signals(writer)
        assert len(from_parts) == (1 if name == "page view within the site" else 3), name


@pytest.mark.usefixtures("nothing_sent")
def test_a_kept_browser_still_counts_each_request_s_keys() -> None:
    """A default payload near the key limit: a bare request of a browser is kept, and the
    next request of that browser, whose referer, campaign and language keys go over the
    limit, takes the general path (which drops keys and says so) all the same."""
    crossed = 0
    for defaults in range(MAX_KEYS - 70, MAX_KEYS - 20, 2):
        web = _web(default_payload={f"D.{n}": "v" for n in range(defaults)})
        builder = web.client.builder
        writer = SignalJSON(builder)
        (bare,) = _records(web, _view("/bare", accept_language=None))
        (full,) = _records(
            web,
            _view(
                "/full",
                referer="https://www.google.com/",
                query_string="utm_source=a&utm_medium=b&utm_campaign=c&utm_term=d",
            ),
        )
        written = [bare.encoded_signals(writer), full.encoded_signals(writer)]
        if written[0] is not None and written[1] is None:
            crossed += 1
        for record, mine in zip((bare, full), written, strict=True):
            if mine is not None:
                general = [encode_json_bytes(s) for s in record.signals(builder)]
                assert _parsed(mine) == _parsed(general)
    assert crossed


@pytest.mark.usefixtures("nothing_sent")
def test_a_kept_browser_follows_the_quarter_hour() -> None:
    web, clock, writer = _clocked()
    builder = web.client.builder
    (record,) = _records(web, _view("/same", cookies={SESSION: "s" * 32}))
    hours = []
    for _ in range(2):
        for _ in range(2):  # the second from what the first kept
            [signal] = _parsed(record.encoded_signals(writer) or [])
            hours.append(dict(dict(signal)["payload"])["TelemetryDeck.Calendar.hourOfDay"])
            assert _parsed([encode_json_bytes(s) for s in record.signals(builder)]) == [signal]
        clock[0] += 3600
    assert hours == ["13", "13", "14", "14"]


@pytest.mark.usefixtures("nothing_sent")
def test_kept_browsers_start_over_at_their_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal_json_module, "_KEPT_LIMIT", 4)
    web = _web()
    builder = web.client.builder
    writer = SignalJSON(builder)
    for number in range(11):
        (record,) = _records(web, _view(f"/items/{number}", user_agent=f"{PHONE} n/{number}"))
        for _ in range(2):
            written = record.encoded_signals(writer)
            general = [encode_json_bytes(signal) for signal in record.signals(builder)]
            assert _parsed(written or []) == _parsed(general)
        assert len(writer._kept) <= 4
    assert len(writer._kept) == 3  # 11 browsers: started over at the 5th and the 9th


@pytest.mark.usefixtures("nothing_sent")
def test_a_crawler_only_the_library_knows_gives_no_signal_either_way() -> None:
    """(The request path drops the crawlers td_web's own list knows; this one, as if that
    list had missed it, reaches the sender.)"""
    web = _web()
    request = _view("/", user_agent=CRAWLER)
    record = RequestSignals(web, request, 200, None, 0.01, True, None, None, True, None, None)
    assert list(record.signals(web.client.builder)) == []
    assert record.encoded_signals(SignalJSON(web.client.builder)) == []


@pytest.mark.usefixtures("nothing_sent")
def test_parts_kept_for_a_browser_follow_the_quarter_hour() -> None:
    """The device keys and the calendar keys joined once are joined again when the quarter
    hour changes: a signal never carries the calendar of an earlier one."""
    web, clock, writer = _clocked()
    builder = web.client.builder
    (first,) = _records(web, _view("/one", cookies={SESSION: "s" * 32}))
    (second,) = _records(web, _view("/two", cookies={SESSION: "s" * 32}))
    first_signal = _parsed(first.encoded_signals(writer) or [])[0]
    clock[0] += 3600
    second_signal = _parsed(second.encoded_signals(writer) or [])[0]
    hour = "TelemetryDeck.Calendar.hourOfDay"
    assert dict(dict(first_signal)["payload"])[hour] == "13"
    assert dict(dict(second_signal)["payload"])[hour] == "14"
    assert _parsed([encode_json_bytes(s) for s in second.signals(builder)]) == [second_signal]


@pytest.mark.usefixtures("nothing_sent")
def test_a_fault_in_the_shortcut_costs_no_signal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    web, record = _record("page view within the site")
    builder = web.client.builder
    encoder = RecordEncoder(web.client.config, builder, lambda reason, count: None)

    def broken(self: SignalJSON, *args: object) -> None:
        raise RuntimeError("broken shortcut")

    monkeypatch.setattr(SignalJSON, "shared", broken)
    with caplog.at_level(logging.ERROR, logger="td_web"):
        sent = [data for data, _ in encoder.entries(record, 1)]
    assert _parsed(sent) == _parsed([encode_json_bytes(s) for s in record.signals(builder)])
    assert len(sent) == 2  # the session start and the page view
    assert "writing a signal's JSON failed" in caplog.text


@pytest.mark.parametrize("hook", ["before_send", "on_signal"])
@pytest.mark.usefixtures("nothing_sent")
def test_hooks_that_need_dicts_get_dicts(hook: str) -> None:
    seen: list[dict[str, Any]] = []

    def look(signal: dict[str, Any]) -> dict[str, Any]:
        seen.append(signal)
        return signal

    web = _web(**{hook: look})
    (record,) = _records(web, _view("/hooked"))
    encoder = RecordEncoder(web.client.config, web.client.builder, lambda reason, count: None)
    assert len(encoder.entries(record, 1)) == 2
    assert [signal["type"] for signal in seen] == ["TelemetryDeck.Session.started", "pageView"]


def test_signals_reach_the_ingest_as_the_general_path_builds_them(ingest: IngestServer) -> None:
    """Through the real sender to the local ingest: what arrives (accepted) is what the
    general path builds from the same queued records."""
    web = WebTelemetry.from_options(
        {
            "app_id": APP_ID,
            "salt": "pepper",
            "endpoint": ingest.url,
            "session_cookie_name": SESSION,
            "flush_interval": 3600,
            "handle_sigterm": False,
        }
    )
    builder = web.client.builder
    builder.calendar = CalendarKeys(clock=lambda: 1_764_590_400.0)
    records: list[RequestSignals] = []
    try:
        for number, agent in enumerate((BROWSER, PHONE, BROWSER, None)):
            cookies = {SESSION: "s" * 32} if number % 2 else None
            request = _view(f"/items/{number}", user_agent=agent, cookies=cookies)
            records += _records(web, request, route="/items/<int:id>")
        del web.client.enqueue  # the client's own again (_records lent it a list's append)
        for record in records:
            web.client.enqueue(record)
        assert web.client.flush()
        expected = [signal for record in records for signal in record.signals(builder)]
        received = ingest.wait_for_signals(len(expected))
    finally:
        web.client.close()
    assert len(expected) == 6  # two new sessions: a session start before their page view
    assert received == json.loads(encode_json_bytes(expected))  # type: ignore[arg-type]


@pytest.mark.usefixtures("nothing_sent")
def test_a_signal_over_max_batch_bytes_is_reported_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    web = _web(max_batch_bytes=1024)
    (record,) = _records(web, _view("/big"))  # a new session: its start and the page view
    dropped: list[tuple[str, int]] = []
    encoder = RecordEncoder(
        web.client.config, web.client.builder, lambda *drop: dropped.append(drop)
    )
    with caplog.at_level(logging.ERROR, logger="td_web"):
        assert encoder.entries(record, 1) == []
    assert dropped == [("too_large", 1), ("too_large", 1)]
    assert "signal 'TelemetryDeck.Session.started' is" in caplog.text
    assert "signal 'pageView' is" in caplog.text
    assert "more than max_batch_bytes (1024); dropped" in caplog.text


def _built_here(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings logged on this thread, where the signals were built: a sender thread left
    by another test (retrying an unreachable endpoint) may log into the same capture."""
    here = threading.get_ident()
    return [record.getMessage() for record in caplog.records if record.thread == here]
