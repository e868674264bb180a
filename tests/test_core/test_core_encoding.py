"""The bytes of a built signal: orjson (the ``fast`` extra) and the standard library agree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer

from td_web import TelemetryDeck, _encoding
from td_web._config import build_config
from td_web._signal import SignalBuilder

orjson = pytest.importorskip("orjson")


def _builder(**options: Any) -> SignalBuilder:
    return SignalBuilder(build_config({"app_id": APP_ID, "salt": "s", **options}, environ={}))


SIGNALS: list[tuple[str, dict[str, Any]]] = [
    ("plain", {"Cart.items": 3, "Shop": "main"}),
    ("non-ASCII text", {"city": "Zürich", "emoji": "🎉", "quote": 'say "hi"\n\\'}),
    ("small float", {"floatValue": 1e-05}),
    ("large float", {"floatValue": 1.5e16}),
    ("negative float", {"floatValue": -0.25}),
    ("control characters", {"tab": "a\tb\x00c\x1f"}),
    ("nested", {"outer": {"inner": [1, 2.5, None, True]}}),
]


@pytest.mark.parametrize(("name", "payload"), SIGNALS, ids=[name for name, _ in SIGNALS])
def test_orjson_and_standard_library_give_the_same_json(name: str, payload: dict[str, Any]) -> None:
    signal = _builder(test_mode=True).build("Shop.checkout", payload, client_user="u-1")
    assert signal is not None
    fast = _encoding.encode_built_bytes(signal)
    standard = _encoding.encode_json_bytes(signal)
    assert json.loads(fast) == json.loads(standard) == json.loads(json.dumps(signal))
    assert _encoding.encode_built_bytes is not _encoding._stdlib_built_bytes  # orjson in use


def test_text_orjson_refuses_is_encoded_as_before() -> None:
    """A lone surrogate is what only the standard library (with surrogatepass) writes: such a
    signal is encoded the old way instead of being dropped."""
    signal = {"appID": APP_ID, "type": "T", "payload": {"bad": "a\ud800b"}}
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(signal)
    assert _encoding.encode_built_bytes(signal) == _encoding._stdlib_built_bytes(signal)


def test_sender_posts_orjson_bytes_the_ingest_reads(ingest: IngestServer) -> None:
    client = TelemetryDeck(app_id=APP_ID, salt="s", endpoint=ingest.url, flush_interval=0.05)
    try:
        client.signal("Shop.checkout", {"city": "Zürich"}, float_value=1e-05)
        assert client.flush(5)
    finally:
        client.close(timeout=1)
    (signal,) = ingest.accepted_signals
    assert signal["payload"]["city"] == "Zürich"
    assert signal["payload"]["floatValue"] == signal["floatValue"] == 1e-05
    assert b'"floatValue":0.00001' in ingest.requests[0].raw  # orjson's spelling of 1e-05
