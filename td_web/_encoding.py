"""One signal as compact JSON: the bytes the sender puts into a batch.

td_web's own signals are flat dicts of text and numbers, so they take a faster path than
signals an ``on_signal`` hook may have changed; both give the same JSON values. With the
``fast`` extra installed (orjson), built signals are encoded by orjson: about five times
faster than the standard library for a page view (BENCHMARKS.md, "Sender CPU per signal").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._signal import Signal

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
encode_json = _ENCODER.encode


def _encoder_without_markers() -> Callable[[Signal], str]:
    """The same encoding with one C encoder built once and no circular-reference bookkeeping.

    ``JSONEncoder.encode`` builds a C encoder on every call and tracks every container it
    enters; signals built by td_web are flat dicts of text and numbers, so neither is needed.
    Only used when no ``on_signal`` hook could have put something else into a signal.
    """
    make: Any = getattr(json.encoder, "c_make_encoder", None)  # untyped in typeshed
    if make is None:  # no C accelerator (another interpreter): the plain encoder
        return encode_json
    chunks = make(
        None,
        _ENCODER.default,
        json.encoder.encode_basestring,
        None,
        _ENCODER.key_separator,
        _ENCODER.item_separator,
        False,
        False,
        False,
    )

    def encode(signal: Signal) -> str:
        return "".join(chunks(signal, 0))

    return encode


encode_built_json = _encoder_without_markers()


def encode_json_bytes(signal: Signal) -> bytes:
    """Any signal (an ``on_signal`` hook may have changed it), as UTF-8 JSON."""
    return encode_json(signal).encode("utf-8", "surrogatepass")


def _stdlib_built_bytes(signal: Signal) -> bytes:
    return encode_built_json(signal).encode("utf-8", "surrogatepass")


def _orjson_encoder() -> Callable[[Signal], bytes] | None:
    try:
        import orjson
    except ImportError:
        return None
    dumps = orjson.dumps
    refused = orjson.JSONEncodeError

    def encode(signal: Signal) -> bytes:
        # A built signal holds only text, a finite floatValue and a bool (the sanitizer saw to
        # that, before_send's results included), which orjson writes as the standard library
        # does, numbers perhaps spelled otherwise (0.00001 for 1e-05: the same JSON number).
        # What orjson refuses (a lone surrogate, which the standard library passes through)
        # goes the old way, so that no signal is encoded or dropped differently than before.
        try:
            return dumps(signal)
        except refused:
            return _stdlib_built_bytes(signal)

    return encode


#: A signal td_web built (no hook changed it) as UTF-8 JSON: orjson when installed.
encode_built_bytes: Callable[[Signal], bytes] = _orjson_encoder() or _stdlib_built_bytes
