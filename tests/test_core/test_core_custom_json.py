"""Custom signals written as JSON straight from their payload (``_custom_json``) are the
signals the general path builds as dicts and encodes: the same bytes (keys, order, values),
the same warnings. Each record is made as ``signal()`` makes it (``custom_record``, the
caller's copy of the payload included) and encoded both ways."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer

from td_web import TelemetryDeck
from td_web._calendar import CalendarKeys
from td_web._custom import CustomRecord, SignalCall, custom_record
from td_web._custom_json import CustomSignalJSON
from td_web._encoding import RecordEncoder, encode_built_bytes
from td_web._log import throttled
from td_web._signal import Record
from td_web.testing import capture

NOON = 1_764_590_400.0
HASH = "a" * 64

# name: (client options, signal() arguments, custom_record's keywords)
Case = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
WRITTEN: dict[str, Case] = {
    "no payload": ({}, {}, {}),
    "an empty payload": ({}, {"payload": {}}, {}),
    "text": ({}, {"payload": {"Checkout.cart": "standard", "a.b": "1"}}, {}),
    "ints": ({}, {"payload": {"Items": 3, "Big": 10**17, "Negative": -5, "Zero": 0}}, {}),
    "flags": ({}, {"payload": {"On": True, "Off": False}}, {}),
    "floats": (
        {},
        {"payload": {"Ratio": 0.1, "Huge": 1e300, "Tiny": 1e-7, "NaN": float("nan")}},
        {},
    ),
    "a None value": ({}, {"payload": {"Kept": "x", "Gone": None}}, {}),
    "non-ASCII text and key": ({}, {"payload": {"Größe": "Zoë 東京 🎉"}}, {}),
    "text JSON escapes": ({}, {"payload": {"Quote": 'a "b" \\ c\n\t\x01\x7f'}}, {}),
    "text at the length limit": ({}, {"payload": {"Long": "x" * 4096}}, {}),
    "nested and exotic values (made text by the caller)": (
        {},
        {"payload": {"Outer": {"inner": 1}, "Price": Decimal("9.99"), "Tags": ["a", 2]}},
        {},
    ),
    "a float floatValue": ({}, {"float_value": 2.5}, {}),
    "an int floatValue and a payload": ({}, {"payload": {"A": "b"}, "float_value": 3}, {}),
    "a user": ({}, {"client_user": "user-17"}, {}),
    "an empty user": ({}, {"client_user": ""}, {}),
    "a session ID": ({}, {"client_user": "u", "session_id": "my-session"}, {}),
    "a session ID JSON escapes": ({}, {"session_id": 'a"b\\c'}, {}),
    "an empty session ID": ({}, {"session_id": ""}, {}),
    "a session key": ({}, {"client_user": "u"}, {"session_key": "cookie-value"}),
    "a session key, no user": ({}, {}, {"session_key": "cookie-value"}),
    "a user hashed where the work began": ({}, {"payload": {"A": 1}}, {"client_user_hash": HASH}),
    "test mode, another time zone": ({"test_mode": True, "time_zone": "Asia/Kolkata"}, {}, {}),
    "app version, build and environment": (
        {"app_version": "2.1", "build_number": "77", "environment": "staging", "debug": False},
        {"payload": {"A": "b"}},
        {},
    ),
    "a default payload of other keys": (
        {"default_payload": {"Plan": "pro"}},
        {"payload": {"A": "b"}},
        {},
    ),
    "as many keys as a payload may hold": (
        {},
        {"payload": {f"Key{n}": "v" for n in range(117)}},
        {},
    ),
}
DECLINED: dict[str, Case] = {
    "a reserved key": ({}, {"payload": {"count": "1", "type": "x"}}, {}),
    "floatValue in the payload": ({}, {"payload": {"floatValue": 1.5}}, {}),
    "a key too long": ({}, {"payload": {"k" * 300: "v"}}, {}),
    "an empty key": ({}, {"payload": {"": "v"}}, {}),
    "a non-text key": ({}, {"payload": {7: "v"}}, {}),
    "a value too long": ({}, {"payload": {"Long": "v" * 5000}}, {}),
    "a lone surrogate in a value": ({}, {"payload": {"Bad": "x\ud800y"}}, {}),
    "a lone surrogate in a key": ({}, {"payload": {"B\udc00d": "v"}}, {}),
    "an int too large": ({}, {"payload": {"Big": 10**20}}, {}),
    "a text floatValue": ({}, {"float_value": "2.5"}, {}),
    "an infinite floatValue": ({}, {"float_value": float("inf")}, {}),
    "a bool floatValue": ({}, {"float_value": True}, {}),
    "an int floatValue beyond a float": ({}, {"float_value": 10**400}, {}),
    "a payload that is no mapping": ({}, {"payload": ["a", "b"]}, {}),
    "a type to clean": ({}, {"signal_type": "  Padded.type  "}, {}),
    "a type that is no text": ({}, {"signal_type": 42}, {}),
    "an empty type": ({}, {"signal_type": ""}, {}),
    "a default floatValue": ({"default_payload": {"floatValue": 1.0}}, {}, {}),
    "a key naming a calendar key": (
        {},
        {"payload": {"TelemetryDeck.Calendar.hourOfDay": "0"}},
        {},
    ),
    "a key naming a default payload key": (
        {"default_payload": {"Plan": "pro"}},
        {"payload": {"Plan": "max"}},
        {},
    ),
    "a non-ASCII session ID": ({}, {"session_id": "séance"}, {}),
    "a session ID too long": ({}, {"session_id": "s" * 300}, {}),
    "more keys than a signal may hold": (
        {},
        {"payload": {f"Key{n}": "v" for n in range(118)}},
        {},
    ),
    "per-call properties": ({}, {"payload": {"A": "b"}}, {"extra_payload": {"Team": "a"}}),
}


@pytest.fixture
def nothing_sent() -> Iterator[None]:
    with capture():
        yield


def _client(**options: Any) -> TelemetryDeck:
    td = TelemetryDeck(app_id=APP_ID, salt="pepper", **options)
    td.builder.calendar = CalendarKeys(
        options.get("time_zone", "UTC"), clock=lambda: NOON
    )  # one quarter hour for both ways
    return td


def _record(td: TelemetryDeck, arguments: dict[str, Any], keywords: dict[str, Any]) -> Record:
    call = SignalCall(
        arguments.get("signal_type", "Checkout.completed"),
        arguments.get("payload"),
        arguments.get("float_value"),
        arguments.get("client_user"),
    )
    session_id = arguments.get("session_id")
    return custom_record(td.builder, False, call, session_id=session_id, **keywords)


def _said(
    caplog: pytest.LogCaptureFixture, encode: Callable[[], list[bytes]]
) -> tuple[list[bytes], list[str]]:
    """What ``encode`` returns and the warnings td_web gave meanwhile (none throttled away)."""
    caplog.clear()
    throttled.reset()
    encoded = encode()
    return encoded, [r.getMessage() for r in caplog.records if r.name == "td_web"]


@pytest.mark.parametrize("name", [*WRITTEN, *DECLINED])
@pytest.mark.usefixtures("nothing_sent")
def test_written_json_equals_the_built_signals(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    options, arguments, keywords = {**WRITTEN, **DECLINED}[name]
    td = _client(**options)
    try:
        builder = td.builder
        with caplog.at_level(logging.WARNING, logger="td_web"):
            record = _record(td, arguments, keywords)  # the caller's warnings, said once
            written: list[list[bytes] | None] = []
            write = CustomSignalJSON.custom

            def spy(self: CustomSignalJSON, *args: Any) -> list[bytes] | None:
                written.append(write(self, *args))
                return written[-1]

            monkeypatch.setattr(CustomSignalJSON, "custom", spy)
            encoder = RecordEncoder(td.config, builder, lambda reason, count: None)
            general, general_warnings = _said(
                caplog, lambda: [encode_built_bytes(signal) for signal in record.signals(builder)]
            )
            sent, sent_warnings = _said(
                caplog, lambda: [data for data, _ in encoder.entries(record, 1)]
            )
    finally:
        td.close()
    if name in WRITTEN:
        assert written and written[0] is not None, "the sender built what it should write"
    else:
        assert written in ([], [None]), "the sender wrote what it should build"
    assert sent == general
    assert sent_warnings == general_warnings


@pytest.mark.usefixtures("nothing_sent")
def test_the_written_payload_follows_the_quarter_hour() -> None:
    td = _client()
    clock = [NOON]
    td.builder.calendar = CalendarKeys(clock=lambda: clock[0])
    writer = CustomSignalJSON(td.builder)
    record = _record(td, {"payload": {"A": "b"}}, {})
    assert isinstance(record, CustomRecord)
    try:
        first = json.loads((record.encoded_signals(writer) or [b""])[0])
        clock[0] += 3600
        second = json.loads((record.encoded_signals(writer) or [b""])[0])
        built = json.loads(encode_built_bytes(next(iter(record.signals(td.builder)))))
    finally:
        td.close()
    hour = "TelemetryDeck.Calendar.hourOfDay"
    assert (first["payload"][hour], second["payload"][hour]) == ("13", "14")
    assert second == built


@pytest.mark.parametrize("hook", ["before_send", "on_signal"])
@pytest.mark.usefixtures("nothing_sent")
def test_a_hook_that_needs_dicts_gets_the_dict_path(
    hook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a hook, the writer is not even asked; the hook sees the signal, which is sent."""

    def never(*args: object) -> None:
        raise AssertionError("a custom signal was written while a hook needs dicts")

    monkeypatch.setattr(CustomSignalJSON, "custom", never)
    hooked: list[dict[str, Any]] = []
    td = _client(**{hook: lambda signal: hooked.append(signal) or signal})
    try:
        record = _record(td, {"payload": {"A": "b"}}, {})
        encoder = RecordEncoder(td.config, td.builder, lambda reason, count: None)
        sent = [json.loads(data) for data, _ in encoder.entries(record, 1)]
    finally:
        td.close()
    assert len(hooked) == 1
    assert [signal["payload"]["A"] for signal in sent] == ["b"]


def test_signals_reach_the_ingest_as_the_general_path_builds_them(ingest: IngestServer) -> None:
    """Through ``signal()`` and the real sender to the local ingest: the same calls by a
    client that writes JSON and by one whose ``on_signal`` hook makes it build dicts arrive
    as the same signals."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("Checkout.completed", {"payload": {"Cart.items": 3, "Cart.currency": "EUR"}}),
        ("Checkout.completed", {"payload": {"Ratio": 0.5, "On": True}, "float_value": 9.5}),
        ("Search.done", {"client_user": "user-9", "session_id": "s-1"}),
        ("Search.done", {"payload": {"Nested": {"x": 1}, "Gone": None}, "client_user": "u"}),
        ("Search.done", {"payload": {"count": 2}}),  # declined: renamed by the sanitizer
    ]
    received = []
    for options in ({}, {"on_signal": lambda signal: None}):
        td = _client(endpoint=ingest.url, flush_interval=3600, **options)
        try:
            for signal_type, arguments in calls:
                assert td.signal(signal_type, **{"session_id": "s", **arguments})
            assert td.flush()
            received.append(ingest.wait_for_signals(len(calls) * (len(received) + 1)))
        finally:
            td.close()
    fast, general = received[0], received[1][len(calls) :]
    assert len(fast) == len(calls)
    assert fast == general
