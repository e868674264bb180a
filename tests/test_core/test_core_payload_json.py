"""A request's own payload written from parts kept per request value (``_web.payload_json``)
is the payload the general path builds: caches answering a second request never give it the
first one's referer, navigation source, redaction or campaign keys, and stay within their cap.
Each request goes through the real request path (begin, finish); its queued record is written
as JSON and built as dicts, and the parsed JSON (key order included) must be the same."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_core.test_core_fast_path import _records, _view, _web

from td_web._encoding import encode_json_bytes
from td_web._signal_json import SignalJSON
from td_web._web import RequestView, WebTelemetry
from td_web._web import payload_json as payload_json_module
from td_web._web.request_signals import RequestSignals
from td_web.testing import capture


@pytest.fixture(autouse=True)
def nothing_sent() -> Iterator[None]:
    with capture():
        yield


def _both_ways(
    web: WebTelemetry, request: RequestView, writer: SignalJSON | None = None, **finish: Any
) -> list[list[tuple[str, Any]]]:
    """The record's signals written as JSON (asserting the shortcut wrote them), checked
    against the general path's; the written ones, parsed with key order kept."""
    (record,) = _records(web, request, **finish)
    builder = web.client.builder
    written = record.encoded_signals(writer or SignalJSON(builder))
    assert written is not None, "the shortcut declined"
    general = [encode_json_bytes(signal) for signal in record.signals(builder)]
    parsed = [json.loads(data, object_pairs_hook=list) for data in written]
    assert parsed == [json.loads(data, object_pairs_hook=list) for data in general]
    return parsed


def _payload(signals: list[list[tuple[str, Any]]]) -> dict[str, Any]:
    """The page view's payload (the last signal)."""
    return dict(dict(signals[-1])["payload"])


def test_the_same_page_with_different_referers() -> None:
    web = _web()
    writer = SignalJSON(web.client.builder)
    referers = [
        "https://shop.example/cart",  # this site: the navigation's source
        "https://www.google.com/search?q=x",  # another site: no source
        "https://SHOP.example/Cart",  # this site, the host in capitals
        "not a url",  # no referer key at all
        None,
        "https://shop.example/cart",  # the first again, from the cache
    ]
    sources = []
    for referer in referers:
        payload = _payload(_both_ways(web, _view("/products/1/", referer=referer), writer))
        sources.append((payload.get("referer"), payload["TelemetryDeck.Navigation.sourcePath"]))
    assert sources == [
        ("https://shop.example/cart", "/cart"),
        ("https://www.google.com/search", ""),
        ("https://shop.example/Cart", "/Cart"),  # (the host as urlsplit spells it)
        (None, ""),
        (None, ""),
        ("https://shop.example/cart", "/cart"),
    ]


def test_the_same_referer_on_another_host_is_no_source() -> None:
    """The referer's part is kept per (referer, host): a site served under two names."""
    web = _web()
    writer = SignalJSON(web.client.builder)
    referer = "https://shop.example/cart"
    here = _payload(_both_ways(web, _view("/a", referer=referer), writer))
    there = _payload(_both_ways(web, _view("/a", referer=referer, host="other.example"), writer))
    assert here["TelemetryDeck.Navigation.sourcePath"] == "/cart"
    assert there["TelemetryDeck.Navigation.sourcePath"] == ""


def test_a_route_and_path_are_cleaned_by_each_applications_settings() -> None:
    """Two applications in one process, one path: each one's redaction, never the other's
    (the parts are kept per application)."""
    path = "/reset/4f9c2a7e81b34d0c9a6e5f1b2c3d4e5f/order-77/"
    route = "/reset/<token>/order-77/"
    default = _web()
    plain = _web(redact_paths=False)
    patterned = _web(redact_patterns=[re.compile(r"order-\d+")])
    seen = {}
    for name, web in (("default", default), ("plain", plain), ("patterned", patterned)):
        payload = _payload(_both_ways(web, _view(path), route=route))
        seen[name] = (payload["path"], payload["HTTP.route"])
    assert seen == {
        "default": ("/reset/{token}/order-77/", "/reset/{token}/order-77/"),
        "plain": (path, route.replace("<token>", "{token}")),
        "patterned": ("/reset/{token}/{redacted}/", "/reset/{token}/{redacted}/"),
    }


def test_the_same_query_with_and_without_click_ids() -> None:
    query = "gclid=abc&utm_source=google"
    without = _payload(_both_ways(_web(), _view("/ad", query_string=query)))
    with_ids = _payload(_both_ways(_web(send_click_ids=True), _view("/ad", query_string=query)))
    assert "GCLID" not in without
    assert without["combinedSource"] == "google"
    assert with_ids["GCLID"] == "abc"


def test_the_same_line_with_another_status_or_method() -> None:
    web = _web()
    writer = SignalJSON(web.client.builder)
    first = _payload(_both_ways(web, _view("/x"), writer))
    gone = _payload(_both_ways(web, _view("/x"), writer, status=410))
    posted = _payload(_both_ways(web, _view("/x", method="POST"), writer))
    assert (first["HTTP.statusCode"], first["HTTP.method"]) == ("200", "GET")
    assert gone["HTTP.statusCode"] == "410"
    assert posted["HTTP.method"] == "POST"


def test_caches_at_their_cap_start_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payload_json_module, "_LIMIT", 4)
    web = _web()
    writer = SignalJSON(web.client.builder)
    parts = web.payload_json
    for number in range(11):
        request = _view(
            f"/items/{number}",
            referer=f"https://shop.example/from/{number}",
            query_string=f"utm_source=s{number}",
            accept_language=f"de-CH,de;q=0.{number}",
        )
        payload = _payload(_both_ways(web, request, writer))
        assert payload["path"] == f"/items/{number}"
        assert payload["TelemetryDeck.Navigation.sourcePath"] == f"/from/{number}"
        assert payload["combinedSource"] == f"s{number}"
        caches = (parts._pages, parts._referers, parts._queries, parts._languages, parts._owns)
        assert all(len(cache) <= 4 for cache in caches)
    assert len(parts._pages) == 3  # 11 requests: started over at the 5th and the 9th
    assert len(parts._owns) == 3


def test_values_longer_than_the_caches_keep_are_built_each_time() -> None:
    web = _web()
    long_path = "/long/" + "segment/" * 80
    long_referer = "https://shop.example/" + "r/" * 300
    payload = _payload(_both_ways(web, _view(long_path, referer=long_referer)))
    assert payload["path"] == long_path
    assert payload["TelemetryDeck.Navigation.sourcePath"] == "/" + "r/" * 300
    parts = web.payload_json
    assert not parts._pages and not parts._referers and not parts._owns  # none kept


@pytest.mark.parametrize(
    "duration", [0.0, 1e-07, 5e-06, 0.0000125, 0.0124996, 2.5, 86400.123456789]
)
def test_the_duration_is_the_same_number(duration: float) -> None:
    web = _web()
    (record,) = _records(web, _view("/d"))
    record.duration = duration
    builder = web.client.builder
    written = record.encoded_signals(SignalJSON(builder))
    assert written is not None
    general = [encode_json_bytes(signal) for signal in record.signals(builder)]
    mine, theirs = json.loads(written[-1]), json.loads(general[-1])
    assert mine == theirs
    assert mine["floatValue"] == round(duration, 6)


def test_a_value_the_sanitizer_would_report_declines() -> None:
    """Non-ASCII text takes the general path (the sanitizer decides), referer and path."""
    for request in (_view("/caf\u00e9"), _view("/a", referer="https://shop.example/caf\u00e9")):
        (record,) = _records(_web(), request)
        assert record.encoded_signals(SignalJSON(record.web.client.builder)) is None


def test_a_request_that_is_no_page_view() -> None:
    web = _web()
    signals = _both_ways(
        web,
        _view("/api/items", method="POST", referer="https://shop.example/cart"),
        status=201,
        content_type="application/json",
        route="/api/items",
    )
    payload = _payload(signals)
    assert "TelemetryDeck.Navigation.sourcePath" not in payload
    assert payload["referer"] == "https://shop.example/cart"


def test_an_error_keeps_the_cleaned_route_and_path() -> None:
    web = _web()
    path = "/users/someone@example.com/"
    signals = _both_ways(web, _view(path), status=500, error=RuntimeError("x"))
    error = next(dict(signal) for signal in signals if "Error" in dict(signal)["type"])
    assert dict(error["payload"])["path"] == "/users/{email}/"


def test_a_record_built_outside_the_request_path() -> None:
    """(As bench/page_view_cost.py makes them.)"""
    web = _web()
    request = _view("/p/1/", referer="https://shop.example/", query_string="utm_source=n")
    record = RequestSignals(
        web, request, 200, "/p/<int:id>/", 0.012, True, None, "k" * 20, True, None, None
    )
    builder = web.client.builder
    written = record.encoded_signals(SignalJSON(builder)) or []
    general = [encode_json_bytes(signal) for signal in record.signals(builder)]
    assert [json.loads(data) for data in written] == [json.loads(data) for data in general]
    assert len(written) == 2


def test_a_path_a_pattern_made_much_longer_is_not_kept() -> None:
    """Every one-letter segment becomes ``{redacted}``: 400 characters in, 2,200 out."""
    web = _web(redact_patterns=[re.compile(r"[a-z]")])
    path = "/x" * 200
    payload = _payload(_both_ways(web, _view(path, referer="https://shop.example/x")))
    assert payload["path"] == "/{redacted}" * 200
    assert payload["TelemetryDeck.Navigation.sourcePath"] == "/{redacted}"
    assert not web.payload_json._pages
    long_referer = "https://elsewhere.example" + path
    payload = _payload(_both_ways(web, _view("/", referer=long_referer)))
    assert payload["referer"] == "https://elsewhere.example" + "/{redacted}" * 200
    assert [referer for referer, _ in web.payload_json._referers] == ["https://shop.example/x"]
