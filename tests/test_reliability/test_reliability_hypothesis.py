"""Arbitrary payloads and signal types: nothing raises into the caller in default mode, and
every byte that would be sent passes the collector's strict Ingest API v2 validation."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import os
import uuid
from typing import Any

from conftest import APP_ID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from td_web import TelemetryDeck
from td_web._transport import http_library
from td_web.collector.validate import validate_body

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()


class Mood(enum.Enum):
    HAPPY = "happy"
    NUMBER = 7


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no string for you")


odd_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=40
) | st.sampled_from(
    [
        "\ud800",
        "a\udfffb",
        "\x00",
        "😀" * 3,
        "count",
        "type",
        "floatValue",
        "payload",
        "__time",
        "receivedAt",
        "",
        " ",
        "a.b.c",
        "x" * 5000,
    ]
)
scalars = (
    odd_text
    | st.integers()
    | st.integers(min_value=10**4000, max_value=10**4400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.binary(max_size=30)
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
    | st.dates()
    | st.uuids()
    | st.sampled_from([Mood.HAPPY, Mood.NUMBER, Unprintable(), object(), 1j, Ellipsis])
)
keys = (
    odd_text
    | st.integers()
    | st.booleans()
    | st.none()
    | st.uuids()
    | st.sampled_from([Mood.HAPPY, (1, 2), frozenset({1})])
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=4)
        | st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=40,
)
payloads = st.dictionaries(keys, values, max_size=30) | st.none() | values
signal_types = odd_text | st.integers() | st.none() | st.just("Valid.type")
float_values = (
    st.none() | st.floats(allow_nan=True) | st.decimals(allow_nan=True) | odd_text | (st.booleans())
)


@settings(
    max_examples=int(os.environ.get("TD_WEB_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(signal_type=signal_types, payload=payloads, float_value=float_values, user=keys)
def test_anything_in_is_valid_out_and_nothing_raises(
    signal_type: Any, payload: Any, float_value: Any, user: Any
) -> None:
    bodies: list[bytes] = []

    def record(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(200)

    td = TelemetryDeck(
        app_id=APP_ID,
        salt="s",
        endpoint="http://ingest.invalid",
        sync=True,
        transport=httpx.MockTransport(record),
        default_payload={"App.flavor": "x"},
    )
    td.signal(signal_type, payload, float_value=float_value, client_user=user, session_id=None)
    td.signal("Always.valid", payload)
    td.close(0)
    assert bodies, "the always-valid signal was not sent"
    for body in bodies:
        verdict = validate_body(body)
        assert verdict.accepted, [p.to_json() for p in verdict.problems]
        for signal in verdict.signals:
            assert "App.flavor" in signal["payload"]
    sent_types = [s["type"] for body in bodies for s in validate_body(body).signals]
    assert sent_types[-1] == "Always.valid"


def test_the_strategy_reaches_the_interesting_corners() -> None:
    """Guards the property test against a strategy that quietly stopped generating them."""
    td_inputs = [float("nan"), decimal.Decimal("NaN"), "\ud800", uuid.uuid4(), 10**5000]
    td = TelemetryDeck(
        app_id=APP_ID,
        endpoint="http://ingest.invalid",
        sync=True,
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    for value in td_inputs:
        assert td.signal("Corner.case", {"v": value, value if isinstance(value, str) else "k": 1})
    assert td.stats().sent == len(td_inputs)
    td.close(0)
