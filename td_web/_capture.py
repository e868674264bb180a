"""The process-wide switch behind ``td_web.testing.capture()``.

While a capture is active every client builds its signals on the caller's thread and hands
them to the capture instead of queueing them for the network, so tests see exactly what would
have been sent, deterministically, without a server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Sink = Callable[[dict[str, Any]], None]

_lock = threading.Lock()
_sinks: list[Sink] = []
#: Read without the lock on the hot path; a list swap is atomic.
active: tuple[Sink, ...] = ()


def add(sink: Sink) -> None:
    global active
    with _lock:
        _sinks.append(sink)
        active = tuple(_sinks)


def remove(sink: Sink) -> None:
    global active
    with _lock:
        if sink in _sinks:
            _sinks.remove(sink)
        active = tuple(_sinks)


def deliver(signal: dict[str, Any]) -> None:
    for sink in active:
        sink(signal)
