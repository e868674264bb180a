"""Following a collector from a terminal (``td-web tail``): from its JSON API or its database.

Lines look like::

    14:02:07  Example.started  user 39b94ddf  session 31cb6cb3  test  HTTP.route=/x
    14:02:09  REJECTED payload.reserved_key  signal 0 of batch 7 (Example.bad): payload key ...

The constant ``TelemetryDeck.SDK.*`` keys are left out to keep lines short.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from .._transport import http_library
from .store import SignalFilter, SignalStore

#: How many signals (or violations) one poll asks for; a follower pages through the rest.
PAGE_SIZE = 500
_HIDDEN_KEY_PREFIX = "TelemetryDeck.SDK."

Row = dict[str, Any]


class Source(Protocol):
    """Where signals are read from; rows have the shape of the ``/api/signals`` answer."""

    def signals(
        self, signal_type: str | None, since_id: int, limit: int, newest_first: bool
    ) -> list[Row]: ...

    def violations(self, since_id: int, limit: int, newest_first: bool) -> list[Row]: ...

    def close(self) -> None: ...


class HttpSource:
    """A running collector, through its JSON API."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._client: Any = http_library().Client(base_url=self.url, timeout=timeout)

    def signals(
        self, signal_type: str | None, since_id: int, limit: int, newest_first: bool
    ) -> list[Row]:
        params: dict[str, Any] = {
            "since_id": since_id,
            "limit": limit,
            "order": "desc" if newest_first else "asc",
        }
        if signal_type:
            params["type"] = signal_type
        rows: list[Row] = self._get("/api/signals", params)["signals"]
        return rows

    def violations(self, since_id: int, limit: int, newest_first: bool) -> list[Row]:
        params = {"since_id": since_id, "limit": limit, "order": "desc" if newest_first else "asc"}
        rows: list[Row] = self._get("/api/violations", params)["violations"]
        return rows

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self._client.get(path, params=params)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def close(self) -> None:
        self._client.close()


class DatabaseSource:
    """A collector's SQLite file, read directly (the collector need not be running)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._store = SignalStore(path, must_exist=True)

    def signals(
        self, signal_type: str | None, since_id: int, limit: int, newest_first: bool
    ) -> list[Row]:
        found = self._store.signals(
            SignalFilter(type=signal_type),
            since_id=since_id,
            limit=limit,
            newest_first=newest_first,
        )
        return [signal.to_json() for signal in found]

    def violations(self, since_id: int, limit: int, newest_first: bool) -> list[Row]:
        found = self._store.violations(since_id=since_id, limit=limit, newest_first=newest_first)
        return [violation.to_json() for violation in found]

    def close(self) -> None:
        self._store.close()


class Palette:
    """ANSI styles, or none at all."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *codes: int) -> str:
        if not self.enabled or not codes:
            return text
        return f"\033[{';'.join(map(str, codes))}m{text}\033[0m"


DIM, BOLD, RED, GREEN, YELLOW, MAGENTA, CYAN = 2, 1, 31, 32, 33, 35, 36


def colors_wanted(stream: TextIO, choice: str = "auto") -> bool:
    """``always``/``never``, or ``auto``: a terminal, and NO_COLOR not set (no-color.org)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def local_clock(received_at: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    except ValueError:
        return received_at
    return moment.astimezone().strftime("%H:%M:%S")


def format_signal(row: Row, paint: Palette) -> str:
    parts = [
        paint(local_clock(row["received_at"]), DIM),
        paint(row["type"], BOLD, CYAN),
        paint("user " + str(row["client_user"])[:8], DIM),
    ]
    if row.get("session_id"):
        parts.append(paint("session " + str(row["session_id"])[:8], DIM))
    if row.get("is_test_mode"):
        parts.append(paint("test", MAGENTA))
    if row.get("namespace"):
        parts.append(paint("ns " + str(row["namespace"]), DIM))
    payload = row.get("signal", {}).get("payload") or {}
    for key, value in payload.items():
        if not key.startswith(_HIDDEN_KEY_PREFIX):
            parts.append(paint(key + "=", DIM) + str(value))
    return "  ".join(parts)


def format_violation(row: Row, paint: Palette) -> str:
    where = (
        "the request"
        if row.get("signal_index") is None
        else f"signal {row['signal_index']} of batch {row['batch_id']}"
    )
    if row.get("signal_type"):
        where += f" ({row['signal_type']})"
    return "  ".join(
        [
            paint(local_clock(row["received_at"]), DIM),
            paint("REJECTED " + row["rule"], BOLD, RED),
            f"{where}: {row['message']}",
        ]
    )


class Follower:
    """Prints the last few signals, then every new one as it arrives."""

    def __init__(
        self,
        source: Source,
        write: Callable[[str], None],
        paint: Palette,
        *,
        signal_type: str | None = None,
        include_violations: bool = False,
    ) -> None:
        self.source = source
        self.write = write
        self.paint = paint
        self.signal_type = signal_type
        self.include_violations = include_violations
        self.last_signal_id = 0
        self.last_violation_id = 0

    def show_history(self, count: int) -> None:
        """Print the newest ``count`` signals (and violations), oldest first, and remember
        where the follow-up starts."""
        newest = self.source.signals(self.signal_type, 0, max(count, 1), True)
        if newest:
            self.last_signal_id = newest[0]["id"]
        for row in reversed(newest[:count]):
            self.write(format_signal(row, self.paint))
        if self.include_violations:
            recent = self.source.violations(0, max(count, 1), True)
            if recent:
                self.last_violation_id = recent[0]["id"]
            for row in reversed(recent[:count]):
                self.write(format_violation(row, self.paint))

    def poll(self) -> int:
        """Print everything new since the last call; returns how many lines were printed."""
        printed = 0
        while True:
            rows = self.source.signals(self.signal_type, self.last_signal_id, PAGE_SIZE, False)
            for row in rows:
                self.write(format_signal(row, self.paint))
                self.last_signal_id = row["id"]
            printed += len(rows)
            if len(rows) < PAGE_SIZE:
                break
        while self.include_violations:
            rows = self.source.violations(self.last_violation_id, PAGE_SIZE, False)
            for row in rows:
                self.write(format_violation(row, self.paint))
                self.last_violation_id = row["id"]
            printed += len(rows)
            if len(rows) < PAGE_SIZE:
                break
        return printed

    def follow(self, interval: float, sleep: Callable[[float], None] = time.sleep) -> None:
        """Poll forever (until KeyboardInterrupt)."""
        while True:
            self.poll()
            sleep(interval)
