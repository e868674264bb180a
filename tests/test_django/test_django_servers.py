"""The example site under real servers, against the real ingest server.

The site's flush interval is an hour, so every signal that arrives was delivered by the
shutdown flush: each test proves that stopping the server the usual way loses nothing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import APP_ID
from ingest_server import IngestServer, free_port
from served import answering

from td_web import hash_client_user
from td_web._transport import http_library

# httpx2 where it is installed, else httpx: the same API, as for the sender.
httpx = http_library()

pytestmark = pytest.mark.slow

SITE = Path(__file__).resolve().parents[2] / "example_projects" / "django_site"
SALT = "server-test-salt"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
REQUEST_TYPES = ("pageView", "HTTP.request")


@pytest.fixture(scope="module")
def site_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The example site's SQLite database, migrated (which also creates the demo user)."""
    database = str(tmp_path_factory.mktemp("django_site") / "db.sqlite3")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=SITE,
        env={**_clean_environ(), "DJANGO_SITE_DB": database},
        check=True,
        timeout=120,
    )
    return database


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TELEMETRYDECK_", "DJANGO_"))}


def _site_environ(ingest: IngestServer, database: str, **extra: str) -> dict[str, str]:
    return {
        **_clean_environ(),
        "TELEMETRYDECK_APP_ID": APP_ID,
        "TELEMETRYDECK_ENDPOINT": ingest.url,
        "TELEMETRYDECK_SALT": SALT,
        "TELEMETRYDECK_FLUSH_INTERVAL": "3600",
        "DJANGO_SITE_DB": database,
        "DJANGO_SETTINGS_MODULE": "tdsite.settings",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def running(
    command: list[str], env: dict[str, str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until it answers, and make sure it is gone afterwards."""
    process = subprocess.Popen(
        command, cwd=SITE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )

    def output() -> str:
        return process.stdout.read().decode() if process.stdout else ""

    try:
        with answering(process, f"http://127.0.0.1:{port}", output, timeout=60):
            yield process
    finally:
        if process.stdout:
            process.stdout.close()


def _stop(process: subprocess.Popen[bytes], signum: int) -> str:
    process.send_signal(signum)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.stdout.read().decode() if process.stdout else ""


def _request_signals(signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in signals if s["type"] in REQUEST_TYPES]


def _csrf(response: httpx.Response) -> str:
    match = CSRF_FIELD.search(response.text)
    assert match, response.text
    return match.group(1)


def test_example_site_under_runserver(ingest: IngestServer, site_database: str) -> None:
    """A visit through every kind of page, then Ctrl-C: everything arrives, as it should."""
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with running(command, _site_environ(ingest, site_database), port) as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            home = browser.get("/", headers={"Accept-Language": "en-GB"})
            assert browser.get("/catalog/products/mug/").status_code == 200
            assert browser.get("/catalog/api/products/2/").json()["slug"] == "mug"
            contact = browser.get("/contact/")
            sent = browser.post(
                "/contact/",
                data={
                    "csrfmiddlewaretoken": _csrf(contact),
                    "email": "someone@example.com",
                    "topic": "order",
                    "message": "Where is my teapot?",
                },
            )
            assert sent.status_code == 302
            checkout = browser.post(
                "/checkout/", data={"csrfmiddlewaretoken": _csrf(home), "mug": "1"}
            )
            assert checkout.status_code == 200
            login_page = browser.get("/accounts/login/")
            login = browser.post(
                "/accounts/login/",
                data={
                    "csrfmiddlewaretoken": _csrf(login_page),
                    "username": "demo",
                    "password": "demo-password",
                },
            )
            assert login.status_code == 302
            assert browser.get("/account/").status_code == 200
            assert browser.get("/boom/").status_code == 500
            assert browser.get("/export.csv").text.startswith("slug,name,price")
            assert browser.get("/api/status/").json()["ok"] is True
        assert ingest.accepted_signals == []  # nothing before shutdown: the interval is 1 h
        _stop(server, signal.SIGINT)

    assert server.returncode == 0
    signals = ingest.wait_for_signals(16)
    by_route = {
        (s["type"], s["payload"].get("HTTP.route"), s["payload"]["HTTP.method"]): s
        for s in _request_signals(signals)
    }
    assert set(by_route) == {
        ("pageView", "/", "GET"),
        ("pageView", "/catalog/products/{slug}/", "GET"),
        ("HTTP.request", "/catalog/api/products/{product_id}/", "GET"),
        ("pageView", "/contact/", "GET"),
        ("HTTP.request", "/contact/", "POST"),
        ("HTTP.request", "/checkout/", "POST"),
        ("pageView", "/accounts/login/", "GET"),
        ("HTTP.request", "/accounts/login/", "POST"),
        ("pageView", "/account/", "GET"),
        ("HTTP.request", "/boom/", "GET"),
        ("HTTP.request", "/export.csv", "GET"),
        ("HTTP.request", "/api/status/", "GET"),
    }
    assert len(_request_signals(signals)) == 12  # /healthz polls were excluded
    types = Counter(s["type"] for s in signals)
    assert types["TelemetryDeck.Session.started"] == 1
    assert {s["sessionID"] for s in signals} == {signals[0]["sessionID"]}
    assert all(s["appID"] == APP_ID and s["isTestMode"] is True for s in signals)

    assert (
        by_route[("pageView", "/", "GET")]["payload"]["TelemetryDeck.UserPreference.region"] == "GB"
    )
    demo_user = hash_client_user("1", SALT)
    assert by_route[("pageView", "/account/", "GET")]["clientUser"] == demo_user
    assert by_route[("HTTP.request", "/accounts/login/", "POST")]["clientUser"] == demo_user
    assert by_route[("pageView", "/", "GET")]["clientUser"] != demo_user
    assert by_route[("HTTP.request", "/boom/", "GET")]["payload"]["HTTP.statusCode"] == "500"

    [contact_signal] = [s for s in signals if s["type"] == "Contact.submitted"]
    assert contact_signal["payload"]["Contact.topic"] == "order"
    assert "someone@example.com" not in str(signals)
    [checkout_signal] = [s for s in signals if s["type"] == "Checkout.completed"]
    assert checkout_signal["payload"]["Cart.items"] == "1"
    assert checkout_signal["payload"]["floatValue"] == 12.0
    [error] = [s for s in signals if s["type"] == "TelemetryDeck.Error.occurred"]
    assert error["payload"]["TelemetryDeck.Error.id"] == "RuntimeError"
    assert error["payload"]["HTTP.route"] == "/boom/"


def test_runserver_noreload_sigterm_loses_nothing(ingest: IngestServer, site_database: str) -> None:
    """``docker stop`` and friends send SIGTERM, which runserver leaves at its default: td_web's
    handler delivers what is queued, then the process ends as SIGTERM would have ended it."""
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with running(command, _site_environ(ingest, site_database), port) as server:
        _drive(port, 10)
        assert ingest.accepted_signals == []  # the interval is 1 h: only shutdown delivers
        output = _stop(server, signal.SIGTERM)
    assert server.returncode == -signal.SIGTERM, output
    signals = ingest.wait_for_signals(11)
    assert len(_request_signals(signals)) == 10, output


def _drive(port: int, count: int) -> None:
    paths = ["/", "/catalog/", "/catalog/api/products/1/", "/export.csv", "/contact/"]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
        for i in range(count):
            assert browser.get(paths[i % len(paths)]).status_code == 200


@pytest.mark.parametrize(
    "worker", [["-k", "sync"], ["-k", "gthread", "--threads", "4"]], ids=["sync", "gthread"]
)
def test_gunicorn_preload_two_workers_sigterm_loses_nothing(
    ingest: IngestServer, site_database: str, worker: list[str]
) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tdsite.wsgi:application",
        "--preload", "--workers", "2", *worker,
        "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "20",
    ]  # fmt: skip
    with running(command, _site_environ(ingest, site_database), port) as server:
        _drive(port, 20)
        output = _stop(server, signal.SIGTERM)

    assert server.returncode == 0, output
    signals = ingest.wait_for_signals(21)
    assert len(_request_signals(signals)) == 20, output
    assert Counter(s["type"] for s in signals)["TelemetryDeck.Session.started"] == 1


ASGI_SERVERS = {
    "uvicorn": lambda port: [
        sys.executable, "-m", "uvicorn", "tdsite.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ],
    "hypercorn": lambda port: [
        sys.executable, "-m", "hypercorn", "tdsite.asgi:application",
        "--bind", f"127.0.0.1:{port}",
    ],
    "daphne": lambda port: [
        sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
        "tdsite.asgi:application",
    ],
}  # fmt: skip


@pytest.mark.parametrize("server_name", sorted(ASGI_SERVERS))
def test_asgi_server_sigterm_loses_nothing(
    ingest: IngestServer, site_database: str, server_name: str
) -> None:
    port = free_port()
    command = ASGI_SERVERS[server_name](port)
    with running(command, _site_environ(ingest, site_database), port) as server:
        _drive(port, 9)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            assert browser.get("/api/status/").status_code == 200
            assert browser.get("/boom/").status_code == 500
        output = _stop(server, signal.SIGTERM)

    # uvicorn ends its graceful shutdown by re-raising SIGTERM with the default handler, so no
    # atexit handler runs there: the lifespan shutdown of td_web.django.asgi delivered it all.
    assert server.returncode in (0, -signal.SIGTERM), output
    signals = ingest.wait_for_signals(14)
    requests = _request_signals(signals)
    assert len(requests) == 11, output
    assert {s["payload"].get("HTTP.route") for s in requests} >= {"/api/status/", "/boom/"}
    assert len([s for s in signals if s["type"] == "TelemetryDeck.Error.occurred"]) == 1
