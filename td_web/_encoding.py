"""Queued records into the bytes the sender puts into a batch: each signal as compact JSON.

td_web's own signals are flat dicts of text and numbers, so they take a faster path than
signals an ``on_signal`` hook may have changed; both give the same JSON values. With the
``fast`` extra installed (orjson), built signals are encoded by orjson: about five times
faster than the standard library for a page view (BENCHMARKS.md, "Sender CPU per signal").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._log import logger
from ._signal import Record, Signal, SignalBuilder

if TYPE_CHECKING:
    from ._config import ClientConfig
    from ._signal_json import SignalJSON

#: One serialized signal and the sequence number of the queued record it came from.
Entry = tuple[bytes, int]

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


def encode_members(members: Mapping[str, Any]) -> bytes:
    """A flat dict of td_web's own keys as the members of a JSON object, without its braces
    (``b""`` for none): a part that ``_signal_json`` joins with others into a signal."""
    return encode_built_bytes(members)[1:-1] if members else b""  # type: ignore[arg-type]


class RecordEncoder:
    """A queued record into the entries of a batch, on the sender's thread: its signals built,
    shown to the ``on_signal`` hook, encoded and checked against ``max_batch_bytes``. A record
    or signal that cannot be sent is logged and counted (``count_drop``), never raised, except
    in strict sync mode where the caller asked for it."""

    def __init__(
        self,
        config: ClientConfig,
        builder: SignalBuilder,
        count_drop: Callable[[str, int], None],
    ) -> None:
        self._config = config
        self._builder = builder
        self._count_drop = count_drop
        # A hook may put anything into a signal: then the general encoder.
        self._encode = encode_json_bytes if config.on_signal is not None else encode_built_bytes
        #: Records that can write their signals as JSON themselves (``encoded_signals``) do so
        #: unless a hook needs each signal as a dict.
        self._json: SignalJSON | None = None
        if config.on_signal is None and builder.before_send is None:
            # Here: those modules build on this one. The custom writer is a SignalJSON that
            # also writes custom signals (``_custom.CustomRecord``).
            from ._custom_json import CustomSignalJSON

            self._json = CustomSignalJSON(builder)

    def entries(self, record: Record, seq: int) -> list[Entry]:
        write = getattr(record, "encoded_signals", None) if self._json is not None else None
        if write is not None:
            try:
                encoded = write(self._json)
            except Exception:
                # A fault in the shortcut must not cost the signal: the general path decides.
                logger.exception("td_web: writing a signal's JSON failed; built the general way")
                encoded = None
            # None: built as dicts instead, which also reports what made the record decline
            # (a value the sanitizer would change, a signal over max_batch_bytes) as before.
            if encoded is not None:
                limit = self._config.max_batch_bytes - 2  # the batch's brackets
                for data in encoded:
                    if len(data) > limit:
                        break
                else:  # (a loop: max(map(len, ...)) measured 1 µs against 0.1 µs)
                    return [(data, seq) for data in encoded]
        return self.encode(self.signals(record), seq)

    def signals(self, record: Record) -> list[Signal]:
        try:
            signals = list(record.signals(self._builder))
        except Exception:
            if self._config.strict and self._config.sync:
                raise
            logger.exception("td_web: could not build a signal; it was dropped")
            self._count_drop("invalid", 1)
            return []
        hook = self._config.on_signal
        if hook is not None:
            for signal in signals:
                try:
                    hook(signal)
                except Exception:
                    logger.exception("td_web: the on_signal hook raised")
        return signals

    def encode(self, signals: Iterable[Signal], seq: int) -> list[Entry]:
        entries = []
        limit = self._config.max_batch_bytes
        for signal in signals:
            try:
                data = self._encode(signal)
            except (TypeError, ValueError) as exc:
                logger.error(
                    "td_web: signal %r could not be serialized (%s); dropped",
                    signal.get("type"),
                    exc,
                )
                self._count_drop("invalid", 1)
                continue
            if len(data) + 2 > limit:  # the batch's brackets
                logger.error(
                    "td_web: signal %r is %d bytes, more than max_batch_bytes (%d); dropped",
                    signal.get("type"),
                    len(data),
                    limit,
                )
                self._count_drop("too_large", 1)
                continue
            entries.append((data, seq))
        return entries
