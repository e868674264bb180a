"""Custom signals written straight as JSON, as page views are (``_signal_json``).

A custom signal built as a dict costs the sender its whole payload merged, sanitized and
encoded again each time, though all but the caller's few keys (calendar, SDK, context and
default keys) are the same for every signal of a quarter hour, and the caller's keys are
mostly the same few names. Here the shared part is encoded once per quarter hour, each key's
validity is decided once, and per signal only the caller's values are converted and encoded.

The JSON is the one ``SignalBuilder.build`` and ``_encoding`` give for the same record (same
keys, order and values: tests/test_core/test_core_custom_json.py writes payloads of every kind
both ways). Whatever the sanitizer would change or report declines (None) to the general path,
which then says it as before: an unusual value or key, a type to clean, a session ID to repair,
per-call properties, a default ``floatValue``, too many keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._encoding import encode_built_bytes, encode_members
from ._sanitize import (
    FLOAT_VALUE_KEY,
    MAX_KEY_LENGTH,
    MAX_KEYS,
    MAX_VALUE_LENGTH,
    RESERVED_KEYS,
)
from ._signal import BoundedMemo, SignalBuilder
from ._signal_json import SignalJSON

if TYPE_CHECKING:
    from ._signal import CustomSignal

#: Payload keys remembered; more means keys built from data.
_NAME_LIMIT = 4096
_SPECIAL_KEYS = RESERVED_KEYS | {FLOAT_VALUE_KEY}
#: Ints the sanitizer turns into text as they are (larger ones take its general path).
_INT_LIMIT = 10**18


class _Base:
    """The calendar and base keys of one quarter hour, encoded: every custom signal's payload
    starts with them."""

    __slots__ = ("calendar", "count", "keys", "members")

    def __init__(self, calendar: object, merged: dict[str, Any]) -> None:
        self.calendar = calendar
        self.members = encode_members(merged)
        self.count = len(merged)
        #: Every base key: a payload key of the same name would take the base key's place.
        self.keys = frozenset(merged)


class CustomSignalJSON(SignalJSON):
    """:class:`SignalJSON` that also writes custom signals (``_custom.CustomRecord``)."""

    def __init__(self, builder: SignalBuilder) -> None:
        super().__init__(builder)
        self._custom_builder = builder
        self._custom_head = b'{"appID":' + _json(builder.app_id) + b',"clientUser":"'
        self._custom_base: _Base | None = None
        #: Keys the sanitizer leaves as they are, none of them a base key.
        self._custom_keys: set[str] = set()
        #: ``clientUser`` and ``sessionID`` for a user id, without a session (the usual call).
        self._custom_user_ids: BoundedMemo[str, bytes] = BoundedMemo(
            lambda user: self.ids(user, None)
        )

    def custom(self, record: CustomSignal, user_hash: str | None = None) -> list[bytes] | None:
        """The record's one signal as JSON, or None when it needs the general path.
        ``user_hash``: a clientUser hashed where the work was started (``CarriedSignal``)."""
        signal_type = record.signal_type
        if type(signal_type) is not str or record.extra_payload:
            return None
        # The page views' part for the type (kept by SignalJSON), the same for a custom signal.
        type_part = self._types.get(signal_type) or self._type_part(signal_type)
        if type_part is None:
            return None
        calendar = self._custom_builder.calendar()
        base = self._custom_base
        if base is None or base.calendar is not calendar:
            base = self._custom_new_base(calendar)
            if base is None:
                return None
        payload = record.payload
        values: dict[str, Any] = {}
        if payload:
            if type(payload) is not dict or len(payload) > MAX_KEYS:
                return None
            known = self._custom_keys
            # What the sanitizer does to each value, inline: a call per value was a third of
            # the cost of the whole signal.
            for key, value in payload.items():
                if key not in known and not self._custom_key(key, base):
                    return None
                kind = type(value)
                if kind is str:
                    if len(value) > MAX_VALUE_LENGTH or not (value.isascii() or _utf8(value)):
                        return None  # cut or repaired, and reported, by the general path
                elif kind is int:
                    if not -_INT_LIMIT < value < _INT_LIMIT:
                        return None
                    value = str(value)
                elif kind is bool:
                    value = "true" if value else "false"
                elif kind is float:
                    value = repr(value)
                elif value is None:
                    continue  # the sanitizer leaves it out
                else:
                    return None
                values[key] = value
        elif payload is not None and type(payload) is not dict:
            return None  # reported by the general path
        float_value = record.float_value
        number_json = b""
        if float_value is not None:
            if type(float_value) is float:
                number = float_value
            elif type(float_value) is int and -_INT_LIMIT < float_value < _INT_LIMIT:
                number = float(float_value)  # (a larger int may overflow a float: reported there)
            else:
                return None
            if number - number != 0.0:  # inf or nan: reported by the general path
                return None
            values[FLOAT_VALUE_KEY] = number
            number_json = _json(number)
        if base.count + len(values) > MAX_KEYS:
            return None  # cut, with a warning, by the general path
        ids = self._custom_ids(record, user_hash)
        if ids is None:
            return None
        own = encode_members(values)
        head = self._custom_head
        if not own:
            return [b"".join((head, ids, type_part, base.members, b"}}"))]
        if not number_json:
            return [b"".join((head, ids, type_part, base.members, b",", own, b"}}"))]
        parts = (head, ids, type_part, base.members, b",", own, b'},"floatValue":', number_json)
        return [b"".join(parts) + b"}"]

    def _custom_new_base(self, calendar: object) -> _Base | None:
        """A new quarter hour's base; None when a default ``floatValue`` would also go to the
        top level (the general path puts it there)."""
        merged = self._custom_builder.calendar_and_base(calendar)  # type: ignore[arg-type]
        if FLOAT_VALUE_KEY in merged:
            return None
        base = _Base(calendar, merged)
        old = self._custom_base
        if old is None or old.keys != base.keys:
            self._custom_keys = set()  # a key known clean may be a base key now
        self._custom_base = base
        return base

    def _custom_key(self, key: object, base: _Base) -> bool:
        """Whether the sanitizer sends ``key`` as it is and says nothing, and no base key has
        its name (remembered)."""
        if (
            type(key) is not str
            or not key
            or len(key) > MAX_KEY_LENGTH
            or key in _SPECIAL_KEYS
            or key in base.keys
            or (not key.isascii() and not _utf8(key))
        ):
            return False
        known = self._custom_keys
        if len(known) >= _NAME_LIMIT:
            known.clear()
        known.add(key)
        return True

    def _custom_ids(self, record: CustomSignal, user_hash: str | None) -> bytes | None:
        """``clientUser`` and ``sessionID`` as ``build`` derives them (``SignalJSON.ids``), up
        to the session ID's closing quote, which the type part opens with."""
        session_id = record.session_id
        client_user = record.client_user
        if session_id is None and user_hash is None:
            if record.session_key is not None or type(client_user) is not str:
                return self.ids(client_user, record.session_key)
            return self._custom_user_ids.known(client_user) or self._custom_user_ids(client_user)
        builder = self._custom_builder
        if session_id is None:
            session_key = record.session_key
            session_id = (
                builder.session_id_for(session_key) if session_key else builder.process_session_id
            )
        elif type(session_id) is not str or not session_id.isascii() or len(session_id) > 256:
            return None  # repaired and reported by the general path
        user = (
            user_hash
            if user_hash is not None
            else builder.client_user_hash(client_user) or builder.anonymous_user(session_id)
        )
        return user.encode("ascii") + b'","sessionID":' + _json(session_id)[:-1]


def _json(value: str | float) -> bytes:
    return encode_built_bytes(value)  # type: ignore[arg-type]  # any JSON value, not only a dict


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
