"""The payload sanitizer: the one place that turns arbitrary Python values into a payload the
Ingest API v2 accepts (a flat object of strings, plus ``floatValue`` as a number).

Every problem is reported through a :class:`Reporter`: in strict mode it raises
:class:`SignalError`; by default it logs a throttled warning and the offending value alone is
dropped or repaired, never the signal.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import re
import uuid
from collections.abc import Container, Iterable, Mapping, Set
from decimal import Decimal
from typing import Any

from ._log import throttled

#: Limits, documented in the README ("Payload rules").
MAX_TYPE_LENGTH = 256
MAX_KEY_LENGTH = 256
MAX_VALUE_LENGTH = 4096
MAX_KEYS = 128
MAX_DEPTH = 5

FLOAT_VALUE_KEY = "floatValue"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

#: Keys the ingest server reserves for itself; sent with a leading underscore instead.
RESERVED_KEYS = frozenset(
    {"count", "type", "appID", "clientUser", "__time", "payload", "platform", "receivedAt"}
)
_SPECIAL_KEYS = RESERVED_KEYS | {FLOAT_VALUE_KEY}

Payload = dict[str, "str | float"]


class SignalError(ValueError):
    """A signal or payload value that cannot be sent as given (raised in strict mode only)."""


class Reporter:
    """Where the sanitizer's complaints go: raised in strict mode, otherwise logged."""

    __slots__ = ("signal_type", "strict")

    def __init__(self, strict: bool, signal_type: str = "?") -> None:
        self.strict = strict
        self.signal_type = signal_type

    def problem(self, kind: str, message: str) -> None:
        """``kind`` names the sort of problem (a constant): it is the throttle key, so that
        values of a thousand lengths or keys of a thousand names still log once a minute."""
        text = f"signal {self.signal_type!r}: {message}"
        if self.strict:
            raise SignalError(text)
        throttled.warning("sanitize:" + kind, "td_web: %s", text)


def describe(value: object) -> str:
    """The type of a value and a short, safe preview of it for a log line."""
    try:
        preview = repr(value)
    except Exception:
        preview = "<unrepresentable>"
    if len(preview) > 40:
        preview = preview[:37] + "..."
    return f"{type(value).__name__} ({preview})"


def sanitize_type(signal_type: object, reporter: Reporter) -> str | None:
    """The signal type as it will be sent, or None when the signal cannot be sent at all."""
    if not isinstance(signal_type, str):
        reporter.problem(
            "type-not-text", f"the signal type must be a string, got {describe(signal_type)}"
        )
        return None
    cleaned = _valid_text(signal_type.strip(), "type", reporter)
    if not cleaned:
        reporter.problem("type-empty", "the signal type must be a non-empty string")
        return None
    if len(cleaned) > MAX_TYPE_LENGTH:
        cleaned = _cut(cleaned, MAX_TYPE_LENGTH, "type-too-long", "the signal type", reporter)
    return cleaned


def sanitize_session_id(session_id: object, reporter: Reporter) -> str:
    """A caller's session ID as valid, bounded text (it is sent as given otherwise)."""
    text = session_id if isinstance(session_id, str) else _safe_str(session_id)
    text = _valid_text(text, "session_id", reporter)
    if len(text) > MAX_KEY_LENGTH:
        text = _cut(text, MAX_KEY_LENGTH, "session-id-too-long", "session_id", reporter)
    return text


def coerce_float_value(value: object, key: str, reporter: Reporter) -> float | None:
    """A finite float from int, float, Decimal or a numeric string; None (reported) otherwise."""
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, (int, float, Decimal)):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            number = None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        reporter.problem(
            "float-value",
            f"{key!r} dropped: it must be a finite number (int, float, Decimal or numeric "
            f"string), got {describe(value)}",
        )
        return None
    return number


def sanitize_payload(payload: object, reporter: Reporter) -> Payload:
    """A flat ``{str: str}`` payload (``floatValue`` a float) from any mapping."""
    if payload is None:
        return {}
    # type() first: a dict (nearly every payload) skips the ABC's slower isinstance check.
    if type(payload) is not dict and not isinstance(payload, Mapping):
        reporter.problem(
            "payload-not-mapping", f"the payload must be a mapping, got {describe(payload)}"
        )
        return {}
    plain = _plain_payload(payload)
    if plain is not None:
        return plain
    flat: dict[str, object] = {}
    _flatten(payload, "", 1, flat, reporter)
    result: Payload = {}
    for key, value in flat.items():
        # The common case, plain ASCII text under a plain key, skips every check below.
        if (
            type(value) is str
            and value.isascii()
            and len(value) <= MAX_VALUE_LENGTH
            and len(key) <= MAX_KEY_LENGTH
            and key not in _SPECIAL_KEYS
            and len(result) < MAX_KEYS
            and key not in result
        ):
            result[key] = value
            continue
        if len(result) >= MAX_KEYS:
            reporter.problem(
                "too-many-keys",
                f"the payload has more than {MAX_KEYS} keys ({len(flat)}); the rest were dropped",
            )
            break
        if key in RESERVED_KEYS:
            key = _renamed_reserved_key(key, flat, result, reporter)
        if len(key) > MAX_KEY_LENGTH:
            reporter.problem("key-too-long", f"payload key {key[:40]!r}... cut to {MAX_KEY_LENGTH}")
            key = key[:MAX_KEY_LENGTH]
        if key in result:
            reporter.problem(
                "key-collision",
                f"payload key {key[:60]!r} occurs twice once cut to {MAX_KEY_LENGTH} characters; "
                "the later value was sent",
            )
        if key == FLOAT_VALUE_KEY:
            number = coerce_float_value(value, key, reporter)
            if number is not None:
                result[key] = number
            continue
        text = _to_text(value, key, reporter)
        if text is not None:
            result[key] = text
    return result


def _renamed_reserved_key(
    key: str, flat: Mapping[str, object], result: Mapping[str, object], r: Reporter
) -> str:
    """``_count`` for ``count``; when the payload has its own ``_count`` too, both are kept:
    the payload's keys keep their names and the renamed one gets another underscore."""
    renamed = "_" + key
    while renamed in flat or renamed in result:
        renamed = "_" + renamed
    if renamed != "_" + key:
        r.problem(
            "reserved-key-taken",
            f"payload key {key!r} is reserved and the payload also has '_{key}'; "
            f"{key!r} was sent as {renamed!r}",
        )
    return renamed


def cap_keys(
    body: Payload, protected: Container[str], r: Reporter, preferred: Iterable[str] = ()
) -> Payload:
    """At most ``MAX_KEYS`` keys in a whole payload: td_web's own keys (``protected``) and
    ``floatValue`` stay, then the ``preferred`` keys (the signal's own payload, over the
    default payload's), and the caller's last keys go, with one warning."""
    if len(body) <= MAX_KEYS:
        return body
    kept: Payload = {k: v for k, v in body.items() if k in protected or k == FLOAT_VALUE_KEY}
    for key in preferred:
        if len(kept) >= MAX_KEYS:
            break
        if key in body:
            kept.setdefault(key, body[key])
    for key, value in body.items():
        if len(kept) >= MAX_KEYS:
            break
        kept.setdefault(key, value)
    r.problem(
        "too-many-keys",
        f"the payload has more than {MAX_KEYS} keys ({len(body)} with td_web's own); "
        f"the last {len(body) - len(kept)} were dropped",
    )
    return {k: kept[k] for k in body if k in kept}


def _plain_payload(payload: Mapping[Any, Any]) -> Payload | None:
    """The payload in one pass when it is flat and plain: ASCII text keys, ASCII text or small
    int values, and ``floatValue`` a finite float. That is what the automatic request signal
    and most custom signals are, and the general path below would return exactly the same
    dict, only slower. None: something needs the general path."""
    if len(payload) > MAX_KEYS:
        return None
    result: Payload = {}
    for key, value in payload.items():
        if type(key) is not str or not key or not key.isascii() or len(key) > MAX_KEY_LENGTH:
            return None
        kind = type(value)
        if key in _SPECIAL_KEYS:
            if key == FLOAT_VALUE_KEY and kind is float and math.isfinite(value):
                result[key] = value
                continue
            return None
        if kind is str:
            if not value.isascii() or len(value) > MAX_VALUE_LENGTH:
                return None
            result[key] = value
        elif kind is int and -(10**18) < value < 10**18:
            result[key] = str(value)
        else:
            return None
    return result


def _flatten(
    mapping: Mapping[Any, Any], prefix: str, depth: int, out: dict[str, object], r: Reporter
) -> None:
    for raw_key, value in list(mapping.items()):
        if type(raw_key) is str and raw_key.isascii() and raw_key:
            if type(value) is str:
                _put(out, prefix + raw_key, value, r)
                continue
            if type(value) is int and -(10**18) < value < 10**18:
                _put(out, prefix + raw_key, str(value), r)
                continue
        key = _key_text(raw_key, prefix, r)
        if key is None:
            continue
        full_key = prefix + key
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                r.problem(
                    "too-deep",
                    f"payload key {full_key!r} nests deeper than {MAX_DEPTH} levels; "
                    "sent as a JSON string",
                )
                _put(out, full_key, _json_text(value), r)
            else:
                _flatten(value, full_key + ".", depth + 1, out, r)
        elif value is not None:
            _put(out, full_key, value, r)


def _put(out: dict[str, object], key: str, value: object, r: Reporter) -> None:
    """``{"a.b": 1, "a": {"b": 2}}`` flattens both to ``a.b``: the later one is sent, and the
    loss is said, not silent."""
    if key in out:
        r.problem(
            "key-collision",
            f"payload key {key[:60]!r} occurs twice once nested keys are joined with dots; "
            "the later value was sent",
        )
    out[key] = value


def _key_text(raw_key: object, prefix: str, r: Reporter) -> str | None:
    if isinstance(raw_key, str):
        key = raw_key
    elif isinstance(raw_key, (int, enum.Enum, uuid.UUID)) and not isinstance(raw_key, bool):
        key = str(raw_key.value if isinstance(raw_key, enum.Enum) else raw_key)
    else:
        try:
            key = str(raw_key)
        except Exception:
            r.problem(
                "key-unconvertible",
                f"a payload key of type {type(raw_key).__name__} "
                "could not be turned into a string; dropped",
            )
            return None
        r.problem(
            "key-not-text", f"payload key {describe(raw_key)} is not a string; sent as {key!r}"
        )
    key = _valid_text(key, prefix + key[:40], r)
    if not key:
        r.problem("key-empty", f"an empty payload key under {prefix!r} was dropped")
        return None
    return key


def _valid_text(text: str, key: str, r: Reporter) -> str:
    """Text that encodes as UTF-8: lone surrogates become U+FFFD (reported)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        r.problem("invalid-utf8", f"{key!r} holds characters that are not valid UTF-8; replaced")
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


def _to_text(value: object, key: str, r: Reporter) -> str | None:
    text = _convert(value, key, r)
    if text is None:
        return None
    text = _valid_text(text, key, r)
    if len(text) > MAX_VALUE_LENGTH:
        text = _cut(text, MAX_VALUE_LENGTH, "value-too-long", f"payload value of {key!r}", r)
    return text


def _cut(text: str, limit: int, code: str, what: str, r: Reporter) -> str:
    """``text`` cut to ``limit`` characters, with the one warning every cut gives. Callers test
    the length first: values within their limit, nearly all of them, cost no call."""
    r.problem(code, f"{what} is {len(text)} characters; cut to {limit}")
    return text[:limit]


def _convert(value: object, key: str, r: Reporter) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            # int(): an IntEnum's str() is its name on Python 3.10 and its number later.
            return str(int(value))
        except ValueError:  # beyond the interpreter's int-to-str digit limit
            r.problem(
                "int-too-large",
                f"payload value of {key!r} is an integer too large to send; dropped",
            )
            return None
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, enum.Enum):
        return _convert(value.value, key, r)
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple, Set)):
        return _json_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    try:
        text = str(value)
    except Exception as exc:
        r.problem(
            "value-unconvertible",
            f"payload value of {key!r} ({type(value).__name__}) could not be turned "
            f"into a string ({type(exc).__name__}); dropped",
        )
        return None
    r.problem(
        "value-not-text", f"payload value of {key!r} has type {type(value).__name__}; sent as str()"
    )
    return text


def _json_text(value: object) -> str:
    return json.dumps(
        _jsonable(value, 0), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )


def _jsonable(value: object, depth: int) -> object:
    """A JSON-safe copy of a list element or nested value, strings for anything exotic."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else _safe_str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth >= MAX_DEPTH:
        return _safe_str(value)
    if isinstance(value, Mapping):
        return {_safe_str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, Set):
        return sorted((_jsonable(v, depth + 1) for v in value), key=_safe_str)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return _convert(value, "", Reporter(strict=False))


def _safe_str(value: object) -> str:
    """str() that cannot raise: a huge int or a broken __str__ becomes a placeholder."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"
