"""The optional on-disk spool: an outage longer than memory can hold loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from conftest import APP_ID, wait_until
from ingest_server import IngestServer, free_port

from td_web import TelemetryDeck

FAST = {"flush_interval": 0.02, "initial_backoff": 0.01, "max_backoff": 0.02}


def send_paced(td: TelemetryDeck, count: int, queue_cap: int) -> None:
    """Send without ever overflowing the in-memory queue, so only the spool can save them."""
    for i in range(count):
        wait_until(lambda: td.stats().pending < queue_cap - 1)
        assert td.signal("Outage.signal", {"i": i})


class Outage:
    """A spool file, and the port of an ingest server that is down until ``drain``."""

    def __init__(self, tmp_path: Path) -> None:
        self.spool = str(tmp_path / "spool.db")
        self.port = free_port()

    def client(self, **options: Any) -> TelemetryDeck:
        """A client sending to the server that is down, spooling what it cannot send."""
        return TelemetryDeck(
            app_id=APP_ID,
            endpoint=f"http://127.0.0.1:{self.port}",
            spool_path=self.spool,
            **{**FAST, **options},
        )

    def drain(self, count: int) -> list[dict[str, Any]]:
        """The server is back: a new client sends the ``count`` signals the spool holds; what
        the server accepted, in order."""
        with IngestServer(port=self.port) as server:
            reader = TelemetryDeck(
                app_id=APP_ID, endpoint=server.url, spool_path=self.spool, **FAST
            )
            server.wait_for_signals(count)
            wait_until(lambda: reader.stats().spooled == 0)
            reader.close(2)
        return server.accepted_signals


def test_outage_longer_than_the_queue_spools_and_resends_oldest_first(tmp_path: Path) -> None:
    outage = Outage(tmp_path)
    td = outage.client(max_queue_size=20, max_batch_size=5)
    send_paced(td, 100, 20)
    assert td.flush(0.2) is False  # nothing can be delivered yet...
    assert td.close(0.5) is False
    stats = td.stats()
    assert stats.dropped == {}  # ...and nothing was lost: all of it is on disk
    assert stats.spooled == 100

    order = [int(s["payload"]["i"]) for s in outage.drain(100)]
    assert order == list(range(100))


def test_spool_survives_a_process_restart(tmp_path: Path) -> None:
    # Spooled signals belong to their ingest URL: the restarted process uses the same one.
    spool = str(tmp_path / "spool.db")
    port = free_port()
    env = {**os.environ, "TELEMETRYDECK_APP_ID": APP_ID, "TELEMETRYDECK_SPOOL_PATH": spool}
    first = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            from td_web import TelemetryDeck
            td = TelemetryDeck(endpoint="http://127.0.0.1:{port}", shutdown_timeout=0.3)
            for i in range(50):
                td.signal("Restart.signal", {{"i": i}})
        """),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == 0, first.stderr
    assert "50 unsent signals were written to the spool" in first.stderr
    ingest = IngestServer(port=port).start()
    try:
        second = run_until_spool_is_sent(ingest.url, env)
    finally:
        ingest.stop()
    assert second.returncode == 0, second.stderr
    order = [int(s["payload"]["i"]) for s in ingest.accepted_signals]
    assert order == list(range(50))  # oldest first, each exactly once


def run_until_spool_is_sent(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import time
            from td_web import TelemetryDeck
            td = TelemetryDeck(endpoint="{url}", flush_interval=0.05)
            deadline = time.monotonic() + 20
            while td.stats().spooled or td.stats().sent < 50:
                assert time.monotonic() < deadline, td.stats()
                time.sleep(0.02)
        """),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_two_processes_sharing_a_spool_send_each_row_once(tmp_path: Path) -> None:
    outage = Outage(tmp_path)
    writer = outage.client()
    for i in range(300):
        writer.signal("Shared.spool", {"i": i})
    writer.close(0.2)
    assert writer.stats().spooled == 300
    with IngestServer(port=outage.port) as ingest:
        readers = [
            TelemetryDeck(
                app_id=APP_ID,
                endpoint=ingest.url,
                spool_path=outage.spool,
                max_batch_size=7,
                **FAST,
            )
            for _ in range(3)
        ]
        ingest.wait_for_signals(300)
        for reader in readers:
            wait_until(lambda r=reader: r.stats().spooled == 0)
            reader.close(2)
    received = [int(s["payload"]["i"]) for s in ingest.accepted_signals]
    assert sorted(received) == list(range(300))


def test_spool_cap_keeps_the_newest_and_counts_the_overflow(tmp_path: Path) -> None:
    outage = Outage(tmp_path)
    td = outage.client(spool_max_signals=30)
    for i in range(50):
        td.signal("Capped", {"i": i})
    td.close(0.2)
    stats = td.stats()
    assert stats.spooled == 30
    assert stats.dropped == {"spool_full": 20}
    assert [int(s["payload"]["i"]) for s in outage.drain(30)] == list(range(20, 50))


def test_an_unusable_spool_path_is_logged_and_the_client_still_works(
    tmp_path: Path, ingest: IngestServer, caplog: Any
) -> None:
    td = TelemetryDeck(
        app_id=APP_ID,
        endpoint=ingest.url,
        spool_path=str(tmp_path / "missing-dir" / "spool.db"),
        **FAST,
    )
    td.signal("Still.sent")
    assert td.flush(5)
    td.close(1)
    assert [s["type"] for s in ingest.accepted_signals] == ["Still.sent"]
    assert "could not be opened; running without it" in caplog.text
