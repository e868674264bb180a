"""Process life under a pre-forking server: every worker delivers its own signals at shutdown,
and what the master queued before forking is sent once, by the master."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import APP_ID, environment_without_telemetrydeck
from ingest_server import IngestServer, free_port

from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

HERE = Path(__file__).parent

pytestmark = pytest.mark.slow


def test_gunicorn_preload_every_worker_delivers_and_nothing_is_doubled(
    ingest: IngestServer,
) -> None:
    port = free_port()
    env = environment_without_telemetrydeck()
    env.update(TELEMETRYDECK_APP_ID=APP_ID, TELEMETRYDECK_ENDPOINT=ingest.url)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "preload_app:app",
            "--preload",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(HERE),
            "--graceful-timeout",
            "20",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + 60
        while len(served) < 3:
            assert time.monotonic() < deadline, f"saw workers {dict(served)}"
            try:
                # A new connection each time, so the kernel spreads them over the workers.
                response = httpx.get(
                    f"http://127.0.0.1:{port}/pid", headers={"Connection": "close"}, timeout=5
                )
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            served[response.text] += 1
        assert ingest.accepted_signals == []  # the flush interval is an hour
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, output
    signals = ingest.accepted_signals
    from_workers = Counter(s["payload"]["worker"] for s in signals if s["type"] == "Worker.served")
    assert from_workers == served
    assert [s["type"] for s in signals].count("Master.started") == 1
