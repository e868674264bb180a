"""What ``td_web.current()`` returns: a scope whose custom signals carry its session and user.

A request's helper (``_web.telemetry.Telemetry``) and the helper of work outside a request
(``_context.RunTelemetry``: a task, job or invocation) are its two kinds. They differ in where
the session and user come from; whether a scope sends, and how a custom signal is queued,
dropped or reported, is here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ._log import logger
from ._presets import Presets
from ._signal import BuiltSignal, CustomSignal

if TYPE_CHECKING:
    from ._before_send import RequestOrigin
    from ._client import TelemetryDeck
    from ._signal import Record, SignalBuilder


class SignalCall(NamedTuple):
    """A ``signal()`` call's arguments, as the caller passed them."""

    signal_type: str
    payload: Mapping[str, Any] | None
    float_value: float | int | str | None
    client_user: object


class SignalScope(Presets):
    """A scope that sends custom signals with its session and user."""

    __slots__ = ()

    #: How the caller reaches this scope, for the log line when a signal fails.
    _caller = "current()"

    @property
    def active(self) -> bool:
        """Whether signals from this scope are sent."""
        client = self._live_client()
        return client is not None and client.enabled

    def signal(
        self,
        signal_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        float_value: float | int | str | None = None,
        client_user: object = None,
    ) -> bool:
        """Queue a custom signal with this scope's session and user; never blocks.

        ``client_user`` (hashed before sending) overrides the scope's user. In strict mode a
        bad signal raises here; otherwise it is logged and dropped."""
        client = self._live_client()
        if client is None:
            self._log_dropped(signal_type)
            return False
        try:
            call = SignalCall(signal_type, payload, float_value, client_user)
            return client.enqueue(self._custom_record(client, call))
        except Exception:
            if client.config.strict:
                raise
            logger.exception("td_web: %s.signal(%r) failed", self._caller, signal_type)
            return False

    def _live_client(self) -> TelemetryDeck | None:
        """The client this scope's signals go to; None when the scope sends nothing."""
        raise NotImplementedError

    def _log_dropped(self, signal_type: str) -> None:
        """Say why a signal of a scope that sends nothing was dropped."""
        raise NotImplementedError

    def _custom_record(self, client: TelemetryDeck, call: SignalCall) -> Record:
        """The signal as the sender queues it, with this scope's session and user."""
        raise NotImplementedError


def custom_record(
    builder: SignalBuilder,
    strict: bool,
    call: SignalCall,
    *,
    session_id: str | None = None,
    session_key: str | None = None,
    extra_payload: Mapping[str, Any] | None = None,
    origin: RequestOrigin | None = None,
) -> Record:
    """A custom signal as the sender queues it: in strict mode built now, so that a bad signal
    raises in the caller (``TelemetryDeck.signal``, a view); otherwise as described, built on
    the sender's thread."""
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
        return BuiltSignal(built, origin)
    return CustomSignal(*call, session_id, session_key, extra_payload, origin)
