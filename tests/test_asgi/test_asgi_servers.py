"""Real servers in real processes: each example under uvicorn, several uvicorn workers,
hypercorn and gunicorn with uvicorn workers, each stopped with SIGTERM, checked against what
arrived at the loopback ingest server; and a black-holed ingest server that must not slow the
application down."""

from __future__ import annotations

import base64
import importlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import environment_without_telemetrydeck
from ingest_server import IngestServer, Reply, free_port
from served import answering
from test_asgi.asgi_support import APP_ID

from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_projects"
HERE = Path(__file__).resolve().parent
SALT = "server-test-salt"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal the server like a process manager does; it must exit cleanly in time."""
        self.process.send_signal(sig)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not stop within {STOP_TIMEOUT}s:\n{self.output()}")
        # uvicorn re-raises the signal it handled once its graceful shutdown is done.
        assert code in (0, -sig), f"exit code {code}:\n{self.output()}"


@contextmanager
def serve(
    command: list[str], cwd: Path, ingest: IngestServer, tmp_path: Path, **env: str
) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    environment = environment_without_telemetrydeck()
    environment.update(
        TELEMETRYDECK_APP_ID=APP_ID,
        TELEMETRYDECK_ENDPOINT=ingest.url,
        TELEMETRYDECK_SALT=SALT,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        **env,
    )
    argv = [sys.executable, "-m", *(part.replace("{port}", str(port)) for part in command)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers share the group, so cleanup reaches them
        )
    served = Served(process, port, log)
    with answering(process, served.url, served.output, START_TIMEOUT):
        yield served


def websocket_greeting(port: int, path: str = "/ws") -> str:
    """Open a websocket with a bare handshake and return the first text frame the server
    sends (server frames are unmasked; the examples send one short greeting)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed during the handshake: {data!r}"
            data += chunk
        head, _, frame = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        while len(frame) < 2 or len(frame) < 2 + (frame[1] & 0x7F):
            chunk = sock.recv(4096)
            assert chunk, f"connection closed before the greeting: {frame!r}"
            frame += chunk
        assert frame[0] & 0x0F == 1, "expected a text frame"
        return frame[2 : 2 + (frame[1] & 0x7F)].decode()


def summary(signals: list[dict[str, Any]]) -> Counter[tuple[str, str | None, str | None]]:
    return Counter(
        (s["type"], s["payload"].get("HTTP.route"), s["payload"].get("HTTP.statusCode"))
        for s in signals
    )


# -- the examples under uvicorn ---------------------------------------------------------------

EXPECTED_FROM_EXAMPLE = Counter(
    {
        ("TelemetryDeck.Session.started", None, None): 1,
        ("pageView", "/", "200"): 1,
        ("HTTP.request", "/api/products/{product_id}", "200"): 1,
        ("Cart.itemAdded", None, None): 1,
        ("HTTP.request", "/api/cart", "201"): 1,
        ("HTTP.request", "/admin/reports/{year}", "200"): 1,
        ("Stream.finished", None, None): 1,
        ("HTTP.request", "/stream", "200"): 1,
        ("TelemetryDeck.Error.occurred", "/boom", None): 1,
        ("HTTP.request", "/boom", "500"): 1,
    }
)


@pytest.mark.parametrize("example", ["starlette_app", "fastapi_app"])
def test_example_under_uvicorn(example: str, ingest: IngestServer, tmp_path: Path) -> None:
    command = ["uvicorn", "app:app", "--host", "127.0.0.1", "--port", "{port}"]
    with serve(command, EXAMPLES / example, ingest, tmp_path) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert "<h1>" in client.get("/").text
            assert client.get("/api/products/3").json()["name"] == "Cowboy hat"
            assert client.post("/api/cart").status_code == 201
            assert client.get("/admin/reports/2024").json() == {"year": 2024, "orders": 42}
            assert client.get("/stream").text.count("data: tick") == 3
            assert client.get("/static/style.css").status_code == 200
            assert client.get("/healthz").text == "ok"
            # Last: uvicorn closes a connection whose request raised.
            assert client.get("/boom").status_code == 500
        assert websocket_greeting(server.port) == "hello from the websocket"
        # The default flush interval (5 s) has not passed: SIGTERM's flush delivers them.
        server.stop()
    arrived = ingest.wait_for_signals(sum(EXPECTED_FROM_EXAMPLE.values()))
    assert summary(arrived) == EXPECTED_FROM_EXAMPLE, server.output()
    assert {s["appID"] for s in arrived} == {APP_ID}
    sessions = {s["sessionID"] for s in arrived}
    assert len(sessions) == 1  # the cookie carried the session across the requests


# -- production servers: several processes, SIGTERM, nothing lost ----------------------------


def _uvicorn_worker_class() -> str:
    """uvicorn's gunicorn worker moved to the ``uvicorn-worker`` package; recent uvicorn
    releases still ship the deprecated ``uvicorn.workers`` module."""
    if importlib.util.find_spec("uvicorn_worker") is not None:
        return "uvicorn_worker.UvicornWorker"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            importlib.import_module("uvicorn.workers")
    except ImportError:
        pytest.fail("gunicorn needs uvicorn's worker: add uvicorn-worker to the dev extras")
    return "uvicorn.workers.UvicornWorker"


def _uvicorn_version() -> tuple[int, ...]:
    import uvicorn

    return tuple(int(part) for part in uvicorn.__version__.split(".")[:2])


SERVERS = {
    "uvicorn-2-workers": [
        "uvicorn",
        "asgi_served_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "2",
    ],
    # No lifespan support in the app: td_web answers the protocol so that shutdown flushes.
    "uvicorn-plain-asgi-app": [
        "uvicorn",
        "asgi_served_app:plain_app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ],
    # No lifespan at all: the handle_sigterm handler delivers before uvicorn's re-raised
    # SIGTERM ends the process (atexit never runs under uvicorn).
    "uvicorn-lifespan-off": [
        "uvicorn",
        "asgi_served_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--lifespan",
        "off",
    ],
    "hypercorn": ["hypercorn", "asgi_served_app:app", "--bind", "127.0.0.1:{port}"],
    "gunicorn-uvicorn-workers": [
        "gunicorn",
        "asgi_served_app:app",
        "--bind",
        "127.0.0.1:{port}",
        "--workers",
        "2",
        "--worker-class",
        "{uvicorn_worker}",
        "--graceful-timeout",
        "20",
    ],
}
MULTI_PROCESS = {"uvicorn-2-workers", "gunicorn-uvicorn-workers"}


@pytest.mark.parametrize("name", list(SERVERS))
def test_graceful_shutdown_loses_no_signal(name: str, ingest: IngestServer, tmp_path: Path) -> None:
    if name == "uvicorn-lifespan-off" and _uvicorn_version() < (0, 47):
        pytest.skip(
            "uvicorn before 0.47 installs its SIGTERM handler before importing the app, then "
            "restores the default and re-raises: with lifespan off nothing can flush (documented)"
        )
    command = SERVERS[name]
    if "{uvicorn_worker}" in command:
        worker = _uvicorn_worker_class()
        command = [worker if part == "{uvicorn_worker}" else part for part in command]
    with serve(command, HERE, ingest, tmp_path) as server:
        pids: set[int] = set()
        served = 0
        # Fresh connections, so the kernel spreads them over the workers.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=server.url, timeout=10, limits=limits) as client:
            wanted_pids = 2 if name in MULTI_PROCESS else 1
            while served < 30 or (len(pids) < wanted_pids and served < 300):
                response = client.get(f"/hit/{served}")
                assert response.json()["n"] == served
                pids.add(response.json()["pid"])
                served += 1
        assert len(pids) >= wanted_pids, f"only {pids} answered"
        server.stop()
    # The first answer's cookie carries one session through every later request.
    arrived = ingest.wait_for_signals(1 + served)
    assert len(arrived) == 1 + served, server.output()
    assert summary(arrived) == Counter(
        {
            ("TelemetryDeck.Session.started", None, None): 1,
            ("HTTP.request", None if "plain" in name else "/hit/{n}", "200"): served,
        }
    )


def test_black_holed_ingest_does_not_slow_requests(ingest: IngestServer, tmp_path: Path) -> None:
    """The ingest server accepts connections and never answers. The sender is stuck in a POST
    from the first flush on, and every request still completes normally; SIGTERM gives up
    on the undeliverable signals after the shutdown timeout and the server exits."""
    ingest.default = Reply(blackhole=True)
    command = ["uvicorn", "asgi_served_app:app", "--host", "127.0.0.1", "--port", "{port}"]
    env = {
        "SERVED_FLUSH_INTERVAL": "0.05",
        "SERVED_SHUTDOWN_TIMEOUT": "1",
        "SERVED_HTTP_TIMEOUT": "30",
    }
    with serve(command, HERE, ingest, tmp_path, **env) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answers = [client.get(f"/hit/{n}").json()["n"] for n in range(40)]
        assert answers == list(range(40))
        server.stop()
    assert "not every signal was delivered" in server.output()
    assert ingest.accepted_signals == []
