"""A custom signal, from the call to the record the sender queues: one path for
``TelemetryDeck.signal`` and ``td_web.current().signal`` (in a request, a task, a job)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ._signal import BuiltSignal, CustomSignal

if TYPE_CHECKING:
    from ._before_send import RequestOrigin
    from ._custom_json import CustomSignalJSON
    from ._signal import Record, Signal, SignalBuilder


class SignalCall(NamedTuple):
    """A ``signal()`` call's arguments, as the caller passed them."""

    signal_type: str
    payload: Mapping[str, Any] | None
    float_value: float | int | str | None
    client_user: object


def custom_record(
    builder: SignalBuilder,
    strict: bool,
    call: SignalCall,
    *,
    session_id: str | None = None,
    session_key: str | None = None,
    extra_payload: Mapping[str, Any] | None = None,
    origin: RequestOrigin | None = None,
    client_user_hash: str | None = None,
) -> Record:
    """A custom signal as the sender queues it: in strict mode built now, so that a bad signal
    raises in the caller (``TelemetryDeck.signal``, a view, a task); otherwise as described,
    built on the sender's thread. ``client_user_hash``, a clientUser hashed where the work was
    started (a task's request), is sent instead of hashing ``client_user``."""
    if strict:
        built = builder.build(
            call.signal_type,
            call.payload,
            float_value=call.float_value,
            client_user=call.client_user,
            session_id=session_id,
            session_key=session_key,
            extra_payload=extra_payload,
            strict=True,
        )
        assert built is not None  # strict building raises instead of returning None
        if client_user_hash is not None:
            built["clientUser"] = client_user_hash
        return BuiltSignal(built, origin)
    if client_user_hash is not None:
        carried = CarriedSignal(*call, session_id, session_key, extra_payload, origin)
        carried.client_user_hash = client_user_hash
        return carried
    return CustomRecord(*call, session_id, session_key, extra_payload, origin)


class CustomRecord(CustomSignal):
    """A queued custom signal, written straight as JSON on the sender when nothing needs it as
    a dict (no ``before_send`` or ``on_signal`` hook) and the sanitizer would leave it as it
    is (``_custom_json``); built as a dict otherwise."""

    __slots__ = ()

    def encoded_signals(self, writer: CustomSignalJSON) -> list[bytes] | None:
        return writer.custom(self)


class CarriedSignal(CustomRecord):
    """A custom signal whose clientUser was hashed where the work was started."""

    __slots__ = ("client_user_hash",)

    client_user_hash: str

    def signals(self, builder: SignalBuilder) -> Iterable[Signal]:
        return [
            {**signal, "clientUser": self.client_user_hash} for signal in super().signals(builder)
        ]

    def encoded_signals(self, writer: CustomSignalJSON) -> list[bytes] | None:
        return writer.custom(self, self.client_user_hash)
