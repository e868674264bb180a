"""Testing tools for applications that use td_web.

::

    from td_web.testing import capture

    def test_checkout(client):
        with capture() as signals:
            client.post("/checkout")
        assert signals.types() == ["TelemetryDeck.Session.started", "HTTP.request"]
        assert signals.one("Checkout.completed")["payload"]["Cart.items"] == "3"

While a capture is active, every td_web client in the process (including the ones the
Django, Flask and ASGI adapters create) builds its signals immediately on the calling thread
and hands them to the capture instead of the network.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import _capture

__all__ = ["CapturedSignals", "capture"]


class CapturedSignals:
    """The signals captured so far, in the order they were built (each a wire dict)."""

    def __init__(self) -> None:
        self._signals: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _append(self, signal: dict[str, Any]) -> None:
        with self._lock:
            self._signals.append(signal)

    @property
    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._signals)

    def __len__(self) -> int:
        return len(self._signals)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.all)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.all[index]

    def types(self) -> list[str]:
        return [signal["type"] for signal in self.all]

    def of_type(self, signal_type: str) -> list[dict[str, Any]]:
        return [signal for signal in self.all if signal["type"] == signal_type]

    def one(self, signal_type: str) -> dict[str, Any]:
        """The single signal of this type; an AssertionError naming what was captured if there
        is not exactly one."""
        matches = self.of_type(signal_type)
        if len(matches) != 1:
            raise AssertionError(
                f"expected exactly one {signal_type!r} signal, got {len(matches)}; "
                f"captured types: {self.types()}"
            )
        return matches[0]

    def payloads(self, signal_type: str) -> list[dict[str, Any]]:
        return [signal["payload"] for signal in self.of_type(signal_type)]

    def assert_sent(self, signal_type: str, **payload: Any) -> dict[str, Any]:
        """The first signal of this type whose payload holds these items (keyword names use
        ``__`` for dots: ``Cart__items="3"`` matches ``"Cart.items": "3"``)."""
        wanted = {key.replace("__", "."): value for key, value in payload.items()}
        for signal in self.of_type(signal_type):
            if all(signal["payload"].get(k) == v for k, v in wanted.items()):
                return signal
        raise AssertionError(
            f"no {signal_type!r} signal with payload {wanted}; got "
            f"{self.payloads(signal_type) or self.types()}"
        )

    def clear(self) -> None:
        with self._lock:
            self._signals.clear()


@contextmanager
def capture() -> Iterator[CapturedSignals]:
    """Capture every signal built in this process inside the block (nothing is sent)."""
    captured = CapturedSignals()
    _capture.add(captured._append)
    try:
        yield captured
    finally:
        _capture.remove(captured._append)
