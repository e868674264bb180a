"""The core client and the collector agree: whatever td_web sends, a strict server accepts."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Any

from conftest import APP_ID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import td_web
from td_web._config import build_config
from td_web._signal import SignalBuilder
from td_web.collector import Collector, validate_body


class Colour(enum.Enum):
    RED = "red"


AWKWARD_PAYLOAD: dict[str, Any] = {
    "count": 3,  # reserved: renamed by the sanitizer
    "type": "reserved too",
    "Example.nested": {"deeper": {"deepest": [1, 2, {"x": None}]}},
    "Example.list": ["a", 1, 2.5, None, True],
    "Example.none": None,
    "Example.decimal": Decimal("1.10"),
    "Example.when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    "Example.uuid": uuid.UUID(int=1),
    "Example.enum": Colour.RED,
    "Example.bytes": b"\xffbytes",
    "Example.surrogate": "bad \ud800 text",
    "Example.long": "x" * 10_000,
    "k" * 400: "long key",
    "Example.bool": False,
    "Example.int": 10**30,
    "Example.nan": float("nan"),
    "floatValue": "2.5",
    "HTTP.route": "/awkward/{id}",
    "TelemetryDeck.Signal.durationInSeconds": "0.042",
    7: "integer key",
}


def test_client_signals_are_accepted_with_zero_violations(collector: Collector) -> None:
    client = td_web.TelemetryDeck(
        app_id=APP_ID,
        endpoint=collector.url,
        salt="pepper",
        test_mode=True,
        default_payload={"Example.default": "yes", "platform": "reserved"},
        app_version="1.2.3",
        flush_interval=0.05,
    )
    try:
        for number in range(250):
            assert client.signal(
                f"Example.number{number % 5}",
                AWKWARD_PAYLOAD if number % 2 else {"n": number},
                float_value=number if number % 3 == 0 else None,
                client_user=f"user-{number % 7}" if number % 4 else None,
            )
        client.signal("Example.last", float_value=Decimal("3.5"), session_id="explicit")
        assert client.flush(timeout=20)
    finally:
        client.close()

    assert collector.violations() == []
    stored = collector.wait_for_signals(251)
    assert len(stored) == 251
    assert client.stats().sent == 251
    assert {s.is_test_mode for s in stored} == {True}
    assert all(len(s.client_user) == 64 for s in stored)
    # Batches may arrive in any order (several are in flight at once): find signals by content.
    by_type = {s.type: s for s in stored}
    awkward = [s for s in stored if s.type != "Example.last" and "n" not in s.payload]
    assert len(awkward) == 125  # the odd numbers
    for signal in awkward:
        assert signal.route == "/awkward/{id}"
        assert signal.duration == 0.042
        assert signal.payload["_count"] == "3"
        assert signal.payload["Example.default"] == "yes"
    # The payload's floatValue, except where the call gave one (odd multiples of 3: 42 of them).
    assert [s.float_value for s in awkward].count(2.5) == 125 - 42
    assert by_type["Example.last"].session_id == "explicit"
    assert by_type["Example.last"].float_value == 3.5


def test_namespace_and_sync_mode_end_to_end(collector: Collector) -> None:
    with td_web.TelemetryDeck(
        app_id=APP_ID, endpoint=collector.url, namespace="com.example", sync=True
    ) as client:
        assert client.signal("Example.synchronous", {"a": "b"})
        assert client.stats().sent == 1
    (stored,) = collector.signals()
    assert stored.namespace == "com.example"
    assert stored.is_test_mode is False
    assert collector.violations() == []


# -- the same promise, over arbitrary input, without a network --------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary(max_size=20)
    | st.decimals(allow_nan=False)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
_keys = st.sampled_from(["count", "type", "floatValue", "payload", "__time", "", "a.b"]) | st.text(
    max_size=300
)


def _serialize_like_the_sender(signals: list[dict[str, Any]]) -> bytes:
    parts = [
        json.dumps(s, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
            "utf-8", "surrogatepass"
        )
        for s in signals
    ]
    return b"[" + b",".join(parts) + b"]"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    signal_type=st.text(min_size=1, max_size=300),
    payload=st.dictionaries(_keys, _values, max_size=8),
    float_value=st.none() | st.floats() | st.integers() | st.text(max_size=8),
    client_user=st.none() | st.text(max_size=20),
    session_id=st.none() | st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
)
def test_anything_the_builder_makes_passes_the_validator(
    signal_type: str,
    payload: dict[str, Any],
    float_value: Any,
    client_user: str | None,
    session_id: str | None,
) -> None:
    builder = SignalBuilder(build_config({"app_id": APP_ID, "salt": "s"}, environ={}))
    signal = builder.build(
        signal_type,
        payload,
        float_value=float_value,
        client_user=client_user,
        session_id=session_id,
    )
    if signal is None:  # a type that is blank after trimming: the client reports and drops it
        return
    verdict = validate_body(_serialize_like_the_sender([signal]))
    assert verdict.problems == [], verdict.problems
