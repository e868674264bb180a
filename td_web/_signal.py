"""Turning what callers hand us into wire signals.

Callers on the request path only queue a small record; the worker thread turns records into
signal dicts here (sanitizing, hashing, merging default payloads), so that none of that work
is paid for while a request is being served. Strict mode builds on the caller's thread instead,
so that bad input raises where it was written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from ._before_send import BeforeSend, RequestOrigin
from ._calendar import CalendarKeys
from ._config import ClientConfig
from ._hashing import anonymous_client_user, derive_session_id, hash_client_user
from ._sanitize import (
    FLOAT_VALUE_KEY,
    MAX_KEYS,
    Payload,
    Reporter,
    cap_keys,
    coerce_float_value,
    sanitize_payload,
    sanitize_session_id,
    sanitize_type,
)
from ._version import __version__

SDK_NAME = "td_web"
#: The payload key that carries the sample rate on every signal of a sampled session (as text,
#: like every payload value; ``_web.sampling``): td_web's own, never dropped by the key cap.
SAMPLE_RATE_KEY = "Sampling.rate"
_CACHE_LIMIT = 10_000
K = TypeVar("K")
V = TypeVar("V")
#: An app sends a handful of signal types; more than this means types built from data.
_TYPE_CACHE_LIMIT = 1024

Signal = dict[str, Any]


#: Keys longer than this are derived every time, never remembered: ten thousand user ids of a
#: megabyte each would otherwise stay in memory as cache keys.
_CACHED_KEY_LENGTH = 256


class BoundedMemo(Generic[K, V]):
    """Remembers a one-way derivation (a hash) per key, forgetting everything when full: a
    miss only costs the derivation again, and memory stays bounded whatever the input (in
    entries and, since only short keys are kept, in bytes)."""

    __slots__ = ("_derive", "_values", "known")

    def __init__(self, derive: Callable[[K], V]) -> None:
        self._derive = derive
        self._values: dict[K, V] = {}
        #: ``known(key)``: the value remembered for ``key``, or None; for a caller that looks
        #: the usual hit up without a call of its own (the dict's ``get``).
        self.known = self._values.get

    def __call__(self, key: K) -> V:
        value = self._values.get(key)
        if value is None:
            if key is not None and len(key) > _CACHED_KEY_LENGTH:  # type: ignore[arg-type]
                return self._derive(key)
            if len(self._values) >= _CACHE_LIMIT:
                self._values.clear()
            value = self._values[key] = self._derive(key)
        return value


#: What a queued record costs beyond its strings (the objects holding them), for the
#: queue's byte budget; an estimate, never a measurement.
RECORD_OVERHEAD = 200


class Record(Protocol):
    """Something queued by a caller that becomes zero or more signals on the worker.

    A record may also have ``encoded_signals(writer: SignalJSON) -> list[bytes] | None``:
    its signals written as JSON straight from parts encoded once (``_signal_json``), used when
    no ``before_send`` or ``on_signal`` hook needs dicts; None sends it through ``signals``.
    """

    def signals(self, builder: SignalBuilder) -> Iterable[Signal]: ...

    def approx_size(self) -> int:
        """Roughly the bytes this record keeps alive while queued: called on the request
        path for every record, so a few ``len()`` calls, never a serialization."""
        ...


def _text_size(value: object) -> int:
    """Characters of a string, or of a payload's keys and values (nested ones counted as a
    fixed amount: ``_frozen`` flattened anything deep before it was queued)."""
    if type(value) is str:
        return len(value)
    if isinstance(value, Mapping):
        size = 0
        for key, item in value.items():
            size += (len(key) if type(key) is str else 16) + (
                len(item) if type(item) is str else 16
            )
        return size
    return 0 if value is None else 16


class SignalBuilder:
    """Builds wire signals for one client configuration; caches its one-way derivations."""

    def __init__(self, config: ClientConfig) -> None:
        self.app_id = config.app_id
        self.salt = config.salt
        self.test_mode = config.test_mode
        self.strict = config.strict
        self.process_session_id = uuid.uuid4().hex
        #: Signals refused for an unusable type (``stats().dropped["invalid"]``): counted
        #: here, where the refusal happens, not by the sender, for which a record that yields
        #: no signal may also have been dropped on purpose (``before_send``, a crawler).
        self.invalid = 0
        base: Payload = {
            "TelemetryDeck.SDK.name": SDK_NAME,
            "TelemetryDeck.SDK.version": __version__,
            "TelemetryDeck.SDK.nameAndVersion": f"{SDK_NAME} {__version__}",
        }
        base.update(context_keys(config))
        defaults: Payload = {}
        if config.default_payload and isinstance(config.default_payload, Mapping):
            defaults = sanitize_payload(config.default_payload, Reporter(config.strict, "*"))
            base.update(defaults)
        self.base_payload = base
        #: The default payload's keys: the only base keys a request's own keys could meet.
        self.default_keys = frozenset(defaults)
        self.calendar = CalendarKeys(config.time_zone)
        #: The calendar keys and the base payload merged, for the calendar keys they hold.
        self._prefix: tuple[Mapping[str, str], Payload] = ({}, {})
        salt = self.salt
        self._user_hash: BoundedMemo[str, str] = BoundedMemo(
            lambda user: hash_client_user(user, salt)
        )
        self._session_id: BoundedMemo[str, str] = BoundedMemo(
            lambda key: derive_session_id(key, salt)
        )
        self._anonymous: BoundedMemo[str | None, str] = BoundedMemo(
            lambda session: anonymous_client_user(session, salt)
        )
        self.before_send = (
            BeforeSend(config.before_send, config.before_send_errors)
            if config.before_send is not None
            else None
        )
        #: Signal types that sanitize to themselves: most calls repeat a handful of types.
        self._clean_types: set[str] = set()

    def client_user_hash(self, client_user: object) -> str | None:
        """The salted hash of a user identifier; None when there is no usable identifier."""
        if client_user is None:
            return None
        identifier = client_user if isinstance(client_user, str) else str(client_user)
        return self._user_hash(identifier) if identifier else None

    def session_id_for(self, session_key: str) -> str:
        """The one-way session ID for a cookie value (or other per-session secret)."""
        return self._session_id(session_key)

    def anonymous_user(self, session_id: str | None) -> str:
        return self._anonymous(session_id)

    def release(
        self, signals: Iterable[Signal | None], origin: RequestOrigin | None = None
    ) -> list[Signal]:
        """The built signals that go out: ``before_send`` has the last word on each."""
        built = [signal for signal in signals if signal is not None]
        if self.before_send is None or not built:
            return built
        return self.before_send.apply(built, origin)

    def calendar_and_base(self, calendar: Mapping[str, str]) -> Payload:
        """The quarter hour's ``calendar`` keys and the base payload merged, calendar keys
        first (a default payload may override them), once per quarter hour: every signal's
        payload starts from it. Shared: never change it."""
        prefix = self._prefix
        if prefix[0] is not calendar:  # a new quarter hour (one tuple: safe across threads)
            prefix = self._prefix = (calendar, {**calendar, **self.base_payload})
        return prefix[1]

    def is_clean_type(self, signal_type: str, reporter: Reporter) -> bool:
        """Whether a signal type needs no sanitizing (``reporter`` hears why not)."""
        return self._signal_type(signal_type, reporter) == signal_type

    def _signal_type(self, signal_type: object, reporter: Reporter) -> str | None:
        if type(signal_type) is str and signal_type in self._clean_types:
            return signal_type
        cleaned = sanitize_type(signal_type, reporter)
        # Unchanged means nothing was reported (every problem changes or drops the type).
        if cleaned is not None and cleaned == signal_type and type(signal_type) is str:
            if len(self._clean_types) >= _TYPE_CACHE_LIMIT:
                self._clean_types.clear()
            self._clean_types.add(cleaned)
        return cleaned

    def build(
        self,
        signal_type: object,
        payload: Mapping[str, Any] | None = None,
        *,
        float_value: object = None,
        client_user: object = None,
        session_id: str | None = None,
        session_key: str | None = None,
        extra_payload: Mapping[str, Any] | None = None,
        strict: bool | None = None,
        clean_payload: Mapping[str, str] | None = None,
        clean_own_payload: Mapping[str, str | float] | None = None,
    ) -> Signal | None:
        """One wire signal, or None (reported) when the type makes it unsendable.

        ``extra_payload`` holds automatic per-request keys; the caller's ``payload`` wins
        over it, and both win over the client's default payload. ``clean_payload`` holds keys
        td_web derived itself, already plain ASCII text within the limits (device, country,
        visitor keys): merged as they are, without another pass through the sanitizer.
        ``clean_own_payload`` stands for ``payload`` when td_web made it and found it to be
        what the sanitizer would return unchanged (``_web.payload.plain_payload``).
        """
        reporter = Reporter(self.strict if strict is None else strict)
        cleaned_type = self._signal_type(signal_type, reporter)
        if cleaned_type is None:
            self.invalid += 1
            return None
        reporter.signal_type = cleaned_type
        calendar = self.calendar()
        # A copy: a quarter of the cost of merging the two each time.
        body = self.calendar_and_base(calendar).copy()
        if clean_payload:
            body.update(clean_payload)
        own: Mapping[str, str | float] = {}
        if clean_own_payload is not None:  # as below, without sanitizing it
            if extra_payload:
                body.update(sanitize_payload(extra_payload, reporter))
                own = clean_own_payload
            body.update(clean_own_payload)
        elif extra_payload and payload:
            # Sanitized apart, so that a default payload of many keys cannot push the signal's
            # own keys (td_web's request keys, a custom signal's payload) past the key limit.
            own = sanitize_payload(payload, reporter)
            body.update(sanitize_payload(extra_payload, reporter))
            body.update(own)
        elif payload or extra_payload:
            body.update(sanitize_payload(payload or extra_payload, reporter))
        if float_value is not None:
            number = coerce_float_value(float_value, "float_value", reporter)
            if number is not None:
                body[FLOAT_VALUE_KEY] = number
        if len(body) > MAX_KEYS:  # the caller's keys fit alone, but not with td_web's own
            protected = {*calendar, *self.base_payload, *(clean_payload or ()), SAMPLE_RATE_KEY}
            body = cap_keys(body, protected, reporter, own)
        if session_id is None:
            session_id = (
                self.session_id_for(session_key) if session_key else self.process_session_id
            )
        elif type(session_id) is not str or not session_id.isascii() or len(session_id) > 256:
            session_id = sanitize_session_id(session_id, reporter)
        user_hash = self.client_user_hash(client_user) or self.anonymous_user(session_id)
        signal: Signal = {
            "appID": self.app_id,
            "clientUser": user_hash,
            "sessionID": session_id,
            "type": cleaned_type,
            "isTestMode": self.test_mode,
            "payload": body,
        }
        top_level = body.get(FLOAT_VALUE_KEY)
        if top_level is not None:
            # The wire contract reads it inside the payload, TelemetryDeck's current
            # documentation (and its Swift and Kotlin SDKs) at the top level: the same number
            # in both places is read right either way.
            signal[FLOAT_VALUE_KEY] = top_level
        return signal


def context_keys(config: ClientConfig) -> Payload:
    """The application's version, build and run context, the same on every signal."""
    keys: Payload = {}
    if config.app_version:
        keys["TelemetryDeck.AppInfo.version"] = config.app_version
    if config.build_number:
        keys["TelemetryDeck.AppInfo.buildNumber"] = config.build_number
        if config.app_version:
            keys["TelemetryDeck.AppInfo.versionAndBuildNumber"] = (
                f"{config.app_version} {config.build_number}"
            )
    if config.environment:
        keys["TelemetryDeck.RunContext.targetEnvironment"] = config.environment
    if config.debug is not None:
        keys["TelemetryDeck.RunContext.isDebug"] = "true" if config.debug else "false"
        keys["TelemetryDeck.SDK.buildType"] = "debug" if config.debug else "release"
    return keys


class CustomSignal:
    """A signal as a caller described it, built later on the worker thread."""

    __slots__ = (
        "client_user",
        "extra_payload",
        "float_value",
        "origin",
        "payload",
        "session_id",
        "session_key",
        "signal_type",
        "size",
    )

    def __init__(
        self,
        signal_type: object,
        payload: Mapping[str, Any] | None,
        float_value: object,
        client_user: object,
        session_id: str | None,
        session_key: str | None = None,
        extra_payload: Mapping[str, Any] | None = None,
        origin: RequestOrigin | None = None,
    ) -> None:
        self.signal_type = signal_type
        self.payload, size = _frozen(payload, signal_type)
        self.float_value = float_value
        if client_user is not None:
            # Turned into text here: str() of a user object (a model instance) must run on
            # the caller's thread, not the sender's.
            if type(client_user) is not str:
                client_user = str(client_user)
            size += len(client_user)
        self.client_user = client_user
        self.session_id = session_id
        self.session_key = session_key
        self.extra_payload = extra_payload
        self.origin = origin
        # Measured here, while every part is at hand, for ``approx_size``: the payload while it
        # was frozen (one pass for both), the rest a few short strings or None, tested inline
        # and the usual None of the rarer ones at once (a _text_size call for each, with its
        # ABC check for None, was a third of a signal() call's cost).
        size += RECORD_OVERHEAD + (len(signal_type) if type(signal_type) is str else 16)
        if (
            session_id is not None
            or session_key is not None
            or float_value is not None
            or extra_payload is not None
        ):
            for text in (session_id, session_key):
                if type(text) is str:
                    size += len(text)
                elif text is not None:
                    size += 16
            if float_value is not None:
                size += _text_size(float_value)
            if extra_payload is not None:
                size += _text_size(extra_payload)
        self.size = size

    def approx_size(self) -> int:
        return self.size

    def signals(self, builder: SignalBuilder) -> Iterable[Signal]:
        signal = builder.build(
            self.signal_type,
            self.payload,
            float_value=self.float_value,
            client_user=self.client_user,
            session_id=self.session_id,
            session_key=self.session_key,
            extra_payload=self.extra_payload,
        )
        return builder.release((signal,), self.origin)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _frozen(payload: Any, signal_type: object) -> tuple[Any, int]:
    """The payload as it is now, and the characters it holds (``approx_size``): the caller may
    change its objects after signal() returns, and nothing of theirs should be read (or
    str()-ed) later on the sender thread."""
    if payload is None:
        return None, 0
    if type(payload) is not dict and not isinstance(payload, Mapping):
        return payload, _text_size(payload)  # reported when it is built
    size = 0
    for key, value in payload.items():
        kind = type(value)
        if kind is str:
            size += len(value)
        elif kind in _PLAIN:
            size += 16
        else:
            break
        size += len(key) if type(key) is str else 16
    else:
        return dict(payload), size  # flat primitives: a shallow copy is a full one
    # Nested or exotic values: sanitize now (the sender's second pass leaves them unchanged).
    cleaned = sanitize_payload(
        payload, Reporter(False, signal_type if type(signal_type) is str else "?")
    )
    return cleaned, _text_size(cleaned)


class BuiltSignal:
    """A signal already built on the caller's thread (strict mode)."""

    __slots__ = ("origin", "signal")

    def __init__(self, signal: Signal, origin: RequestOrigin | None = None) -> None:
        self.signal = signal
        self.origin = origin

    def approx_size(self) -> int:
        signal = self.signal
        return (
            RECORD_OVERHEAD
            + _text_size(signal.get("payload"))
            + _text_size(signal.get("type"))
            + _text_size(signal.get("appID"))
            + _text_size(signal.get("clientUser"))
            + _text_size(signal.get("sessionID"))
        )

    def signals(self, builder: SignalBuilder) -> Iterable[Signal]:
        return builder.release((self.signal,), self.origin)
