"""``before_send``: the application's last word on each signal, on the sender thread.

The hook sees a copy of the finished, already sanitized signal (``type``, ``payload`` with
``floatValue`` inside it, and ``request``: the method, path, route and status of the request it
came from, or None), and returns it, a changed copy, or None to drop it. What it returns is
sanitized again; the identifiers (``appID``, ``clientUser``, ``sessionID``, ``isTestMode``)
are td_web's and cannot be changed, so a hook cannot put a raw user id where a hash belongs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._log import throttled
from ._sanitize import FLOAT_VALUE_KEY, Reporter, describe, sanitize_payload, sanitize_type

BeforeSendHook = Callable[[dict[str, Any]], "Mapping[str, Any] | None"]


@dataclass(frozen=True)
class RequestOrigin:
    """Which request a signal came from, as ``before_send`` sees it (``status`` is None for
    custom signals: they are queued before the response exists)."""

    method: str
    path: str
    route: str | None = None
    status: int | None = None


class BeforeSend:
    """Runs the hook for each signal; counts what it dropped and where it failed."""

    def __init__(self, hook: BeforeSendHook, on_error: str = "send") -> None:
        self.hook = hook
        self.drop_on_error = on_error == "drop"
        self._lock = threading.Lock()
        self.dropped = 0
        self.failed = 0

    def dropped_counts(self) -> dict[str, int]:
        """For ``stats().dropped``: dropped by the hook, and dropped because it failed."""
        with self._lock:
            counts = {"before_send": self.dropped}
            if self.drop_on_error:
                counts["before_send_error"] = self.failed
            return counts

    def apply(
        self, signals: Iterable[dict[str, Any]], origin: RequestOrigin | None
    ) -> list[dict[str, Any]]:
        kept = []
        for signal in signals:
            result = self._one(signal, origin)
            if result is not None:
                kept.append(result)
        return kept

    def _one(self, signal: dict[str, Any], origin: RequestOrigin | None) -> dict[str, Any] | None:
        view = {"type": signal["type"], "payload": dict(signal["payload"]), "request": origin}
        try:
            returned = self.hook(view)
        except Exception as exc:
            return self._failed(signal, "raised", f"raised {type(exc).__name__}: {exc}")
        if returned is None:
            with self._lock:
                self.dropped += 1
            return None
        if not isinstance(returned, Mapping):
            return self._failed(
                signal, "returned", f"returned {describe(returned)}, not a dict or None"
            )
        reporter = Reporter(False, str(signal["type"]))
        signal_type = sanitize_type(returned.get("type", signal["type"]), reporter)
        if signal_type is None:
            return self._failed(signal, "returned", "returned a signal without a usable type")
        reporter.signal_type = signal_type
        payload = sanitize_payload(returned.get("payload", {}), reporter)
        released = {**signal, "type": signal_type, "payload": payload}
        # floatValue is sent in both places, the same number: the hook's payload decides it.
        released.pop(FLOAT_VALUE_KEY, None)
        if FLOAT_VALUE_KEY in payload:
            released[FLOAT_VALUE_KEY] = payload[FLOAT_VALUE_KEY]
        return released

    def _failed(self, signal: dict[str, Any], kind: str, why: str) -> dict[str, Any] | None:
        with self._lock:
            self.failed += 1
        outcome = "dropped" if self.drop_on_error else "sent unchanged"
        throttled.error(
            f"before_send-{kind}",
            "td_web: before_send %s for signal %r; the signal was %s (before_send_errors=%r)",
            why,
            signal["type"],
            outcome,
            "drop" if self.drop_on_error else "send",
        )
        return None if self.drop_on_error else signal
