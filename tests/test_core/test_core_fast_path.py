"""The sender's fast path for td_web's own payloads gives exactly what the sanitizer gives.

A request's payload (path, host, referer, campaign parameters, navigation keys, the error's
name and message) is merged without the sanitizer when every value is plain ASCII within the
length limit (``_web.payload.plain_payload``). Each request here is turned into its signals
twice, once that way and once with every payload through the sanitizer, and the two must be
equal, key order included: the fast path cannot drift from the sanitizer's rules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import APP_ID
from test_core.test_core_web import view

from td_web import RequestView
from td_web._calendar import CalendarKeys
from td_web._log import throttled
from td_web._sanitize import MAX_VALUE_LENGTH, Reporter, sanitize_payload
from td_web._web import WebTelemetry
from td_web._web import request_signals as request_signals_module
from td_web._web.payload import plain_payload
from td_web._web.request_signals import RequestSignals
from td_web.testing import capture

BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
VISITOR = "tdv"


def _web(**options: Any) -> WebTelemetry:
    web = WebTelemetry.from_options(
        {"app_id": APP_ID, "salt": "pepper", "endpoint": "http://127.0.0.1:9", **options}
    )
    # Both builds of a record read the same calendar keys, whatever the clock does between.
    web.client.builder.calendar = CalendarKeys(clock=lambda: 1_764_590_400.0)
    return web


def _records(
    web: WebTelemetry,
    request: RequestView,
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
    route: str | None = None,
    error: BaseException | None = None,
) -> list[RequestSignals]:
    """The records a request queues, made by the real request path (begin, finish)."""
    queued: list[RequestSignals] = []
    web.client.enqueue = queued.append  # type: ignore[method-assign,assignment]
    telemetry = web.begin(request, native=request)
    telemetry.finish(status, content_type, route, error=error)
    return queued


def _view(path: str = "/", **fields: Any) -> RequestView:
    """test_core_web's request, with the headers the dashboard keys read."""
    headers = {"user_agent": BROWSER, "accept_language": "de-CH,de;q=0.9"}
    return view(path, **{**headers, "client_addr": "203.0.113.9", **fields})


Case = tuple[dict[str, Any], Callable[[], RequestView], dict[str, Any]]
CASES: dict[str, Case] = {
    "page view from a search engine, campaign parameters": (
        {},
        lambda: _view(
            "/products/42/",
            query_string="utm_source=newsletter&utm_campaign=spring&page=2",
            referer="https://www.google.com/search?q=shoes",
        ),
        {"route": "/products/<int:id>/"},
    ),
    "page view within the site": (
        {},
        lambda: _view("/cart", referer="https://shop.example/products/42/?x=1"),
        {},
    ),
    "API request, no page view": (
        {},
        lambda: _view("/api/items", method="POST"),
        {"status": 201, "content_type": "application/json", "route": "/api/items"},
    ),
    "error with its message": (
        {"send_error_messages": True},
        lambda: _view("/pay", method="POST"),
        {"error": ValueError("card declined"), "route": "/pay"},
    ),
    "error with a non-ASCII message": (
        {"send_error_messages": True},
        lambda: _view("/pay"),
        {"error": ValueError("Größe ungültig ✗")},
    ),
    "error with a message at the length limit": (
        {"send_error_messages": True},
        lambda: _view("/pay"),
        {"error": ValueError("x" * (MAX_VALUE_LENGTH + 50))},
    ),
    "non-ASCII path and referer": (
        {},
        lambda: _view("/städte/zürich", referer="https://shop.example/st%C3%A4dte/"),
        {},
    ),
    "lone surrogate in the path": ({}, lambda: _view("/bad/\udcff/x"), {}),
    "path longer than a payload value may be": (
        {},
        lambda: _view("/" + "a" * MAX_VALUE_LENGTH),
        {},
    ),
    "percent-encoded non-ASCII campaign value": (
        {},
        lambda: _view("/", query_string="utm_source=%C3%BCber&ref=x"),
        {},
    ),
    "campaign value longer than the limit": (
        {},
        lambda: _view("/", query_string="utm_term=" + "t" * (MAX_VALUE_LENGTH + 1)),
        {},
    ),
    "new visitor": ({"visitor_cookie": True}, lambda: _view("/"), {}),
    "returning visitor, new session": (
        {"visitor_cookie": True},
        lambda: _view("/", cookies={VISITOR: "returning"}),
        {},
    ),
    "custom per-request payload": (
        {"default_payload": lambda request: {"Tenant": "acme", "Cart.items": 3}},
        lambda: _view("/checkout"),
        {},
    ),
    "default payload overriding request keys": (
        {"default_payload": {"host": "mine", "path": "/x", "Plan": "pro"}},
        lambda: _view("/pricing"),
        {},
    ),
    "default payload of too many keys": (
        {"default_payload": {f"Key.{n}": str(n) for n in range(130)}},
        lambda: _view("/full"),
        {},
    ),
    "sampled session": ({"sample_rate": 0.999999}, lambda: _view("/sampled"), {}),
    "before_send changes the payload": (
        {
            "before_send": lambda signal: {
                **signal,
                "payload": {**signal["payload"], "Extra": "1"},
            }
        },
        lambda: _view("/hooked"),
        {},
    ),
}


def _returning_cookie(web: WebTelemetry) -> str:
    telemetry = web.begin(_view("/first"), native=None)
    header = telemetry.visitor_cookie_header()
    telemetry.finish(200, "text/html")
    assert header is not None
    return header.split(";", 1)[0].split("=", 1)[1]


@pytest.fixture
def nothing_sent() -> Iterator[None]:
    with capture():
        yield


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.usefixtures("nothing_sent")
def test_fast_path_equals_the_sanitizer(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    options, make_view, finish = CASES[name]
    if options.get("visitor_cookie"):
        options = {**options, "visitor_cookie_name": VISITOR}
    web = _web(**options)
    request = make_view()
    if request.cookies == {VISITOR: "returning"}:
        request.cookies = {VISITOR: _returning_cookie(web)}
    (record,) = _records(web, request, **finish)
    builder = web.client.builder

    with caplog.at_level(logging.WARNING, logger="td_web"):
        caplog.clear()
        throttled.reset()
        fast = list(record.signals(builder))
        fast_warnings = _built_here(caplog)
        caplog.clear()
        throttled.reset()  # the same warning again, not throttled away
        monkeypatch.setattr(request_signals_module, "plain_payload", lambda payload: False)
        generic = list(record.signals(builder))
        generic_warnings = _built_here(caplog)

    assert fast, "the request gave no signal to compare"
    assert [list(s["payload"]) for s in fast] == [list(s["payload"]) for s in generic]
    assert fast == generic
    assert fast_warnings == generic_warnings


@pytest.mark.parametrize(
    "payload",
    [
        {"path": "/a", "floatValue": 0.5},
        {"path": "/ä"},
        {"path": "/\udcff"},
        {"path": "p" * MAX_VALUE_LENGTH, "host": "h" * MAX_VALUE_LENGTH},
        {"path": "p" * (MAX_VALUE_LENGTH + 1)},
        {"path": "/a", "floatValue": float("inf")},
        {"path": "/a", "floatValue": "0.5"},
        {"path": "/a", "Items": 3},
        {"path": "/a", "floatValue": 0.5, "other": 0.5},
        {"path": "/a", "Items": None},
    ],
)
def test_plain_payload_means_the_sanitizer_changes_nothing(
    payload: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Plain: the sanitizer returns the same dict and says nothing. (Not plain does not mean
    the sanitizer changes something: valid non-ASCII text, for one, takes the sanitizer.)"""
    throttled.reset()
    with caplog.at_level(logging.WARNING, logger="td_web"):
        sanitized = sanitize_payload(payload, Reporter(False))
    if plain_payload(payload):
        assert sanitized == payload
        assert [list(sanitized.items())] == [list(payload.items())]
        assert not caplog.records


def _built_here(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings logged on this thread, where the signals were built: a sender thread left
    by another test (retrying an unreachable endpoint) may log into the same capture."""
    here = threading.get_ident()
    return [record.getMessage() for record in caplog.records if record.thread == here]
