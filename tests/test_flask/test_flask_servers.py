"""The example app under real servers: every signal reaches a real ingest server, including
after a graceful shutdown (the flush interval is long, so only the exit flush delivers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import APP_ID, environment_without_telemetrydeck
from ingest_server import IngestServer, free_port
from served import answering

from td_web import hash_client_user
from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_projects" / "flask_app"
PYTHON = sys.executable
SALT = "flask-example-salt"

#: What one visit (see ``visit``) sends, by signal type.
VISIT_SIGNALS = Counter(
    {
        "TelemetryDeck.Session.started": 1,
        "pageView": 2,  # / and /shop/
        "HTTP.request": 6,  # login, item, stream, boom, checkout, the missing item
        "Checkout.completed": 1,
        "Stream.finished": 1,
        "TelemetryDeck.Error.occurred": 1,
    }
)


def server_command(server: str, port: int) -> tuple[list[str], Path]:
    """(command, working directory) for one way of serving the example."""
    address = f"127.0.0.1:{port}"
    factory = "example_projects/flask_app/app:create_app"
    gunicorn = [PYTHON, "-m", "gunicorn", "--chdir", str(EXAMPLE), "-b", address, "--preload"]
    gthread = ["--worker-class", "gthread", "--threads", "4"]
    commands = {
        "flask run": ([PYTHON, "-m", "flask", "--app", factory, "run", "--port", str(port)], REPO),
        "flask run --debug": (
            [PYTHON, "-m", "flask", "--app", factory, "run", "--debug", "--port", str(port)],
            REPO,
        ),
        "gunicorn sync": ([*gunicorn, "--workers", "2", "app:create_app()"], REPO),
        "gunicorn gthread": ([*gunicorn, "--workers", "2", *gthread, "app:create_app()"], REPO),
        "waitress": (
            [PYTHON, "-m", "waitress", f"--listen={address}", "--call", "app:create_app"],
            EXAMPLE,
        ),
    }
    return commands[server]


@contextlib.contextmanager
def running(
    server: str, ingest: IngestServer, **extra_env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    command, cwd = server_command(server, port)
    env = {
        **environment_without_telemetrydeck(),
        "TELEMETRYDECK_APP_ID": APP_ID,
        "TELEMETRYDECK_ENDPOINT": ingest.url,
        "TELEMETRYDECK_SALT": SALT,
        "TELEMETRYDECK_FLUSH_INTERVAL": "600",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        **extra_env,
    }
    env = {name: value for name, value in env.items() if value}  # "" removes a variable
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal would start it
    )
    base_url = f"http://127.0.0.1:{port}"

    def output() -> str:
        return process.stderr.read().decode() if process.stderr else ""

    try:
        with answering(process, base_url, output):
            yield process, base_url
    finally:
        if process.stderr is not None:
            process.stderr.close()


def visit(base_url: str) -> None:
    """One visitor's tour of the example, in one session (the td_session cookie is kept)."""
    with httpx.Client(base_url=base_url, timeout=10) as browser:
        assert browser.get("/").status_code == 200
        assert browser.get("/static/style.css").status_code == 200  # not tracked
        assert browser.post("/login", data={"name": "ada"}).status_code == 303
        assert browser.get("/shop/").status_code == 200
        assert browser.get("/api/items/2").json()["name"] == "Dog shampoo"
        assert browser.get("/api/items/99").status_code == 404
        assert browser.get("/stream?delay=0").text.count("line") == 5
        assert browser.get("/boom").status_code == 500
        response = browser.post("/shop/checkout", data={"item": ["1", "3"]})
        assert response.status_code == 303


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> int:
    """Signal the server and wait for it to exit (the finally in ``running`` kills it if not)."""
    process.send_signal(how)
    return process.wait(30)


def check_visit_arrived(ingest: IngestServer, test_mode: bool = False) -> None:
    ingest.wait_for_signals(sum(VISIT_SIGNALS.values()))
    signals = ingest.accepted_signals
    assert {s["isTestMode"] for s in signals} == {test_mode}
    assert Counter(s["type"] for s in signals) == VISIT_SIGNALS
    statuses: dict[str, list[str]] = {}
    for s in signals:
        if s["type"] in ("pageView", "HTTP.request"):
            route = s["payload"].get("HTTP.route")
            statuses.setdefault(route, []).append(s["payload"]["HTTP.statusCode"])
    assert {route: sorted(codes) for route, codes in statuses.items()} == {
        "/": ["200"],
        "/login": ["303"],
        "/shop/": ["200"],
        "/api/items/{item_id}": ["200", "404"],
        "/stream": ["200"],
        "/boom": ["500"],
        "/shop/checkout": ["303"],
    }
    checkout = next(s for s in signals if s["type"] == "Checkout.completed")
    assert checkout["clientUser"] == hash_client_user("ada", SALT)
    assert checkout["payload"]["floatValue"] == 29.49
    assert len({s["sessionID"] for s in signals}) == 1
    assert all(s["appID"] == APP_ID for s in signals)


@pytest.mark.parametrize(
    ("server", "how"),
    [
        ("flask run", signal.SIGINT),
        ("flask run", signal.SIGTERM),
        ("gunicorn sync", signal.SIGTERM),
        ("gunicorn gthread", signal.SIGTERM),
        ("waitress", signal.SIGTERM),
        ("waitress", signal.SIGINT),
    ],
    ids=lambda value: getattr(value, "name", value),
)
def test_a_graceful_shutdown_loses_no_signal(
    server: str, how: signal.Signals, ingest: IngestServer
) -> None:
    with running(server, ingest) as (process, base_url):
        visit(base_url)
        assert ingest.accepted_signals == []  # held back by the long flush interval
        stop(process, how)
    check_visit_arrived(ingest)


@pytest.mark.parametrize("server", ["flask run", "waitress"])
def test_without_the_sigterm_remedy_these_servers_lose_everything(
    server: str, ingest: IngestServer
) -> None:
    """Why td_web turns SIGTERM into a clean exit: left at its default, SIGTERM kills the
    process before atexit runs. If this starts failing, the server learned to exit cleanly."""
    with running(server, ingest, TELEMETRYDECK_HANDLE_SIGTERM="false") as (process, base_url):
        visit(base_url)
        assert stop(process, signal.SIGTERM) == -signal.SIGTERM
    assert ingest.accepted_signals == []


@pytest.mark.parametrize("server", ["flask run", "gunicorn gthread"])
def test_a_client_that_disconnects_mid_stream_gives_exactly_one_signal(
    server: str, ingest: IngestServer
) -> None:
    with running(server, ingest) as (process, base_url):
        with httpx.Client(base_url=base_url, timeout=10) as browser:
            with browser.stream("GET", "/stream?lines=100&delay=0.05") as response:
                first = next(response.iter_lines())
                assert first == "line 0"
            # The server notices at its next write and closes the body.
            browser.get("/")
        stop(process, signal.SIGTERM)
    signals = ingest.wait_for_signals(3)
    requests = [s for s in signals if s["type"] in ("pageView", "HTTP.request")]
    assert sorted(s["payload"]["HTTP.route"] for s in requests) == ["/", "/stream"]
    assert "Stream.finished" not in [s["type"] for s in signals]


def test_flask_run_debug_sends_promptly_because_its_reloader_kills_the_server(
    ingest: IngestServer,
) -> None:
    """Werkzeug's reloader parent SIGKILLs the serving child when it is stopped, so the
    child's exit flush cannot be relied on; under the reloader td_web flushes every 0.5 s."""
    with running("flask run --debug", ingest, TELEMETRYDECK_FLUSH_INTERVAL="") as (
        process,
        base_url,
    ):
        visit(base_url)
        check_visit_arrived(ingest, test_mode=True)  # while the server still runs
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        process.wait(30)
