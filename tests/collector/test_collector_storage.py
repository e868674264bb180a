"""The SQLite store: what is kept, that it survives a restart, and that sqlite3 can read it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from td_web._transport import http_library
from td_web.collector import Collector, SignalStore, StoreError

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

Signal = Callable[..., dict[str, Any]]


def post_to(collector: Collector, body: Any, path: str = "/v2/") -> httpx.Response:
    return httpx.post(
        collector.url + path,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )


def test_signals_and_violations_survive_a_restart(db_path: Path, signal_factory: Signal) -> None:
    with Collector(db_path) as first:
        assert post_to(first, [signal_factory(type="Before.restart")]).status_code == 200
        assert post_to(first, [signal_factory(payload={"count": 1})]).status_code == 400
        before = first.signals()
    assert len(before) == 1

    with Collector(db_path) as second:
        assert second.signals() == before
        assert [v.rule for v in second.violations()] == ["payload.reserved_key"]
        assert post_to(second, [signal_factory(type="After.restart")]).status_code == 200
        after = second.signals()
    assert [s.type for s in after] == ["Before.restart", "After.restart"]
    assert after[1].id > after[0].id


def test_extracted_columns(collector: Collector, post: Any, signal_factory: Signal) -> None:
    signal = signal_factory(
        type="HTTP.request",
        sessionID="abc",
        isTestMode=True,
        payload={
            "HTTP.route": "/items/{id}",
            "TelemetryDeck.Signal.durationInSeconds": "0.250",
            "floatValue": 2.5,
        },
    )
    assert post([signal], path="/v2/namespace/com.example/").status_code == 200
    (stored,) = collector.signals()
    assert stored.type == "HTTP.request"
    assert stored.app_id == signal["appID"]
    assert stored.client_user == signal["clientUser"]
    assert stored.session_id == "abc"
    assert stored.is_test_mode is True
    assert stored.route == "/items/{id}"
    assert stored.duration == pytest.approx(0.25)
    assert stored.float_value == pytest.approx(2.5)
    assert stored.namespace == "com.example"
    assert stored.signal == signal
    assert stored.received_at.endswith("Z")
    assert len(stored.received_at) == len("2026-11-29T03:35:36.123Z")


def test_duration_that_is_not_a_number_is_stored_as_null(
    collector: Collector, post: Any, signal_factory: Signal
) -> None:
    payload = {"HTTP.route": "/", "TelemetryDeck.Signal.durationInSeconds": "soon"}
    assert post([signal_factory(payload=payload)]).status_code == 200
    assert collector.signals()[0].duration is None


def test_the_database_is_plain_sqlite_in_wal_mode(
    collector: Collector, post: Any, db_path: Path, signal_factory: Signal
) -> None:
    post([signal_factory(type="Queryable.signal", payload={"HTTP.route": "/x"})])
    post([signal_factory(isTestMode="no")])
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = connection.execute("SELECT type, route, json(signal_json) FROM signals").fetchall()
        assert [(t, r) for t, r, _ in rows] == [("Queryable.signal", "/x")]
        assert connection.execute("SELECT rule FROM violations").fetchall() == [
            ("isTestMode.not_bool",)
        ]
        statuses = connection.execute("SELECT status, signal_count FROM batches ORDER BY id")
        assert statuses.fetchall() == [(200, 1), (400, 1)]
    finally:
        connection.close()


def test_a_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SignalStore(path)


def test_a_missing_database_is_an_error_when_it_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no collector database"):
        SignalStore(tmp_path / "absent.db", must_exist=True)
    assert not (tmp_path / "absent.db").exists()


def test_a_busy_port_fails_cleanly_and_releases_the_database(
    collector: Collector, tmp_path: Path
) -> None:
    with pytest.raises(OSError, match=r"(?i)address already in use"):
        Collector(tmp_path / "other.db", port=collector.port)
    # The failed collector closed its database: another one can open it.
    SignalStore(tmp_path / "other.db").close()


def test_wait_for_signals_times_out_with_a_clear_message(collector: Collector) -> None:
    with pytest.raises(TimeoutError, match="1 signal"):
        collector.wait_for_signals(1, timeout=0.1)
