"""The collector's SQLite database: every request, every accepted signal, every violation.

One file (``--db``, default ``./td_web_collector.db``) in WAL mode, so the live page and
``sqlite3`` can read while signals are written, and everything survives a restart. Times are
UTC ISO 8601 text with milliseconds (``2026-11-29T03:35:36.123Z``): readable in ``sqlite3``,
sortable as text, and understood by SQLite's date functions.

Schema (``PRAGMA user_version`` = 1)::

    batches                      -- one row per POST to an ingest route
      id           INTEGER PRIMARY KEY
      received_at  TEXT NOT NULL     -- when the request arrived
      namespace    TEXT              -- {ns} of /v2/namespace/{ns}/; NULL for /v2/
      status       INTEGER NOT NULL  -- the HTTP status the collector answered
      signal_count INTEGER NOT NULL  -- elements in the body's array (0 when it did not parse)
      body_bytes   INTEGER NOT NULL
      user_agent   TEXT

    signals                      -- one row per accepted signal
      id           INTEGER PRIMARY KEY
      batch_id     INTEGER NOT NULL  -- batches.id
      received_at  TEXT NOT NULL
      namespace    TEXT
      app_id       TEXT NOT NULL     -- appID
      type         TEXT NOT NULL
      client_user  TEXT NOT NULL     -- clientUser (the user hash)
      session_id   TEXT              -- sessionID, NULL when absent
      is_test_mode INTEGER           -- isTestMode as 1/0, NULL when absent
      route        TEXT              -- payload "HTTP.route"
      duration     REAL              -- payload "TelemetryDeck.Signal.durationInSeconds", seconds
      float_value  REAL              -- payload "floatValue"
      signal_json  TEXT NOT NULL     -- the signal's JSON text exactly as it was in the body

    violations                   -- one row per broken rule (see validate.RULES)
      id           INTEGER PRIMARY KEY
      batch_id     INTEGER NOT NULL  -- batches.id (that batch was rejected)
      received_at  TEXT NOT NULL
      namespace    TEXT
      signal_index INTEGER           -- position in the batch; NULL for request-level rules
      rule         TEXT NOT NULL     -- e.g. 'payload.reserved_key'
      field        TEXT              -- e.g. 'payload.count'
      message      TEXT NOT NULL
      signal_type  TEXT              -- the offending signal's type, when it had a string one
      signal_json  TEXT              -- the offending signal, or the start of a bad body

Indexes: ``signals(type)``, ``signals(received_at)``, ``violations(received_at)``. There is
no index on ``session_id`` on purpose: session ids are random, so such an index scatters every
batch over many pages and halved ingestion speed; a session filter scans newest-first instead.

Example: ``sqlite3 td_web_collector.db "select type, count(*) from signals group by 1"``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .validate import Problem

SCHEMA_VERSION = 1
ROUTE_KEY = "HTTP.route"
DURATION_KEY = "TelemetryDeck.Signal.durationInSeconds"
FLOAT_VALUE_KEY = "floatValue"
#: How much of an offending signal or body a violation row keeps.
MAX_EXCERPT_CHARS = 10_000
#: Top types, top routes and median durations are computed over at most this many of the
#: latest matching signals, so that the live page stays quick on a large database.
CHART_SAMPLE_ROWS = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id           INTEGER PRIMARY KEY,
    received_at  TEXT NOT NULL,
    namespace    TEXT,
    status       INTEGER NOT NULL,
    signal_count INTEGER NOT NULL,
    body_bytes   INTEGER NOT NULL,
    user_agent   TEXT
);
CREATE TABLE IF NOT EXISTS signals (
    id           INTEGER PRIMARY KEY,
    batch_id     INTEGER NOT NULL REFERENCES batches(id),
    received_at  TEXT NOT NULL,
    namespace    TEXT,
    app_id       TEXT NOT NULL,
    type         TEXT NOT NULL,
    client_user  TEXT NOT NULL,
    session_id   TEXT,
    is_test_mode INTEGER,
    route        TEXT,
    duration     REAL,
    float_value  REAL,
    signal_json  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_by_type ON signals(type);
CREATE INDEX IF NOT EXISTS signals_by_time ON signals(received_at);
CREATE TABLE IF NOT EXISTS violations (
    id           INTEGER PRIMARY KEY,
    batch_id     INTEGER NOT NULL REFERENCES batches(id),
    received_at  TEXT NOT NULL,
    namespace    TEXT,
    signal_index INTEGER,
    rule         TEXT NOT NULL,
    field        TEXT,
    message      TEXT NOT NULL,
    signal_type  TEXT,
    signal_json  TEXT
);
CREATE INDEX IF NOT EXISTS violations_by_time ON violations(received_at);
"""

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

_SIGNAL_COLUMNS = (
    "id, batch_id, received_at, namespace, app_id, type, client_user, session_id, "
    "is_test_mode, route, duration, float_value, signal_json"
)
_VIOLATION_COLUMNS = (
    "id, batch_id, received_at, namespace, signal_index, rule, field, message, "
    "signal_type, signal_json"
)


class StoreError(RuntimeError):
    """The database cannot be used (missing, or written by an incompatible version)."""


@dataclass(frozen=True)
class SignalFilter:
    """Which signals a query wants; None means "any"."""

    type: str | None = None
    session: str | None = None
    test_mode: bool | None = None


@dataclass(frozen=True)
class StoredSignal:
    id: int
    batch_id: int
    received_at: str
    namespace: str | None
    app_id: str
    type: str
    client_user: str
    session_id: str | None
    is_test_mode: bool | None
    route: str | None
    duration: float | None
    float_value: float | None
    signal: dict[str, Any]

    @property
    def payload(self) -> dict[str, Any]:
        payload = self.signal.get("payload")
        return payload if isinstance(payload, dict) else {}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StoredViolation:
    id: int
    batch_id: int
    received_at: str
    namespace: str | None
    signal_index: int | None
    rule: str
    field: str | None
    message: str
    signal_type: str | None
    signal_json: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def utc_timestamp(epoch_seconds: float | None = None) -> str:
    """``2026-11-29T03:35:36.123Z`` for now or for the given time."""
    now = time.time() if epoch_seconds is None else epoch_seconds
    whole = int(now)
    millis = int((now - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


class SignalStore:
    """Thread-safe access to one collector database.

    Writes go through one connection under a lock, each batch in one transaction; reads use a
    second connection so that a slow chart query never holds up ingestion (WAL lets them run
    side by side).
    """

    def __init__(self, path: str | os.PathLike[str], *, must_exist: bool = False) -> None:
        self.path = Path(path)
        if must_exist and not self.path.exists():
            raise StoreError(f"no collector database at {self.path}")
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer = self._connect()
        try:
            self._prepare_schema()
            self._reader = self._connect()
        except BaseException:
            self._writer.close()
            raise
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        connection.execute("PRAGMA busy_timeout = 10000")
        return connection

    def _prepare_schema(self) -> None:
        writer = self._writer
        version = writer.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise StoreError(
                f"{self.path} has collector schema version {version}; this td_web reads "
                f"version {SCHEMA_VERSION}. Use another --db file."
            )
        writer.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; only a power cut can
        # lose the last transactions, which is fine for a development collector.
        writer.execute("PRAGMA synchronous = NORMAL")
        if version == 0:
            # One transaction: one sync to disk instead of one per statement.
            writer.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            if self._closed:
                return
            self._closed = True
            self._reader.close()
            self._writer.close()

    # -- writing -----------------------------------------------------------------------------

    def record_batch(
        self,
        *,
        received_at: str,
        namespace: str | None,
        status: int,
        signals: Sequence[dict[str, Any]],
        problems: Sequence[Problem],
        signal_texts: Sequence[str] | None = None,
        body_bytes: int,
        user_agent: str | None,
        parsed: Sequence[Any] = (),
        body_excerpt: str | None = None,
    ) -> int:
        """Store one request: its accepted ``signals`` or its ``problems``. Returns the batch id.

        ``signal_texts`` are the signals' JSON as received (encoded here when not given);

        ``parsed`` is the body's array (to show each offending signal beside its problem);
        ``body_excerpt`` stands in for it when the body did not parse.
        """
        if signal_texts is None:
            signal_texts = [_ENCODER.encode(signal) for signal in signals]
        signal_rows = [
            _signal_row(signal, text, received_at, namespace)
            for signal, text in zip(signals, signal_texts, strict=True)
        ]
        violation_rows = [
            _violation_row(problem, received_at, namespace, parsed, body_excerpt)
            for problem in problems
        ]
        element_count = len(parsed) if parsed else len(signals)
        with self._write_lock:
            cursor = self._writer.cursor()
            cursor.execute("BEGIN")
            try:
                cursor.execute(
                    "INSERT INTO batches (received_at, namespace, status, signal_count, "
                    "body_bytes, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        received_at,
                        namespace,
                        status,
                        element_count,
                        body_bytes,
                        _safe_text(user_agent),
                    ),
                )
                batch_id = cursor.lastrowid
                if signal_rows:
                    cursor.executemany(
                        "INSERT INTO signals (batch_id, received_at, namespace, app_id, type, "
                        "client_user, session_id, is_test_mode, route, duration, float_value, "
                        "signal_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(batch_id, *row) for row in signal_rows],
                    )
                if violation_rows:
                    cursor.executemany(
                        "INSERT INTO violations (batch_id, received_at, namespace, "
                        "signal_index, rule, field, message, signal_type, signal_json) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(batch_id, *row) for row in violation_rows],
                    )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        assert batch_id is not None
        return batch_id

    # -- reading -----------------------------------------------------------------------------

    def signals(
        self,
        where: SignalFilter = SignalFilter(),
        *,
        since_id: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[StoredSignal]:
        """Signals with ``id > since_id`` that match; the newest ``limit`` of them when
        ``newest_first``, else the oldest ``limit`` in arrival order."""
        condition, parameters = _where(where)
        parameters.append(since_id)
        sql = (
            f"SELECT {_SIGNAL_COLUMNS} FROM signals WHERE {condition} AND id > ? "
            f"ORDER BY id {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        return [_stored_signal(row) for row in self._read(sql, parameters)]

    def violations(
        self,
        *,
        rule: str | None = None,
        signal_type: str | None = None,
        since_id: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[StoredViolation]:
        clauses = ["id > ?"]
        parameters: list[Any] = [since_id]
        if rule is not None:
            clauses.append("rule = ?")
            parameters.append(rule)
        if signal_type is not None:
            clauses.append("signal_type = ?")
            parameters.append(signal_type)
        sql = (
            f"SELECT {_VIOLATION_COLUMNS} FROM violations WHERE {' AND '.join(clauses)} "
            f"ORDER BY id {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        return [StoredViolation(*row) for row in self._read(sql, parameters)]

    def stats(
        self,
        where: SignalFilter = SignalFilter(),
        *,
        minutes: int = 60,
        top: int = 10,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Counts and chart data for the signals that match.

        The window is the last ``minutes`` (0: all time). ``per_minute`` shows each of the
        last ``minutes`` (at most 120; the last hour for all time). Top types, top routes and
        median durations come from the latest :data:`CHART_SAMPLE_ROWS` matching signals in
        the window (``sampled`` says whether there were more), so the page stays quick on a
        database filled by a benchmark. ``total_*`` and the batch counts cover all time.
        """
        now = time.time() if now is None else now
        since = utc_timestamp(now - minutes * 60) if minutes > 0 else ""
        first_id = self._first_id_since(since)
        condition, parameters = _where(where)
        # By time rather than by id: unfiltered, the time index alone answers it.
        in_window = self._read(
            f"SELECT count(*) FROM signals WHERE {condition} AND received_at >= ?",
            [*parameters, since],
        )[0][0]
        # One read of the sample feeds all three charts.
        sample: list[tuple[str, str | None, float | None]] = self._read(
            f"SELECT type, route, duration FROM signals WHERE {condition} AND id >= ? "
            "ORDER BY id DESC LIMIT ?",
            [*parameters, first_id, CHART_SAMPLE_ROWS],
        )
        types = Counter(signal_type for signal_type, _, _ in sample)
        routes = Counter(route for _, route, _ in sample if route is not None)
        by_rule = self._read(
            "SELECT rule, count(*) AS n FROM violations WHERE received_at >= ? "
            "GROUP BY rule ORDER BY n DESC, rule",
            [since],
        )
        batches = dict(
            self._read("SELECT status < 300, count(*) FROM batches GROUP BY status < 300", [])
        )
        last_signal, total_signals = self._read(
            f"SELECT coalesce(max(id), 0), count(*) FROM signals WHERE {condition}", parameters
        )[0]
        last_violation, total_violations = self._read(
            "SELECT coalesce(max(id), 0), count(*) FROM violations", []
        )[0]
        return {
            "minutes": minutes,
            "total_signals": total_signals,
            "signals_in_window": in_window,
            "sampled": in_window > CHART_SAMPLE_ROWS,
            "chart_sample_rows": CHART_SAMPLE_ROWS,
            "last_signal_id": last_signal,
            "last_violation_id": last_violation,
            "total_violations": total_violations,
            "violations_in_window": sum(count for _, count in by_rule),
            "batches_accepted": batches.get(1, 0),
            "batches_rejected": batches.get(0, 0),
            "per_minute": self._per_minute(where, now, min(minutes, 120) if minutes > 0 else 60),
            "top_types": [{"type": name, "count": count} for name, count in _most(types, top)],
            "top_routes": [{"route": name, "count": count} for name, count in _most(routes, top)],
            "median_duration_by_route": _median_durations(sample, top),
            "violations_by_rule": [{"rule": name, "count": count} for name, count in by_rule],
        }

    def _first_id_since(self, since: str) -> int:
        """The first signal id received at or after ``since``: ids grow with arrival, so a
        time window becomes an id range (found in the time index alone, without the rows)."""
        if not since:
            return 0
        found = self._read(
            "SELECT id FROM signals INDEXED BY signals_by_time WHERE received_at >= ? "
            "ORDER BY received_at LIMIT 1",
            [since],
        )
        if not found:  # nothing since then: a range past the end
            last = self._read("SELECT coalesce(max(id), 0) FROM signals", [])[0][0]
            return int(last) + 1
        return int(found[0][0])

    def _per_minute(self, where: SignalFilter, now: float, minutes: int) -> list[dict[str, Any]]:
        """Signal counts for each of the last ``minutes`` minutes, empty minutes included."""
        minute_starts = [
            minute * 60 for minute in range(int(now // 60) - minutes + 1, int(now // 60) + 1)
        ]
        labels = [utc_timestamp(start)[:16] for start in minute_starts]
        if where == SignalFilter():
            # One range count per minute, each answered from the time index alone: far
            # quicker than grouping when a benchmark has put a million rows in the last hour.
            counts = [
                self._read(
                    "SELECT count(*) FROM signals WHERE received_at >= ? AND received_at < ?",
                    [utc_timestamp(start), utc_timestamp(start + 60)],
                )[0][0]
                for start in minute_starts
            ]
            return [
                {"minute": label, "count": count}
                for label, count in zip(labels, counts, strict=True)
            ]
        condition, parameters = _where(where)
        counted = dict(
            self._read(
                "SELECT substr(received_at, 1, 16) AS minute, count(*) FROM signals "
                f"WHERE {condition} AND received_at >= ? GROUP BY minute",
                [*parameters, utc_timestamp(minute_starts[0])],
            )
        )
        return [{"minute": label, "count": counted.get(label, 0)} for label in labels]

    def _read(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        with self._read_lock:
            if self._closed:
                raise StoreError(f"the collector database {self.path} is closed")
            return self._reader.execute(sql, parameters).fetchall()


def _most(counts: Counter[str], top: int) -> list[tuple[str, int]]:
    """The ``top`` commonest, ties in name order (so the charts do not shuffle)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]


def _median_durations(
    sample: list[tuple[str, str | None, float | None]], top: int
) -> list[dict[str, Any]]:
    """The median duration of the ``top`` busiest timed routes, slowest first."""
    durations: dict[str, list[float]] = {}
    for _, route, duration in sample:
        if route is not None and duration is not None:
            durations.setdefault(route, []).append(duration)
    busiest = sorted(durations.items(), key=lambda item: (-len(item[1]), item[0]))[:top]
    slowest_first = sorted(
        ((statistics.median(values), route, len(values)) for route, values in busiest),
        key=lambda item: -item[0],
    )
    return [
        {"route": route, "median_seconds": median, "count": count}
        for median, route, count in slowest_first
    ]


def _where(where: SignalFilter) -> tuple[str, list[Any]]:
    """A WHERE condition (and its parameters) for the signals a filter wants."""
    clauses = ["1"]
    parameters: list[Any] = []
    if where.type is not None:
        clauses.append("type = ?")
        parameters.append(where.type)
    if where.session is not None:
        clauses.append("session_id = ?")
        parameters.append(where.session)
    if where.test_mode is not None:
        # A signal without isTestMode counts as production, as TelemetryDeck defaults it.
        clauses.append("is_test_mode = 1" if where.test_mode else "coalesce(is_test_mode, 0) = 0")
    return " AND ".join(clauses), parameters


def _signal_row(
    signal: dict[str, Any], text: str, received_at: str, namespace: str | None
) -> tuple[Any, ...]:
    """The columns of one validated signal, in insert order after batch_id."""
    payload = signal.get("payload") or {}
    route = payload.get(ROUTE_KEY)
    is_test_mode = signal.get("isTestMode")
    return (
        received_at,
        namespace,
        signal["appID"],
        signal["type"],
        signal["clientUser"],
        signal.get("sessionID"),
        None if is_test_mode is None else int(is_test_mode),
        None if route is None else str(route),
        _finite_number(payload.get(DURATION_KEY)),
        _finite_number(payload.get(FLOAT_VALUE_KEY)),
        text,
    )


def _violation_row(
    problem: Problem,
    received_at: str,
    namespace: str | None,
    parsed: Sequence[Any],
    body_excerpt: str | None,
) -> tuple[Any, ...]:
    signal_type: str | None = None
    excerpt = body_excerpt
    index = problem.signal_index
    if index is not None and 0 <= index < len(parsed):
        offending = parsed[index]
        if isinstance(offending, dict) and isinstance(offending.get("type"), str):
            signal_type = offending["type"]
        # ensure_ascii: an offending signal may hold lone surrogates, which UTF-8 cannot store.
        excerpt = json.dumps(offending, ensure_ascii=True, separators=(",", ":"))
    if excerpt is not None and len(excerpt) > MAX_EXCERPT_CHARS:
        excerpt = excerpt[:MAX_EXCERPT_CHARS] + "..."
    return (
        received_at,
        namespace,
        index,
        problem.rule,
        _safe_text(problem.field),
        _safe_text(problem.message),
        _safe_text(signal_type),
        _safe_text(excerpt),
    )


def _stored_signal(row: Sequence[Any]) -> StoredSignal:
    is_test_mode = row[8]
    return StoredSignal(
        id=row[0],
        batch_id=row[1],
        received_at=row[2],
        namespace=row[3],
        app_id=row[4],
        type=row[5],
        client_user=row[6],
        session_id=row[7],
        is_test_mode=None if is_test_mode is None else bool(is_test_mode),
        route=row[9],
        duration=row[10],
        float_value=row[11],
        signal=json.loads(row[12]),
    )


def _finite_number(value: object) -> float | None:
    """A number from a JSON number or a numeric string (durations are sent as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None
    return None


def _safe_text(text: str | None) -> str | None:
    """Text SQLite can store: client-controlled strings may hold lone surrogates."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")
