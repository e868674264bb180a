"""One signal as compact JSON: the bytes the sender puts into a batch.

td_web's own signals are flat dicts of text and numbers, so they take a faster path than
signals an ``on_signal`` hook may have changed; both give the same text.
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
