from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import pytest
from conftest import APP_ID

from td_web import SignalError, TelemetryDeck
from td_web._sanitize import (
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    MAX_KEYS,
    MAX_VALUE_LENGTH,
    Reporter,
    sanitize_payload,
)
from td_web.testing import capture


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def clean(payload: Any) -> dict[str, Any]:
    return sanitize_payload(payload, Reporter(strict=False, signal_type="T.t"))


def test_values_become_strings() -> None:
    moment = dt.datetime(2026, 11, 29, 3, 30, tzinfo=dt.timezone.utc)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert clean(
        {
            "yes": True,
            "no": False,
            "int": 42,
            "decimal": Decimal("1.10"),
            "uuid": ident,
            "enum": Color.RED,
            "intenum": Level.HIGH,
            "float": 0.1,
            "when": moment,
            "day": dt.date(2026, 1, 2),
            "text": "plain",
            "gone": None,
        }
    ) == {
        "yes": "true",
        "no": "false",
        "int": "42",
        "decimal": "1.10",
        "uuid": "12345678-1234-5678-1234-567812345678",
        "enum": "red",
        "intenum": "3",
        "float": "0.1",
        "when": "2026-11-29T03:30:00+00:00",
        "day": "2026-01-02",
        "text": "plain",
    }


def test_float_strings_round_trip() -> None:
    value = 1 / 3
    assert float(clean({"x": value})["x"]) == value


def test_nested_mappings_flatten_with_dots_and_lists_become_json() -> None:
    assert clean({"Cart": {"items": 3, "Meta": {"gift": True}}, "tags": ["a", 1, None]}) == {
        "Cart.items": "3",
        "Cart.Meta.gift": "true",
        "tags": '["a",1,null]',
    }
    assert clean({"t": ("x",), "s": {"b", "a"}}) == {"t": '["x"]', "s": '["a","b"]'}


def test_depth_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for level in range(MAX_DEPTH + 2):
        deep = {f"L{level}": deep}
    flat = clean(deep)
    (key,) = flat
    assert key.count(".") == MAX_DEPTH - 1
    assert "leaf" in flat[key]  # the rest is kept as JSON text, not lost
    assert "nests deeper" in caplog.text


def test_key_count_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    flat = clean({f"k{i}": i for i in range(MAX_KEYS + 10)})
    assert len(flat) == MAX_KEYS
    assert f"more than {MAX_KEYS} keys" in caplog.text


@pytest.mark.parametrize(
    "key", ["count", "type", "appID", "clientUser", "__time", "payload", "platform", "receivedAt"]
)
def test_reserved_keys_get_an_underscore(key: str) -> None:
    assert clean({key: "v"}) == {"_" + key: "v"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (2.5, 2.5), (Decimal("19.99"), 19.99), (" 7.25 ", 7.25), ("-1e3", -1000.0)],
)
def test_float_value_accepts_numbers(value: object, expected: float) -> None:
    flat = clean({"floatValue": value})
    assert flat == {"floatValue": expected}
    assert isinstance(flat["floatValue"], float)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (True, "bool"),
        (float("nan"), "float"),
        (float("inf"), "float"),
        ("abc", "str"),
        ([], "list"),
    ],
)
def test_bad_float_value_is_dropped_with_a_warning_and_the_rest_kept(
    value: object, type_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert clean({"floatValue": value, "other": 1}) == {"other": "1"}
    assert "'floatValue' dropped" in caplog.text
    assert f"got {type_name}" in caplog.text


def test_long_keys_and_values_are_truncated(caplog: pytest.LogCaptureFixture) -> None:
    flat = clean({"k" * (MAX_KEY_LENGTH + 5): "v" * (MAX_VALUE_LENGTH + 5)})
    ((key, value),) = flat.items()
    assert len(key) == MAX_KEY_LENGTH
    assert len(value) == MAX_VALUE_LENGTH
    assert "cut to" in caplog.text


def test_odd_inputs_are_repaired_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("no")

    flat = clean({1: "int key", "bad\ud800": "x\udfff", "w": Weird(), "": "empty", "ok": "1"})
    assert flat["1"] == "int key"
    assert flat["bad\ufffd"] == "x\ufffd"
    assert "w" not in flat
    assert "" not in flat
    assert flat["ok"] == "1"
    assert clean(["not", "a", "mapping"]) == {}
    assert "could not be turned into a string" in caplog.text


def test_strict_mode_raises_into_the_caller() -> None:
    td = TelemetryDeck(app_id=APP_ID, strict=True, endpoint="http://127.0.0.1:9")
    try:
        with pytest.raises(SignalError, match="non-empty"):
            td.signal("")
        with pytest.raises(SignalError, match="must be a string"):
            td.signal(42)  # type: ignore[arg-type]
        with pytest.raises(SignalError, match=r"'float_value' dropped.*got bool"):
            td.signal("A.b", float_value=True)  # type: ignore[arg-type]
    finally:
        td.close(0)


def test_default_mode_never_raises_and_keeps_the_signal(caplog: pytest.LogCaptureFixture) -> None:
    td = TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9")
    with capture() as signals:
        assert td.signal("", {"a": 1}) is True  # queued; dropped with a warning when built
        td.signal("Good.one", {"floatValue": "NaN", "keep": "me"}, float_value=True)  # type: ignore[arg-type]
    td.close(0)
    assert signals.types() == ["Good.one"]
    assert signals[0]["payload"]["keep"] == "me"
    assert "floatValue" not in signals[0]["payload"]
    assert "the signal type must be a non-empty string" in caplog.text


def test_float_value_argument_wins_over_payload_key() -> None:
    td = TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9")
    with capture() as signals:
        td.signal("A.b", {"floatValue": 1}, float_value="2.5")
    td.close(0)
    assert signals[0]["payload"]["floatValue"] == 2.5


def test_session_id_is_sent_as_valid_bounded_text(caplog: pytest.LogCaptureFixture) -> None:
    td = TelemetryDeck(app_id=APP_ID, endpoint="http://127.0.0.1:9")
    with capture() as signals:
        td.signal("A.b", session_id="x\ud800")
        td.signal("A.b", session_id="s" * 1000)
        td.signal("A.b", session_id=12345)  # type: ignore[arg-type]
    td.close(0)
    assert [s["sessionID"] for s in signals] == ["x\ufffd", "s" * MAX_KEY_LENGTH, "12345"]
    assert "session_id is 1000 characters" in caplog.text
